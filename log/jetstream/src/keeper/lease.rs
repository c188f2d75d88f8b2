//! The keeper's clock without I/O: whether a lease still holds, whether a renewal came back
//! in time, and what the runner does next.

use std::time::Duration;

use tokio::time::Instant;

use super::Term;

/// How often a keeper renews and a follower campaigns, and how long one claim or renewal
/// may take: a third of the TTL.
pub(crate) fn period(ttl: Duration) -> Duration {
    ttl / 3
}

/// The keeper role as this node holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The revision of the claim that won the role.
    pub(crate) term: Term,
    /// The revision of the lock's entry now (the claim's or the last renewal's).
    pub(crate) revision: u64,
    /// When the last successful claim or renewal was *sent*. The server stamped its entry
    /// later than this, so the entry cannot expire before `sent + ttl`.
    pub(crate) sent: Instant,
}

impl Lease {
    /// Whether the node may still act as keeper at `now`.
    pub(crate) fn holds(&self, now: Instant, ttl: Duration) -> bool {
        now.saturating_duration_since(self.sent) < ttl
    }

    /// The lease after a renewal sent at `sent` and answered with `revision` at `answered`,
    /// or `None` if it came back too late (a period or more after it was sent) or the lease
    /// had lapsed when it was sent: the node must step down either way.
    pub(crate) fn renewed(
        self,
        revision: u64,
        sent: Instant,
        answered: Instant,
        ttl: Duration,
    ) -> Option<Self> {
        let in_time = answered.saturating_duration_since(sent) < period(ttl);
        (in_time && self.holds(sent, ttl)).then_some(Self {
            term: self.term,
            revision,
            sent,
        })
    }
}

/// What the runner does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Renew the lease at this instant.
    Renew(Instant),
    /// Try to take the lock at this instant.
    Campaign(Instant),
    /// The lease has lapsed (the runner was held up): stop acting as keeper now.
    StepDown,
}

/// The runner's next step at `now`, given the lease this node holds (if any) and when it last
/// campaigned.
pub(crate) fn plan(
    lease: Option<&Lease>,
    last_campaign: Option<Instant>,
    now: Instant,
    ttl: Duration,
) -> Plan {
    match lease {
        Some(lease) if lease.holds(now, ttl) => Plan::Renew(lease.sent + period(ttl)),
        Some(_) => Plan::StepDown,
        None => Plan::Campaign(last_campaign.map_or(now, |at| at + period(ttl))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn lease(sent: Instant) -> Lease {
        Lease {
            term: Term(7),
            revision: 9,
            sent,
        }
    }

    #[test]
    fn a_lease_holds_for_exactly_the_ttl_after_it_was_sent() {
        let t0 = Instant::now();
        let l = lease(t0);
        assert!(l.holds(t0, TTL));
        assert!(l.holds(t0 + TTL - Duration::from_millis(1), TTL));
        assert!(!l.holds(t0 + TTL, TTL));
        assert!(!l.holds(t0 + TTL * 2, TTL));
    }

    #[test]
    fn a_renewal_counts_from_when_it_was_sent_not_answered() {
        let t0 = Instant::now();
        let sent = t0 + Duration::from_secs(1);
        let answered = sent + Duration::from_millis(900);
        let renewed = lease(t0).renewed(10, sent, answered, TTL).expect("in time");
        assert_eq!(renewed.sent, sent);
        assert_eq!((renewed.term, renewed.revision), (Term(7), 10));
        assert!(!renewed.holds(sent + TTL, TTL));
    }

    #[test]
    fn a_renewal_answered_a_period_or_more_after_it_was_sent_is_a_step_down() {
        let t0 = Instant::now();
        let sent = t0 + Duration::from_secs(1);
        assert!(
            lease(t0)
                .renewed(10, sent, sent + period(TTL), TTL)
                .is_none()
        );
        assert!(lease(t0).renewed(10, sent, sent + TTL, TTL).is_none());
    }

    #[test]
    fn a_renewal_sent_after_the_lease_lapsed_does_not_revive_it() {
        let t0 = Instant::now();
        let sent = t0 + TTL;
        assert!(lease(t0).renewed(10, sent, sent, TTL).is_none());
    }

    #[test]
    fn the_runner_renews_a_period_after_the_last_renewal_and_steps_down_once_it_lapsed() {
        let t0 = Instant::now();
        let l = lease(t0);
        assert_eq!(
            plan(Some(&l), None, t0, TTL),
            Plan::Renew(t0 + Duration::from_secs(1))
        );
        // Held up past the renewal time but within the TTL: renew at once (the instant is past).
        assert_eq!(
            plan(Some(&l), None, t0 + Duration::from_secs(2), TTL),
            Plan::Renew(t0 + Duration::from_secs(1))
        );
        assert_eq!(plan(Some(&l), None, t0 + TTL, TTL), Plan::StepDown);
    }

    #[test]
    fn a_follower_campaigns_at_once_then_every_period() {
        let t0 = Instant::now();
        assert_eq!(plan(None, None, t0, TTL), Plan::Campaign(t0));
        assert_eq!(
            plan(None, Some(t0), t0 + Duration::from_millis(10), TTL),
            Plan::Campaign(t0 + Duration::from_secs(1))
        );
    }

    #[test]
    fn the_worst_case_renewal_steps_down_before_the_lock_can_expire() {
        // Renewal sent one period after the last success, timing out one period later: the
        // runner learns it failed at 2/3 of the TTL, before anyone else can take the lock.
        let t0 = Instant::now();
        let sent = t0 + period(TTL);
        let gave_up = sent + period(TTL);
        assert!(lease(t0).renewed(10, sent, gave_up, TTL).is_none());
        assert!(lease(t0).holds(gave_up, TTL));
    }
}
