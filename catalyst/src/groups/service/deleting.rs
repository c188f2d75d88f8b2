//! Deleting a consumer group: refused while members are connected, here or, on a shared log,
//! on the node that holds the group's lock (a group another node serves has members there)
//! or on a node that waits for it (members stand by there);
//! audited as `io.draft.group.deleted`; and undone if it does not finish, however it ends
//! (an error, or a request dropped midway), so the group takes members again.

use draft_http::{Actor, ApiError, Code};

use super::{Groups, not_found};
use crate::error::log_error;
use crate::groups::record::GroupRecord;
use crate::groups::table::GroupKey;

impl Groups {
    /// Deletes a group that has no member connected, here or (on a shared log) on another
    /// node that serves it (recording `io.draft.group.deleted`).
    ///
    /// # Errors
    /// 404 if it does not exist, 409 while members are connected, 500 if it cannot be stored,
    /// 503 if the other nodes cannot be asked.
    pub(crate) async fn delete(&self, key: &GroupKey, actor: &Actor) -> Result<(), ApiError> {
        let _changes = self.changes.lock().await;
        let committed = {
            let mut live = self.live();
            let Some(group) = live.table.get_mut(key) else {
                return Err(not_found(key));
            };
            if !group.set_deleting(true) {
                let members = group.members().count();
                return Err(ApiError::new(
                    Code::Conflict,
                    format!(
                        "group {} of channel {} has {members} member(s) connected; close them \
                         first, then delete it",
                        key.group, key.channel
                    ),
                ));
            }
            group.committed()
        };
        let mut marked = Marked {
            groups: self,
            key,
            locked: false,
            done: false,
        };
        self.lock_for_deletion(key).await?;
        marked.locked = true;
        let data = serde_json::json!({
            "channel": key.channel.as_str(),
            "group": key.group.as_str(),
            "committed_offset": committed,
        });
        let deleted = GroupRecord::Deleted {
            channel: key.channel.to_string(),
            group: key.group.to_string(),
        };
        let stored = match self.record("io.draft.group.deleted", data, actor).await {
            Ok(_) => self.store.append(&deleted).await.map_err(|e| log_error(&e)),
            Err(e) => Err(e),
        };
        self.unlock_after_deletion(key).await;
        marked.locked = false;
        stored?;
        self.live().table.remove(key);
        marked.done = true;
        Ok(())
    }

    /// Before a deletion: takes the group's lock, so that no other node serves the group
    /// while it is deleted. Nothing to take when the log is not shared.
    ///
    /// # Errors
    /// 409 if another node holds the lock (it has members of the group connected) or waits
    /// for it (members stand by there); 503 if the cluster does not answer.
    async fn lock_for_deletion(&self, key: &GroupKey) -> Result<(), ApiError> {
        let Some(locks) = &self.locks else {
            return Ok(());
        };
        let unknown = |e: String| {
            ApiError::new(
                Code::LogUnavailable,
                format!(
                    "cannot tell whether members of group {} of channel {} are connected to \
                     other nodes: {e}",
                    key.group, key.channel
                ),
            )
        };
        // Standbys on a node that does not serve the group: the serving node's lock does not
        // show them, and the lock may be between two nodes right now.
        let waiting = locks
            .waiting_elsewhere(key.channel.as_str(), key.group.as_str())
            .await
            .map_err(unknown)?;
        if !waiting.is_empty() {
            return Err(ApiError::new(
                Code::Conflict,
                format!(
                    "group {} of channel {} has members standing by on {}; close them first, \
                     then delete it",
                    key.group,
                    key.channel,
                    waiting.join(", ")
                ),
            ));
        }
        match locks.hold(key.channel.as_str(), key.group.as_str()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::new(
                Code::Conflict,
                format!(
                    "group {} of channel {} is served by another node, where members are \
                     connected; close them first, then delete it",
                    key.group, key.channel
                ),
            )),
            Err(e) => Err(unknown(e)),
        }
    }

    /// After a deletion, or a deletion that failed: gives the lock taken for it up.
    async fn unlock_after_deletion(&self, key: &GroupKey) {
        if let Some(locks) = &self.locks {
            locks
                .release(key.channel.as_str(), key.group.as_str())
                .await;
        }
    }
}

/// A group marked as being deleted (joins refused), and whether its lock is held for the
/// deletion: unmarked, and the lock given up, when dropped before the deletion is `done`.
struct Marked<'a> {
    groups: &'a Groups,
    key: &'a GroupKey,
    locked: bool,
    done: bool,
}

impl Drop for Marked<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(group) = self.groups.live().table.get_mut(self.key) {
            group.set_deleting(false);
        }
        if self.locked
            && let Some(locks) = self.groups.locks.clone()
        {
            let (channel, group) = (self.key.channel.to_string(), self.key.group.to_string());
            tokio::spawn(async move { locks.release(&channel, &group).await });
        }
    }
}
