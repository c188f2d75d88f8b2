//! Following `_draft`: applying control events that other nodes appended.
//!
//! When several nodes share one log (the JetStream backend), each keeps its own
//! [`Projection`](crate::Projection). Its writer applies what it appends itself; the follower
//! task tails the control partition and applies everything else, in revision order, so every
//! node reaches every revision and `?at=R`, watches and Fuse's routes agree at the same `R`.
//!
//! Applying is idempotent and contiguous ([`Shared::apply_from_log`]): the writer and the
//! follower may both see a revision, and whichever comes second passes over it. A gap (a
//! record past the next revision) is filled by reading the log first, so no revision is
//! skipped.

use std::sync::{PoisonError, Weak};
use std::time::Duration;

use draft_log::{Offset, Record};
use futures::StreamExt;
use tracing::warn;

use crate::event::{Applied, ControlEvent};
use crate::names::{InstanceId, Revision, ServiceName};
use crate::replay;
use crate::shared::Shared;

/// How long the follower waits before tailing again after the tail failed.
const RETRY: Duration = Duration::from_millis(500);

/// How many control events are read at a time when catching up.
const CATCH_UP_CHUNK: usize = 1024;

/// Tails the control partition from the projection's next revision and applies every event
/// this node's writer has not, until Blueprint is gone or the node shuts down.
pub(crate) async fn follow(shared: Weak<Shared>) {
    loop {
        let Some((mut tail, shutdown)) = shared.upgrade().map(|s| {
            let from = Offset(s.revision().map_or(0, |r| r + 1));
            (s.log.tail(&s.control, from), s.config.shutdown.clone())
        }) else {
            return;
        };
        let stopping = shutdown.triggered();
        tokio::pin!(stopping);
        loop {
            let item = tokio::select! {
                item = tail.next() => item,
                () = &mut stopping => return,
            };
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match item {
                Some(Ok(record)) => shared.follow_record(&record).await,
                Some(Err(e)) => {
                    warn!(error = %e, "tailing the control log failed; tailing again");
                    break;
                }
                None => break,
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

impl Shared {
    /// Applies one record of the tail, after whatever lies between the projection and it.
    async fn follow_record(&self, record: &Record) {
        let next = self.revision().map_or(0, |r| r + 1);
        if record.offset.0 < next {
            return;
        }
        if record.offset.0 > next {
            // A failure is logged where it is met; the record is applied only after the
            // ones before it, so it waits for the next tail.
            if !matches!(self.catch_up(record.offset.0).await, Ok(true)) {
                return;
            }
        }
        match replay::decode(record) {
            Ok(applied) => self.apply_from_log(&[applied]),
            Err(e) => {
                warn!(error = %e, "skipped a control event that cannot be decoded");
                self.apply_from_log(&[undecodable(record)]);
            }
        }
    }

    /// Reads and applies the control events from the projection's next revision up to
    /// `until` (exclusive): what other nodes appended before a write of ours conflicted, or
    /// before a record the tail delivered. Returns whether the projection reached `until`
    /// (not yet, while the log cannot be read up to it: a new leader, a replica behind).
    ///
    /// # Errors
    /// A fatal log error ([`draft_log::Error::is_fatal`]: a corrupt record, a failed disk),
    /// which waiting does not mend.
    pub(crate) async fn catch_up(&self, until: u64) -> Result<bool, draft_log::Error> {
        loop {
            let next = self.revision().map_or(0, |r| r + 1);
            if next >= until {
                return Ok(true);
            }
            let wanted = usize::try_from(until - next)
                .unwrap_or(usize::MAX)
                .min(CATCH_UP_CHUNK);
            let records = match self.log.read(&self.control, Offset(next), wanted).await {
                Ok(records) if !records.is_empty() => records,
                Ok(_) => return Ok(false),
                Err(e) => {
                    warn!(error = %e, next, until, "cannot read the control log to catch up");
                    return if e.is_fatal() { Err(e) } else { Ok(false) };
                }
            };
            let applied: Vec<Applied> = records
                .iter()
                .filter(|r| r.offset.0 < until)
                .map(|r| {
                    replay::decode(r).unwrap_or_else(|e| {
                        warn!(error = %e, "skipped a control event that cannot be decoded");
                        undecodable(r)
                    })
                })
                .collect();
            self.apply_from_log(&applied);
        }
    }

    /// Applies control events read from the log, each only if it is the projection's next
    /// revision (one applied already is passed over), then clears the token cache if any was
    /// a token event and announces the new revision.
    pub(crate) fn apply_from_log(&self, events: &[Applied]) {
        let mut taken = Vec::with_capacity(events.len());
        let last = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            for applied in events {
                let next = state.revision().map_or(0, |r| r + 1);
                if applied.revision != next {
                    continue;
                }
                state.apply(applied);
                taken.push(applied);
            }
            state.revision()
        };
        // The lease table is locked after the state is let go: the writer takes them the
        // other way round.
        for applied in &taken {
            self.note_registration(applied);
        }
        if taken.iter().any(|a| a.event.is_token()) {
            self.tokens.clear();
        }
        self.applied.send_if_modified(|current| {
            let new = last.map(Revision::new);
            let moved = *current != new;
            *current = new;
            moved
        });
    }

    /// Keeps the lease table in step with registrations another node wrote: an instance that
    /// registered there holds a lease here too (its heartbeats may come to any node), and one
    /// that left or expired holds none.
    fn note_registration(&self, applied: &Applied) {
        let names = |service: &str, instance: &str| {
            ServiceName::parse(service)
                .ok()
                .zip(InstanceId::parse(instance).ok())
        };
        match &applied.event {
            ControlEvent::Registered {
                service,
                instance,
                registration,
            } => {
                if let Some((service, instance)) = names(service, instance) {
                    let ttl = Duration::from_millis(registration.ttl_ms);
                    self.leases()
                        .renew(&service, &instance, ttl, tokio::time::Instant::now());
                }
            }
            ControlEvent::Deregistered { service, instance }
            | ControlEvent::Expired {
                service, instance, ..
            }
            | ControlEvent::Removed { service, instance } => {
                if let Some((service, instance)) = names(service, instance) {
                    self.leases().remove(&service, &instance);
                }
            }
            _ => {}
        }
    }
}

/// What stands in for a control event that cannot be decoded: it moves the revision on and
/// changes nothing, as replay at open would refuse it loudly instead.
fn undecodable(record: &Record) -> Applied {
    Applied {
        revision: record.offset.0,
        time_nanos: record.time.as_unix_nanos(),
        actor: String::new(),
        event: ControlEvent::Other {
            ty: "io.draft.undecodable".to_owned(),
            data: serde_json::Value::Null,
        },
    }
}

/// Whether a node reached a revision a reader asked for (`?min_revision=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The projection has applied it.
    Yes,
    /// The log does not hold it yet: it is in the future (`next` is the log's next revision).
    Future {
        /// The control log's next revision.
        next: u64,
    },
    /// The log holds it but this node had not applied it by the deadline.
    NotYet {
        /// The revision this node has applied.
        applied: Option<u64>,
    },
}

impl Shared {
    /// Waits until the projection has applied `revision`, at most `wait`. A revision the log
    /// does not hold yet is answered at once as [`Reached::Future`].
    pub(crate) async fn reach(
        &self,
        revision: u64,
        wait: Duration,
    ) -> Result<Reached, draft_log::Error> {
        let applied = |r: &Option<Revision>| r.is_some_and(|r| r.get() >= revision);
        let mut rx = self.applied.subscribe();
        if applied(&rx.borrow()) {
            return Ok(Reached::Yes);
        }
        let next = self.log.head(&self.control).await?.map_or(0, |h| h.next.0);
        if revision >= next {
            return Ok(Reached::Future { next });
        }
        match tokio::time::timeout(wait, rx.wait_for(applied)).await {
            Ok(Ok(_)) => Ok(Reached::Yes),
            Ok(Err(_)) => Err(draft_log::Error::Closed),
            Err(_) => Ok(Reached::NotYet {
                applied: self.revision(),
            }),
        }
    }
}
