//! When a hook acknowledges: the pure rule behind the runner's cumulative acknowledgements.
//!
//! An acknowledgement covers every event up to its offset, so the runner need not send one per
//! event. It sends one at once when nothing else is waiting (so a quiet group is always fully
//! acknowledged), after every [`ACK_EVERY`] handled events while more are waiting, and in any
//! case once the oldest unacknowledged event has waited `max_wait`: the node takes a group's
//! place away from a member that owes an acknowledgement past the group's timeout, so a slow
//! handler must keep acknowledging as it goes.

use std::time::Duration;

use tokio::time::Instant;

/// Handled events acknowledged together at most, while more are waiting.
pub(crate) const ACK_EVERY: u32 = 128;

/// The handled events not yet acknowledged.
#[derive(Debug)]
pub(crate) struct Acks {
    /// The highest handled offset not yet acknowledged.
    pending: Option<u64>,
    /// How many handled events it covers.
    count: u32,
    /// When the oldest of them was handled.
    since: Option<Instant>,
    /// The longest an event waits for its acknowledgement.
    max_wait: Duration,
}

impl Acks {
    /// No event pending; none waits longer than `max_wait`.
    pub(crate) fn new(max_wait: Duration) -> Self {
        Self {
            pending: None,
            count: 0,
            since: None,
            max_wait,
        }
    }

    /// The wait that keeps a member safely inside a group timeout of `timeout`: a quarter of
    /// it, at most one second.
    pub(crate) fn max_wait_for(timeout: Duration) -> Duration {
        (timeout / 4).min(Duration::from_secs(1))
    }

    /// `offset` was handled (or dead-lettered) at `now`.
    pub(crate) fn handled(&mut self, offset: u64, now: Instant) {
        self.pending = Some(offset);
        self.count += 1;
        self.since.get_or_insert(now);
    }

    /// Whether to acknowledge now, given whether more events are already waiting.
    pub(crate) fn due(&self, more_waiting: bool, now: Instant) -> bool {
        self.pending.is_some()
            && (!more_waiting
                || self.count >= ACK_EVERY
                || self
                    .since
                    .is_some_and(|s| now.duration_since(s) >= self.max_wait))
    }

    /// The offset to acknowledge (if any), and nothing pending afterwards.
    pub(crate) fn take(&mut self) -> Option<u64> {
        self.count = 0;
        self.since = None;
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_once_when_idle_in_batches_when_busy_and_never_late() {
        let t0 = Instant::now();
        let mut acks = Acks::new(Duration::from_secs(1));
        assert!(!acks.due(false, t0), "nothing to acknowledge");
        acks.handled(7, t0);
        assert!(acks.due(false, t0), "nothing else waiting: at once");
        assert!(!acks.due(true, t0), "more waiting: batch");
        for o in 8..(7 + u64::from(ACK_EVERY) - 1) {
            acks.handled(o, t0);
        }
        assert!(!acks.due(true, t0));
        acks.handled(200, t0);
        assert!(acks.due(true, t0), "a full batch");
        assert_eq!(acks.take(), Some(200));
        assert_eq!(acks.take(), None);

        acks.handled(201, t0);
        let later = t0 + Duration::from_millis(999);
        assert!(!acks.due(true, later));
        assert!(
            acks.due(true, t0 + Duration::from_secs(1)),
            "the oldest waited max_wait"
        );
    }

    #[test]
    fn the_wait_fits_inside_the_group_timeout() {
        assert_eq!(
            Acks::max_wait_for(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Acks::max_wait_for(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
    }
}
