//! Removing instances that stay critical (Consul's `DeregisterCriticalServiceAfter`): an
//! instance whose lease lapsed and that did not register again within
//! [`BlueprintConfig::remove_critical_after`] is removed, as the control event
//! `io.draft.instance.removed` by the actor `draft`, which also releases the routes it owned.
//!
//! Only the lease keeper removes, when several nodes share the log. How long an instance has
//! been critical is kept in memory, from the moment this node first
//! saw it critical: a restart gives every critical instance the whole delay again, as leases
//! get a whole TTL. [`Critical`] is the pure part; [`remove_critical`] the task.
//!
//! [`BlueprintConfig::remove_critical_after`]: crate::BlueprintConfig::remove_critical_after

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::applier::Op;
use crate::names::{InstanceId, ServiceName};
use crate::peers::Keeping;
use crate::shared::Shared;
use crate::wire::Health;

/// Since when each critical instance has been seen critical, and from which expiry.
#[derive(Debug, Default)]
pub(crate) struct Critical {
    /// (service, instance) -> (the revision of its expiry, first seen critical at).
    since: HashMap<(String, String), (u64, Instant)>,
}

impl Critical {
    /// Takes in the critical instances now (`(service, instance, expiry revision)`), and
    /// returns those critical from the same expiry for at least `after`. An instance that is
    /// no longer critical, or critical from a newer expiry, starts over.
    pub(crate) fn observe(
        &mut self,
        critical: impl IntoIterator<Item = (String, String, u64)>,
        now: Instant,
        after: Duration,
    ) -> Vec<(String, String, u64)> {
        let mut seen = HashMap::new();
        for (service, instance, revision) in critical {
            let key = (service, instance);
            let first = match self.since.get(&key) {
                Some((r, at)) if *r == revision => *at,
                _ => now,
            };
            seen.insert(key, (revision, first));
        }
        self.since = seen;
        self.since
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= after)
            .map(|((s, i), (r, _))| (s.clone(), i.clone(), *r))
            .collect()
    }
}

/// Removes instances critical for longer than `after`, until Blueprint is gone. Does
/// nothing while the log cannot take writes (a node that cannot write does not decide that
/// others are gone).
pub(crate) async fn remove_critical(shared: Weak<Shared>, after: Duration) {
    let mut critical = Critical::default();
    loop {
        let Some(every) = shared.upgrade().map(|s| s.config.lease_check) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.log.is_healthy() {
            continue;
        }
        if shared.keeping() == Keeping::Another {
            // The keeper removes; a node that becomes keeper starts the delay over, as a
            // restart does.
            critical = Critical::default();
            continue;
        }
        let now = Instant::now();
        let instances: Vec<(String, String, u64)> = shared.read(|p| {
            p.instances()
                .filter(|(_, _, i)| i.health == Health::Critical)
                .map(|(s, id, i)| (s.to_owned(), id.to_owned(), i.revision))
                .collect()
        });
        for (service, instance, expired_at) in critical.observe(instances, now, after) {
            let (Ok(service), Ok(instance)) =
                (ServiceName::parse(&service), InstanceId::parse(&instance))
            else {
                continue;
            };
            let op = Op::Remove {
                service: service.clone(),
                instance: instance.clone(),
                expired_at,
            };
            let shared = Arc::clone(&shared);
            // The writer drops it if the instance registered again meanwhile.
            tokio::spawn(async move {
                if let Err(e) = shared.write(op, "draft").await {
                    warn!(
                        service = service.as_str(),
                        instance = instance.as_str(),
                        error = %e,
                        "could not remove a critical instance"
                    );
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str, i: &str, r: u64) -> (String, String, u64) {
        (s.to_owned(), i.to_owned(), r)
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_is_due_after_the_delay_from_the_same_expiry_only() {
        let after = Duration::from_secs(10);
        let mut c = Critical::default();
        assert!(
            c.observe([one("web", "a", 5)], Instant::now(), after)
                .is_empty()
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            c.observe(
                [one("web", "a", 5), one("web", "b", 7)],
                Instant::now(),
                after
            )
            .is_empty()
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            c.observe(
                [one("web", "a", 5), one("web", "b", 7)],
                Instant::now(),
                after
            ),
            vec![one("web", "a", 5)]
        );
        // b registered again and lapsed again (a newer expiry): it starts over.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            c.observe([one("web", "b", 9)], Instant::now(), after)
                .is_empty()
        );
        // a is passing again (not listed): forgotten, so a later lapse starts over too.
        assert!(
            c.observe([one("web", "b", 9)], Instant::now(), after)
                .is_empty()
        );
        assert!(
            c.observe(
                [one("web", "a", 5), one("web", "b", 9)],
                Instant::now(),
                after
            )
            .is_empty()
        );
        tokio::time::advance(after).await;
        let mut due = c.observe(
            [one("web", "a", 5), one("web", "b", 9)],
            Instant::now(),
            after,
        );
        due.sort();
        assert_eq!(due, vec![one("web", "a", 5), one("web", "b", 9)]);
    }
}
