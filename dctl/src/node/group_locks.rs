//! [`LocksOnNats`]: Catalyst's [`GroupLocks`] for nodes sharing one JetStream log. Each
//! consumer group's lock is the key `group/{channel}/{group}` of the keeper's KV bucket,
//! taken and renewed as the keeper's lock is (compare-and-set on the key, expiring one TTL
//! after its last write), so a group is served by one node at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use draft_catalyst::GroupLocks;
use draft_log_jetstream::KeeperLock;
use futures::future::BoxFuture;
use tokio::time::Instant;

/// One node's locks on the consumer groups it has members of.
pub(crate) struct LocksOnNats {
    /// A lock on a key nobody campaigns for: what each group's lock is made from (same
    /// bucket, node and TTL).
    template: KeeperLock,
    /// The locks this node campaigns for or holds, by key; one is dropped once given up.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeeperLock>>>>,
}

/// A group's key in the bucket. Channel and group names are `[a-z0-9._-]`, so `/` cannot
/// occur in them and the key names one group only.
fn key(channel: &str, group: &str) -> String {
    format!("group/{channel}/{group}")
}

impl LocksOnNats {
    /// The locks of `template`'s node, in its bucket and with its TTL.
    pub(crate) fn new(template: KeeperLock) -> Self {
        Self {
            template,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock_of(&self, key: &str) -> Result<Arc<tokio::sync::Mutex<KeeperLock>>, String> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.get(key) {
            return Ok(Arc::clone(lock));
        }
        let lock = Arc::new(tokio::sync::Mutex::new(
            self.template.for_key(key).map_err(|e| e.to_string())?,
        ));
        locks.insert(key.to_owned(), Arc::clone(&lock));
        Ok(lock)
    }
}

impl GroupLocks for LocksOnNats {
    fn hold<'a>(
        &'a self,
        channel: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Option<Instant>, String>> {
        Box::pin(async move {
            let lock = self.lock_of(&key(channel, group))?;
            let mut lock = lock.lock().await;
            match lock.campaign().await {
                Ok(Some(_)) => Ok(lock.valid_until()),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn release<'a>(&'a self, channel: &'a str, group: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let key = key(channel, group);
            let lock = self
                .locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            if let Some(lock) = lock
                && let Err(e) = lock.lock().await.resign().await
            {
                tracing::warn!(channel, group, error = %e,
                    "cannot give up a consumer group's lock: it lapses one TTL later");
            }
        })
    }

    fn renew_every(&self) -> Duration {
        self.template.ttl() / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_a_key_of_its_own() {
        assert_eq!(key("orders", "billing"), "group/orders/billing");
        assert_ne!(key("a.b", "c"), key("a", "b.c"));
    }
}
