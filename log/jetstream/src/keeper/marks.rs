//! Marks: plain entries of the keeper's bucket by which a node says it wants something it
//! cannot have while another node holds a lock (a consumer group's standbys, say). A mark
//! is this node's name at a key of the caller's choosing; it lasts one TTL after its last
//! write (the bucket's `max_age`), so a node that dies leaves none for long, and a node
//! that no longer wants the thing deletes it.

use futures::TryStreamExt;

use super::{KEEPER_BUCKET, KEEPER_KEY, KeeperLock, is_kv_key};
use crate::error::{Error, Result};

impl KeeperLock {
    /// Writes (or refreshes) this node's mark at `key`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a key that is not a KV key of its own,
    /// [`Error::Coordination`] if the cluster did not answer within a third of the TTL.
    pub async fn mark(&self, key: &str) -> Result<()> {
        check(key)?;
        let put = self.store.put(key, self.node.clone().into_bytes().into());
        self.within_period("mark", put)
            .await?
            .map(|_| ())
            .map_err(|e| self.failed("mark", e))
    }

    /// Deletes this node's mark at `key` (nothing happens if there is none).
    ///
    /// # Errors
    /// As [`mark`](Self::mark).
    pub async fn unmark(&self, key: &str) -> Result<()> {
        check(key)?;
        let delete = self.store.delete(key);
        self.within_period("unmark", delete)
            .await?
            .map_err(|e| self.failed("unmark", e))
    }

    /// The keys that start with `prefix` and hold a live entry (a mark, or a lock), in no
    /// particular order.
    ///
    /// # Errors
    /// [`Error::Coordination`] if the cluster did not answer within a third of the TTL.
    pub async fn marks(&self, prefix: &str) -> Result<Vec<String>> {
        let listed = async {
            let keys = self
                .store
                .keys()
                .await
                .map_err(|e| self.failed("list", e))?;
            keys.try_filter(|k| std::future::ready(k.starts_with(prefix)))
                .try_collect::<Vec<String>>()
                .await
                .map_err(|e| self.failed("list", e))
        };
        self.within_period("list", listed).await?
    }
}

/// A mark's key must be a KV key, and not the keeper's own lock.
fn check(key: &str) -> Result<()> {
    if !is_kv_key(key) || key == KEEPER_KEY {
        return Err(Error::Misconfigured {
            what: "a mark's key".into(),
            reason: format!("{key:?} is not a key of its own in {KEEPER_BUCKET}"),
        });
    }
    Ok(())
}
