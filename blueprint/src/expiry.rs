//! Lease expiry: the lease keeper task, which appends `io.draft.instance.expired` through the
//! write queue for every lease that lapsed in the [`Leases`](crate::lease::Leases) table.
//!
//! Two rules keep a storage failure from losing instances:
//! - a lapse whose expiry could not be written is put back in the table (see
//!   [`keeps_lease`]): the instance still counts, and the expiry is tried again at the next
//!   check;
//! - a node whose log is read-only expires nothing at all. It cannot write, so it cannot
//!   take heartbeats either (they answer 503 `storage_failed`): it must not decide that the
//!   instances it stopped hearing from died. Their leases wait in the table; a restart gives
//!   every passing instance a full TTL again.
//!
//! When several nodes share the log ([`Peers`](crate::peers::Peers)), only the lease keeper
//! expires anything. A node that becomes keeper first gives every passing instance one full
//! TTL; its expiries carry its term.

use std::sync::{Arc, Weak};

use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::applier::Op;
use crate::error::WriteError;
use crate::lease::Leases;
use crate::peers::Keeping;
use crate::shared::Shared;

/// Appends `io.draft.instance.expired` for every lease that lapsed, until Blueprint is gone.
pub(crate) async fn keep_leases(shared: Weak<Shared>) {
    let mut keeping = None;
    loop {
        let Some(every) = shared.upgrade().map(|i| i.config.lease_check) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.log.is_healthy() {
            debug!("the log is read-only: no lease expires");
            continue;
        }
        let now = Instant::now();
        let term = match standing(shared.keeping(), &mut keeping) {
            Standing::Expire(term) => term,
            Standing::Wait => continue,
            Standing::Start(term) => {
                info!(
                    term,
                    "this node is now the lease keeper: every passing instance gets a full TTL"
                );
                let fresh = shared.read(|state| Leases::of_passing(state, now, None));
                *shared.leases() = fresh;
                continue;
            }
        };
        // Taken out of the table here, so each lapse is sent once; a heartbeat that arrives
        // before the expiry is written puts the lease back, and the writer then drops it.
        let lapsed = shared.leases().take_lapsed(now);
        for (service, instance) in lapsed {
            let op = Op::Expire {
                service: service.clone(),
                instance: instance.clone(),
                term,
            };
            let shared = Arc::clone(&shared);
            // The writer drops it if the lease was renewed or the instance left meanwhile.
            tokio::spawn(async move {
                if let Err(e) = shared.write(op, "draft").await {
                    let kept = keeps_lease(&e);
                    if kept {
                        shared.leases().put_back(&service, &instance, now);
                    }
                    warn!(
                        service = service.as_str(),
                        instance = instance.as_str(),
                        error = %e,
                        lease_kept = kept,
                        "could not record an expiry"
                    );
                }
            });
        }
    }
}

/// What the lease loop does at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Expire what lapsed (with the keeper's term, when there is one).
    Expire(Option<u64>),
    /// Nothing: another node is the keeper.
    Wait,
    /// This node just became keeper with this term: give every passing instance a full TTL
    /// first.
    Start(u64),
}

/// Decides a check from who keeps the leases now and the term this node last kept under,
/// which it updates.
fn standing(now: Keeping, keeping: &mut Option<u64>) -> Standing {
    match now {
        Keeping::Alone => Standing::Expire(None),
        Keeping::Another => {
            *keeping = None;
            Standing::Wait
        }
        Keeping::Keeper(term) if *keeping == Some(term) => Standing::Expire(Some(term)),
        Keeping::Keeper(term) => {
            *keeping = Some(term);
            Standing::Start(term)
        }
    }
}

/// Whether a lapse whose expiry failed with `e` goes back in the lease table: yes when the
/// expiry was not written (the log refused or failed the append, or stopped), so the
/// instance still counts and is tried again; no when the writer refused the expiry itself
/// (the instance is not there any more).
pub(crate) fn keeps_lease(e: &WriteError) -> bool {
    matches!(e, WriteError::Log(_))
}

#[cfg(test)]
mod tests {
    use draft_log::{Error, StorageFailure};

    use super::*;

    #[test]
    fn only_the_keeper_expires_and_a_new_term_starts_with_full_leases() {
        let mut keeping = None;
        assert_eq!(
            standing(Keeping::Alone, &mut keeping),
            Standing::Expire(None)
        );
        assert_eq!(standing(Keeping::Another, &mut keeping), Standing::Wait);
        assert_eq!(
            standing(Keeping::Keeper(3), &mut keeping),
            Standing::Start(3)
        );
        assert_eq!(
            standing(Keeping::Keeper(3), &mut keeping),
            Standing::Expire(Some(3))
        );
        // Stepped down, then keeper again (even under the same term): full leases again.
        assert_eq!(standing(Keeping::Another, &mut keeping), Standing::Wait);
        assert_eq!(
            standing(Keeping::Keeper(3), &mut keeping),
            Standing::Start(3)
        );
        assert_eq!(
            standing(Keeping::Keeper(5), &mut keeping),
            Standing::Start(5)
        );
    }

    #[test]
    fn a_lapse_whose_expiry_was_not_written_is_kept() {
        let full = StorageFailure::from_io("append", &std::io::ErrorKind::StorageFull.into());
        assert!(keeps_lease(&WriteError::Log(Error::ReadOnly(full))));
        assert!(keeps_lease(&WriteError::Log(Error::Closed)));
        assert!(!keeps_lease(&WriteError::NotFound));
    }
}
