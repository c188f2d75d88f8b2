//! Leases: the deadline by which each passing instance must heartbeat (or register again).
//!
//! A plain table, with no task and no lock inside: the caller says what time it is, keeps
//! the table behind its own lock, and runs the loop that turns lapses into
//! `io.draft.instance.expired`. Leases are kept in memory only; on open every passing
//! instance gets one full TTL.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::names::{InstanceId, ServiceName};
use crate::projection::Projection;
use crate::wire::Health;

/// The lease deadlines of passing instances, keyed by (service, instance).
#[derive(Debug, Default)]
pub(crate) struct Leases {
    deadlines: HashMap<(ServiceName, InstanceId), Instant>,
}

impl Leases {
    /// Gives `instance` of `service` a lease until `now + ttl`, replacing any it had.
    pub(crate) fn renew(
        &mut self,
        service: &ServiceName,
        instance: &InstanceId,
        ttl: Duration,
        now: Instant,
    ) {
        self.deadlines
            .insert((service.clone(), instance.clone()), now + ttl);
    }

    /// Forgets the lease of `instance` of `service` (it left or expired).
    pub(crate) fn remove(&mut self, service: &ServiceName, instance: &InstanceId) {
        self.deadlines.remove(&(service.clone(), instance.clone()));
    }

    /// Whether `instance` of `service` holds a lease that has not lapsed at `now`. The writer
    /// drops an expiry of an instance that still holds one: it was renewed meanwhile.
    pub(crate) fn still_held(
        &self,
        service: &ServiceName,
        instance: &InstanceId,
        now: Instant,
    ) -> bool {
        self.deadlines
            .get(&(service.clone(), instance.clone()))
            .is_some_and(|deadline| *deadline > now)
    }

    /// Puts back a lease taken by [`take_lapsed`](Self::take_lapsed) whose expiry could not be
    /// written: the instance still counts, and its lapse (at `lapsed_at`) is taken again at
    /// the next check. A lease renewed meanwhile (a heartbeat, a registration) wins: it is
    /// newer than the lapse.
    pub(crate) fn put_back(
        &mut self,
        service: &ServiceName,
        instance: &InstanceId,
        lapsed_at: Instant,
    ) {
        self.deadlines
            .entry((service.clone(), instance.clone()))
            .or_insert(lapsed_at);
    }

    /// Takes every lease that has lapsed at `now` (its deadline is `now` or earlier) out of the
    /// table, so each lapse is taken once; live leases stay.
    pub(crate) fn take_lapsed(&mut self, now: Instant) -> Vec<(ServiceName, InstanceId)> {
        self.deadlines
            .extract_if(|_, deadline| *deadline <= now)
            .map(|(key, _)| key)
            .collect()
    }
}

impl Leases {
    /// The leases of every passing instance of `state`: one full TTL from `now` each, or
    /// `grace` if that is shorter. What a node holds at open, and what a node that becomes
    /// the lease keeper starts from (it cannot know when the last keeper last heard from
    /// them).
    ///
    /// Every write takes typed names, so `_draft` holds no name the API refuses unless
    /// something other than Blueprint appended to it; such an instance gets no lease (it
    /// keeps its health, and no expiry is written for it).
    pub(crate) fn of_passing(state: &Projection, now: Instant, grace: Option<Duration>) -> Self {
        let mut leases = Self::default();
        for (service, instance, i) in state.instances() {
            if i.health != Health::Passing {
                continue;
            }
            let (Ok(service), Ok(instance)) =
                (ServiceName::parse(service), InstanceId::parse(instance))
            else {
                tracing::warn!(
                    service,
                    instance,
                    "a stored instance has a name the API refuses; no lease"
                );
                continue;
            };
            let ttl = Duration::from_millis(i.registration.ttl_ms);
            let ttl = grace.map_or(ttl, |g| g.min(ttl));
            leases.renew(&service, &instance, ttl, now);
        }
        leases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn names() -> (ServiceName, InstanceId, InstanceId) {
        let name = |s: &str| ServiceName::parse(s).expect("service");
        let id = |s: &str| InstanceId::parse(s).expect("instance");
        (name("web"), id("a"), id("b"))
    }

    fn key(service: &ServiceName, instance: &InstanceId) -> (ServiceName, InstanceId) {
        (service.clone(), instance.clone())
    }

    #[tokio::test(start_paused = true)]
    async fn renew_extends_the_deadline() {
        let (web, a, _) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &a, TTL, Instant::now());
        tokio::time::advance(Duration::from_secs(6)).await;
        leases.renew(&web, &a, TTL, Instant::now());
        // 12 s after the first lease and 6 s after the renewal.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(leases.still_held(&web, &a, Instant::now()));
        assert!(leases.take_lapsed(Instant::now()).is_empty());
        // 10 s after the renewal: lapsed, at the deadline itself.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!leases.still_held(&web, &a, Instant::now()));
        assert_eq!(leases.take_lapsed(Instant::now()), vec![key(&web, &a)]);
    }

    #[tokio::test(start_paused = true)]
    async fn take_lapsed_takes_each_lapse_once_and_keeps_live_leases() {
        let (web, short, long) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &short, Duration::from_secs(1), Instant::now());
        leases.renew(&web, &long, TTL, Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(leases.take_lapsed(Instant::now()), vec![key(&web, &short)]);
        assert!(leases.take_lapsed(Instant::now()).is_empty());
        assert!(leases.still_held(&web, &long, Instant::now()));
        tokio::time::advance(TTL).await;
        assert_eq!(leases.take_lapsed(Instant::now()), vec![key(&web, &long)]);
        assert!(leases.take_lapsed(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_after_the_lapse_was_taken_keeps_the_instance() {
        let (web, a, b) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &a, TTL, Instant::now());
        leases.renew(&web, &b, TTL, Instant::now());
        tokio::time::advance(TTL).await;
        let mut lapsed = leases.take_lapsed(Instant::now());
        lapsed.sort();
        assert_eq!(lapsed, vec![key(&web, &a), key(&web, &b)]);
        // A heartbeat from `a` arrives before its expiry is written; `b` stays silent.
        leases.renew(&web, &a, TTL, Instant::now());
        assert!(
            leases.still_held(&web, &a, Instant::now()),
            "a's expiry is dropped"
        );
        assert!(
            !leases.still_held(&web, &b, Instant::now()),
            "b's expiry is written"
        );
        // The renewed lease lapses again later, and is taken again.
        tokio::time::advance(TTL).await;
        assert_eq!(leases.take_lapsed(Instant::now()), vec![key(&web, &a)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_put_back_is_held_by_nobody_and_taken_again() {
        let (web, a, _) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &a, TTL, Instant::now());
        tokio::time::advance(TTL).await;
        let lapsed_at = Instant::now();
        assert_eq!(leases.take_lapsed(lapsed_at), vec![key(&web, &a)]);
        // The expiry could not be written: the lease goes back, still lapsed.
        leases.put_back(&web, &a, lapsed_at);
        assert!(!leases.still_held(&web, &a, Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            leases.take_lapsed(Instant::now()),
            vec![key(&web, &a)],
            "retried at the next check"
        );
        assert!(leases.take_lapsed(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_before_the_put_back_wins() {
        let (web, a, _) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &a, TTL, Instant::now());
        tokio::time::advance(TTL).await;
        let lapsed_at = Instant::now();
        assert_eq!(leases.take_lapsed(lapsed_at), vec![key(&web, &a)]);
        // A heartbeat arrives while the expiry is being written, then the write fails.
        leases.renew(&web, &a, TTL, Instant::now());
        leases.put_back(&web, &a, lapsed_at);
        assert!(
            leases.still_held(&web, &a, Instant::now()),
            "the renewal stays"
        );
        assert!(leases.take_lapsed(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn remove_forgets_the_lease() {
        let (web, a, b) = names();
        let mut leases = Leases::default();
        leases.renew(&web, &a, TTL, Instant::now());
        leases.renew(&web, &b, TTL, Instant::now());
        leases.remove(&web, &a);
        assert!(!leases.still_held(&web, &a, Instant::now()));
        assert!(leases.still_held(&web, &b, Instant::now()));
        tokio::time::advance(TTL).await;
        assert_eq!(leases.take_lapsed(Instant::now()), vec![key(&web, &b)]);
    }
}
