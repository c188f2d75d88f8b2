//! The instance's lease: register when serving, heartbeat at about a third of the TTL (with
//! jitter), register again when a heartbeat is answered 404 (the lease lapsed, say after the
//! process was stopped), keep serving and retry with back-off while the node is out of reach,
//! and deregister at shutdown.

use std::sync::Arc;
use std::time::Duration;

use draft_blueprint::wire::Registration;
use draft_http::Shutdown;
use tracing::{info, warn};

use crate::backoff::{Backoff, jitter_fraction, jittered};
use crate::shared::Shared;

/// How long deregistering may take at shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps one instance registered.
pub(crate) struct Registrar {
    pub(crate) shared: Arc<Shared>,
    pub(crate) registration: Registration,
    /// Told the outcome of the first attempt to register.
    pub(crate) first: Option<tokio::sync::oneshot::Sender<bool>>,
}

fn timed_out(limit: Duration) -> draft_http::ClientError {
    draft_http::ClientError::Protocol(format!("no answer within {limit:?}"))
}

/// The pause between heartbeats: a third of the TTL, less up to a quarter of jitter.
pub(crate) fn heartbeat_interval(ttl: Duration, fraction: f64) -> Duration {
    jittered(ttl / 3, fraction)
}

impl Registrar {
    /// Registers, then keeps the lease alive until `stop` is triggered.
    pub(crate) async fn run(mut self, stop: Shutdown) {
        let (service, instance) = (&self.shared.service, &self.shared.instance);
        let blueprint = &self.shared.node.blueprint;
        let ttl = Duration::from_millis(self.registration.ttl_ms);
        // Retries come well inside the TTL, and no request outlives a heartbeat interval.
        let retry_cap = (ttl / 6).max(Duration::from_millis(50));
        let mut backoff = Backoff::new(Duration::from_millis(50).min(retry_cap), retry_cap);
        let limit = (ttl / 3).max(Duration::from_millis(100));
        let mut registered = false;
        let mut complained = false;
        loop {
            let pause = if registered {
                let beat = tokio::select! {
                    () = stop.triggered() => return,
                    beat = tokio::time::timeout(limit, blueprint.heartbeat(service, instance)) => beat,
                };
                match beat.unwrap_or_else(|_| Err(timed_out(limit))) {
                    Ok(true) => {
                        backoff.reset();
                        heartbeat_interval(ttl, jitter_fraction())
                    }
                    Ok(false) => {
                        warn!(%service, %instance, "the lease lapsed; registering again");
                        registered = false;
                        self.shared.metrics.registered.set(0);
                        Duration::ZERO
                    }
                    Err(e) => {
                        warn!(error = %e, "heartbeat failed; retrying");
                        backoff.next_delay()
                    }
                }
            } else {
                let outcome = tokio::select! {
                    () = stop.triggered() => return,
                    outcome = tokio::time::timeout(
                        limit,
                        blueprint.register(service, instance, &self.registration),
                    ) => outcome.unwrap_or_else(|_| Err(timed_out(limit))),
                };
                if let Some(first) = self.first.take() {
                    let _ = first.send(outcome.is_ok());
                }
                match outcome {
                    Ok(revision) => {
                        info!(%service, %instance, address = %self.registration.address, revision, "registered");
                        registered = true;
                        complained = false;
                        backoff.reset();
                        self.shared.metrics.registered.set(1);
                        heartbeat_interval(ttl, jitter_fraction())
                    }
                    Err(e) => {
                        if !complained {
                            warn!(error = %e, "cannot register; retrying with back-off");
                            complained = true;
                        }
                        backoff.next_delay()
                    }
                }
            };
            tokio::select! {
                () = stop.triggered() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Deregisters (bounded in time; an unreachable node lets the lease lapse instead).
    pub(crate) async fn deregister(shared: &Shared) {
        let call = shared
            .node
            .blueprint
            .deregister(&shared.service, &shared.instance);
        match tokio::time::timeout(DEREGISTER_TIMEOUT, call).await {
            Ok(Ok(_)) => {
                info!(service = %shared.service, instance = %shared.instance, "deregistered");
            }
            Ok(Err(e)) => warn!(error = %e, "deregistering failed; the lease will lapse"),
            Err(_) => warn!("deregistering timed out; the lease will lapse"),
        }
        shared.metrics.registered.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_come_at_about_a_third_of_the_ttl() {
        let ttl = Duration::from_secs(9);
        assert_eq!(heartbeat_interval(ttl, 0.0), Duration::from_secs(3));
        assert_eq!(heartbeat_interval(ttl, 1.0), Duration::from_millis(2250));
    }
}
