//! The part of [`Groups`] that only runs when other nodes share the log: following their
//! records of `_groups`, and taking, renewing and giving up each group's lock so that one
//! node at a time serves a group.
//!
//! A node campaigns for a group's lock while it has members of the group, renews it every
//! [`GroupLocks::renew_every`] while it holds it, and gives it up as soon as it has no
//! member left, after storing their acknowledgements (so the next node resumes after
//! them). A node that takes a lock follows `_groups` again before it activates a member:
//! the previous holder's last commit was stored before it gave the lock up.

use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;
use tracing::warn;

use super::{Groups, Signal, now_nanos};
use crate::groups::locks::GroupLocks;
use crate::groups::state::Group;
use crate::groups::table::GroupKey;

/// The longest a node waits before campaigning again for a lock another node holds.
const CAMPAIGN_EVERY: Duration = Duration::from_secs(1);

/// What to do with one group's lock at this tick.
enum Step {
    /// Take it, or renew it.
    Hold(GroupKey),
    /// Give it up, or stop waiting for it: no member of the group is connected here.
    Release(GroupKey),
}

impl Groups {
    /// Applies the records other nodes appended to `_groups` since the last call (none if
    /// the log is not shared). Members of a group deleted elsewhere are closed.
    pub(super) async fn follow(&self) {
        let records = match self.store.follow().await {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "cannot follow the consumer groups of other nodes");
                return;
            }
        };
        let mut live = self.live();
        for record in records {
            for id in live.table.apply_foreign(record) {
                live.close(id, Signal::Deleted);
            }
        }
    }

    /// Takes, renews or gives up the locks that are due.
    pub(super) async fn lock(&self, locks: &dyn GroupLocks) {
        let now = Instant::now();
        let steps: Vec<Step> = {
            let live = self.live();
            live.table
                .groups(None)
                .filter_map(|(key, group)| {
                    if !group.has_members() {
                        // Give the lock up, or stop waiting for it (a campaign was made).
                        let campaigned = group.holds_lock() || live.lock_due.contains_key(key);
                        return campaigned.then(|| Step::Release(key.clone()));
                    }
                    let due = live.lock_due.get(key).is_none_or(|at| *at <= now);
                    due.then(|| Step::Hold(key.clone()))
                })
                .collect()
        };
        if steps.is_empty() {
            return;
        }
        let answers = join_all(steps.into_iter().map(|step| async move {
            match &step {
                Step::Hold(key) => {
                    let held = locks.hold(key.channel.as_str(), key.group.as_str()).await;
                    (step, Some(held))
                }
                Step::Release(key) => {
                    locks
                        .release(key.channel.as_str(), key.group.as_str())
                        .await;
                    (step, None)
                }
            }
        }))
        .await;
        // The previous holder stored its last acknowledgements before it let go: read them
        // before a member here starts after them.
        let newly_held = answers.iter().any(|(step, held)| {
            matches!((step, held), (Step::Hold(key), Some(Ok(Some(_))))
                if self.live().table.get(key).is_some_and(|g| !g.holds_lock()))
        });
        if newly_held {
            self.follow().await;
        }
        let renew_every = locks.renew_every();
        let mut live = self.live();
        for (step, held) in answers {
            match (step, held) {
                (Step::Release(key), _) => {
                    live.lock_due.remove(&key);
                    if let Some(group) = live.table.get_mut(&key) {
                        group.revoked();
                    }
                }
                (Step::Hold(key), Some(Ok(Some(until)))) => {
                    live.lock_due.insert(key.clone(), now + renew_every);
                    let activation = live
                        .table
                        .get_mut(&key)
                        .and_then(|g| g.granted(until, now_nanos()));
                    live.activate(activation);
                }
                (Step::Hold(key), held) => {
                    if let Some(Err(e)) = held {
                        warn!(channel = %key.channel, group = %key.group, error = %e,
                            "cannot take or renew a consumer group's lock");
                    }
                    live.lock_due
                        .insert(key.clone(), now + renew_every.min(CAMPAIGN_EVERY));
                    let lost = live.table.get_mut(&key).and_then(Group::revoked);
                    if let Some(id) = lost {
                        live.close(id, Signal::Moved);
                    }
                }
            }
        }
    }
}
