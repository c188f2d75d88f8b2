//! [`LocksOnNats`]: Catalyst's [`GroupLocks`] for nodes sharing one JetStream log. Each
//! consumer group's lock is the key `group/{channel}/{group}` of the keeper's KV bucket,
//! taken and renewed as the keeper's lock is (compare-and-set on the key, expiring one TTL
//! after its last write), so a group is served by one node at a time.
//!
//! A node that campaigns in vain (members of the group stand by here) marks the group at
//! `wait/{channel}/{group}/{node}` in the same bucket, renewed as a lock is, and deletes the
//! mark once it has no member left, so that a deletion through a third node sees them.

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
    /// The groups this node waits for, by their mark's key: when the mark was last written.
    waiting: Mutex<HashMap<String, Instant>>,
}

/// A group's key in the bucket. Channel and group names are `[a-z0-9._-]`, so `/` cannot
/// occur in them and the key names one group only.
fn key(channel: &str, group: &str) -> String {
    format!("group/{channel}/{group}")
}

/// Where the marks of the nodes waiting for a group's lock are: one key per node below it.
fn waiting_prefix(channel: &str, group: &str) -> String {
    format!("wait/{channel}/{group}/")
}

impl LocksOnNats {
    /// The locks of `template`'s node, in its bucket and with its TTL.
    pub(crate) fn new(template: KeeperLock) -> Self {
        Self {
            template,
            locks: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    fn mark_key(&self, channel: &str, group: &str) -> String {
        format!("{}{}", waiting_prefix(channel, group), self.template.node())
    }

    /// This node waits for the group's lock: marks it, unless the mark was written less than
    /// a renewal period ago.
    async fn wait_for(&self, channel: &str, group: &str) {
        let mark = self.mark_key(channel, group);
        let now = Instant::now();
        let due = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let due = waiting
                .get(&mark)
                .is_none_or(|at| now.duration_since(*at) >= self.renew_every());
            if due {
                waiting.insert(mark.clone(), now);
            }
            due
        };
        if due && let Err(e) = self.template.mark(&mark).await {
            tracing::warn!(channel, group, error = %e,
                "cannot mark a consumer group as waited for: a deletion elsewhere may not see its members here");
        }
    }

    /// This node no longer waits for the group's lock (it holds it, or has no member left).
    async fn stop_waiting(&self, channel: &str, group: &str) {
        let mark = self.mark_key(channel, group);
        let marked = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&mark)
            .is_some();
        if marked && let Err(e) = self.template.unmark(&mark).await {
            tracing::warn!(channel, group, error = %e,
                "cannot unmark a consumer group: deleting it is refused until the mark lapses");
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
                Ok(Some(_)) => {
                    let until = lock.valid_until();
                    drop(lock);
                    self.stop_waiting(channel, group).await;
                    Ok(until)
                }
                Ok(None) => {
                    drop(lock);
                    self.wait_for(channel, group).await;
                    Ok(None)
                }
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
            self.stop_waiting(channel, group).await;
        })
    }

    fn waiting_elsewhere<'a>(
        &'a self,
        channel: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let prefix = waiting_prefix(channel, group);
            let keys = self
                .template
                .marks(&prefix)
                .await
                .map_err(|e| e.to_string())?;
            Ok(keys
                .into_iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
                .filter(|node| node != self.template.node())
                .collect())
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
        assert_eq!(waiting_prefix("orders", "billing"), "wait/orders/billing/");
        assert!(!waiting_prefix("a", "b").starts_with(&key("a", "b")));
    }
}
