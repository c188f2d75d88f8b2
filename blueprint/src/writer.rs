//! The write queue: every control-plane write is queued to one writer task, which groups the
//! writes, decides them (see [`applier`]), appends the accepted events to `_draft`, applies
//! them to the projection, answers every writer, and writes a checkpoint every
//! `checkpoint_every` events.
//!
//! Appends are compare-and-set at the revision the group was decided against: when several
//! nodes share the log and another one appended first, the writer applies what it wrote
//! (see [`follower`](crate::follower)) and decides the group again, so a write is never
//! decided against a state that is not the log's.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use draft_log::{NewRecord, Offset};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use crate::applier::{self, Op, Outcome, WriteRequest};
use crate::error::WriteError;
use crate::event::{Applied, ControlEvent};
use crate::names::Revision;
use crate::peers::Keeping;
use crate::shared::Shared;

/// How many times one group of writes is decided again after another node appended to
/// `_draft` first, before its writers are answered that the log is unavailable.
const MAX_CONFLICTS: u32 = 32;
/// How long a group of writes waits for a head that a conflict named but this node cannot
/// read yet (the JetStream backend's own deadline for an election).
const MAX_BEHIND: Duration = Duration::from_secs(20);
/// The first pause before looking for that head again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause before looking for that head again.
const MAX_PAUSE: Duration = Duration::from_millis(500);

impl Shared {
    /// Queues `op` by `actor` for the writer task and waits for its answer.
    pub(crate) async fn write(&self, op: Op, actor: &str) -> Result<Outcome, WriteError> {
        let (reply, rx) = oneshot::channel();
        let request = WriteRequest {
            op,
            actor: actor.to_owned(),
            reply,
        };
        self.writes
            .send(request)
            .await
            .map_err(|_| WriteError::Log(draft_log::Error::Closed))?;
        rx.await
            .map_err(|_| WriteError::Log(draft_log::Error::Closed))?
    }

    /// Decides, appends and answers one group of writes.
    async fn handle_group(
        &self,
        mut requests: Vec<WriteRequest>,
        last_checkpoint: &mut Option<u64>,
    ) {
        // Once the log is read-only every write is refused, even one that would append
        // nothing (a registration repeated as it stands would otherwise renew a lease, which
        // is a heartbeat the node cannot honour: see `expiry`).
        if let Some(failure) = self.log.storage_failure() {
            let e = WriteError::Log(draft_log::Error::ReadOnly(failure));
            for request in requests {
                let _ = request.reply.send(Err(e.clone()));
            }
            return;
        }
        let mut conflicts = 0;
        let mut behind: Option<Instant> = None;
        let mut pause = FIRST_PAUSE;
        loop {
            let next = self.revision().map_or(0, |r| r + 1);
            let group = {
                let keeping = self.keeping();
                let leases = self.leases();
                let now = Instant::now();
                // An expiry whose lease was renewed meanwhile is dropped, and so is one from
                // a term this node no longer keeps under (it stepped down since deciding).
                let keep = |op: &Op| match op {
                    Op::Expire {
                        service,
                        instance,
                        term,
                    } => {
                        still_keeping(keeping, *term) && !leases.still_held(service, instance, now)
                    }
                    _ => true,
                };
                let limits = applier::KvLimits {
                    max_keys: self.config.max_keys,
                    max_bytes: self.config.max_kv_bytes,
                };
                self.read(|state| applier::decide_group(state, next, requests, keep, limits))
            };
            match self.append(next, &group.events).await {
                Ok(revisions) => {
                    self.answer(group, &revisions);
                    break;
                }
                // Another node appended first: apply what it wrote, then decide the group
                // again against that state (a conditional write may now be refused).
                Err(draft_log::Error::Conflict { next: head, .. }) if conflicts < MAX_CONFLICTS => {
                    let caught_up = match self.catch_up(head.0).await {
                        Ok(caught_up) => caught_up,
                        // A corrupt record or a failed disk: waiting does not mend it.
                        Err(e) => {
                            Self::refuse(group.requests, &e, conflicts);
                            return;
                        }
                    };
                    if caught_up {
                        conflicts += 1;
                        (behind, pause) = (None, FIRST_PAUSE);
                    } else if behind.get_or_insert_with(Instant::now).elapsed() < MAX_BEHIND {
                        // The head cannot be read yet (a new leader, a replica behind):
                        // wait for it without using up the tries.
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    } else {
                        conflicts = MAX_CONFLICTS;
                    }
                    requests = group.requests;
                }
                // The log kept moving, or names a head this node cannot read up to (a
                // leader that lost its quorum counts appends it could not commit): the log
                // is unavailable, not broken, and the writers may try again.
                Err(draft_log::Error::Conflict { next: head, .. }) => {
                    let e = draft_log::Error::Unavailable(format!(
                        "_draft's head is {head}, and this node is still behind it"
                    ));
                    Self::refuse(group.requests, &e, conflicts);
                    return;
                }
                Err(e) => {
                    Self::refuse(group.requests, &e, conflicts);
                    return;
                }
            }
        }
        self.checkpoint_if_due(last_checkpoint);
    }

    /// Answers every writer of a group with the log error `e` that stopped it.
    fn refuse(requests: Vec<WriteRequest>, e: &draft_log::Error, conflicts: u32) {
        warn!(error = %e, conflicts, "control write failed");
        for request in requests {
            let _ = request.reply.send(Err(WriteError::Log(e.clone())));
        }
    }

    /// Answers every writer of an appended group.
    fn answer(&self, group: applier::Group, revisions: &[u64]) {
        for (request, decision) in group.requests.into_iter().zip(group.decisions) {
            if let (
                Op::Deregister { service, instance }
                | Op::Expire {
                    service, instance, ..
                },
                Ok(Some(_)),
            ) = (&request.op, &decision)
            {
                self.leases().remove(service, instance);
            }
            let answer = decision.map(|d| {
                d.map_or(Outcome::Unchanged, |i| {
                    Outcome::Appended(Revision::new(revisions[i]))
                })
            });
            let _ = request.reply.send(answer);
        }
    }

    /// Appends a group's events as one atomic batch at revision `next`, and applies them;
    /// returns their revisions.
    ///
    /// # Errors
    /// [`draft_log::Error::Conflict`] if `_draft` is past `next`: another node (or anything
    /// else) appended first, and nothing was appended.
    async fn append(
        &self,
        next: u64,
        events: &[(ControlEvent, String)],
    ) -> Result<Vec<u64>, draft_log::Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let source = format!("/draft/{}", self.config.node);
        let records = events
            .iter()
            .map(|(event, actor)| {
                let id = uuid::Uuid::now_v7().to_string();
                let json = event.to_cloudevent(&id, &self.config.node, actor, &now);
                NewRecord::new(Bytes::from(json.to_string())).with_key(draft_log::event_key(
                    event.ty(),
                    &source,
                    &id,
                ))
            })
            .collect();
        let ack = self
            .log
            .append_expecting(&self.control, Offset(next), records)
            .await?;
        let revisions: Vec<u64> = ack.offsets().map(|o| o.0).collect();
        let applied: Vec<Applied> = events
            .iter()
            .zip(&revisions)
            .map(|((event, actor), revision)| Applied {
                revision: *revision,
                time_nanos: ack.time.as_unix_nanos(),
                actor: actor.clone(),
                event: event.clone(),
            })
            .collect();
        // The follower may have applied them already (it tails the same log): applying is
        // idempotent. A revoked token is refused from the moment its revocation is
        // acknowledged: the cache is cleared before any writer is answered.
        self.apply_from_log(&applied);
        Ok(revisions)
    }

    /// Writes a checkpoint once `checkpoint_every` control events have been appended since
    /// `last_checkpoint`, and moves it on.
    fn checkpoint_if_due(&self, last_checkpoint: &mut Option<u64>) {
        if let Some(revision) = self.revision()
            && revision >= last_checkpoint.map_or(0, |c| c + 1) + self.config.checkpoint_every - 1
        {
            *last_checkpoint = Some(revision);
            self.checkpoint();
        }
    }

    /// Writes a checkpoint of the current state in the background.
    fn checkpoint(&self) {
        let state = self.read(Clone::clone);
        let checkpoints = self.checkpoints.clone();
        let keep = self.config.checkpoint_keep;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = checkpoints.save(&state) {
                warn!(error = %e, "checkpoint failed; restarts replay more of the log");
            } else if let Err(e) = checkpoints.prune(keep) {
                warn!(error = %e, "old checkpoints could not be removed");
            }
        });
    }
}

/// The writer task: groups, validates, appends, applies, answers. It holds Blueprint weakly
/// while idle, so dropping the last handle closes the queue and ends it.
pub(crate) async fn run_writer(shared: Weak<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut last_checkpoint = shared
        .upgrade()
        .and_then(|i| i.checkpoints.revisions().ok())
        .and_then(|r| r.last().copied());
    while let Some(requests) = applier::next_group(&mut rx).await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.handle_group(requests, &mut last_checkpoint).await;
    }
}

/// Whether an expiry decided under `term` may still be written by a node keeping as
/// `keeping` now.
fn still_keeping(keeping: Keeping, term: Option<u64>) -> bool {
    match (keeping, term) {
        (Keeping::Alone, None) => true,
        (Keeping::Keeper(now), Some(then)) => now == then,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_written_only_under_the_term_it_was_decided_in() {
        assert!(still_keeping(Keeping::Alone, None));
        assert!(still_keeping(Keeping::Keeper(4), Some(4)));
        assert!(!still_keeping(Keeping::Keeper(5), Some(4)), "a newer term");
        assert!(!still_keeping(Keeping::Another, Some(4)), "stepped down");
        assert!(!still_keeping(Keeping::Another, None));
        assert!(!still_keeping(Keeping::Alone, Some(4)));
    }
}
