//! Lease expiry: the lease keeper task, which appends `io.draft.instance.expired` through the
//! write queue for every lease that lapsed in the [`Leases`](crate::lease::Leases) table.

use std::sync::{Arc, Weak};

use tokio::time::Instant;
use tracing::warn;

use crate::applier::Op;
use crate::shared::Shared;

/// Appends `io.draft.instance.expired` for every lease that lapsed, until Blueprint is gone.
pub(crate) async fn keep_leases(shared: Weak<Shared>) {
    loop {
        let Some(every) = shared.upgrade().map(|i| i.config.lease_check) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        // Taken out of the table here, so each lapse is sent once; a heartbeat that arrives
        // before the expiry is written puts the lease back, and the writer then drops it.
        let lapsed = shared.leases().take_lapsed(now);
        for (service, instance) in lapsed {
            let op = Op::Expire {
                service: service.clone(),
                instance: instance.clone(),
            };
            let shared = Arc::clone(&shared);
            // The writer drops it if the lease was renewed or the instance left meanwhile.
            tokio::spawn(async move {
                if let Err(e) = shared.write(op, "draft").await {
                    warn!(
                        service = service.as_str(),
                        instance = instance.as_str(),
                        error = %e,
                        "could not record an expiry"
                    );
                }
            });
        }
    }
}
