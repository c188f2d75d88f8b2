//! A running service's shutdown, in order:
//!
//! 1. readiness false;
//! 2. deregister (the registrar stops first, even mid-request);
//! 3. the drain delay (the ingress stops sending);
//! 4. stop accepting; in-flight requests and WebSockets finish until the deadline;
//! 5. stop hook intake; the running handlers finish (and are acknowledged) within a budget of
//!    their own, then are cancelled, before the plugins they may use stop;
//! 6. close the producers (what was sent is acknowledged), stop the KV follower;
//! 7. stop plugins in reverse order;
//! 8. flush telemetry.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use draft_http::Shutdown;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::chassis::Timing;
use crate::plugin::stop_all;
use crate::registration::Registrar;
use crate::shared::Shared;

/// The least time the running hook handlers get, whatever the requests used up.
const HOOK_GRACE: Duration = Duration::from_secs(1);

/// The tokens that stop a service's background parts.
#[derive(Default)]
pub(crate) struct Stops {
    pub(crate) hooks: Shutdown,
    pub(crate) watch: Shutdown,
    pub(crate) lease: Shutdown,
}

/// What a serving service runs, to be shut down.
pub(crate) struct Running {
    pub(crate) shared: Arc<Shared>,
    pub(crate) timing: Timing,
    pub(crate) stops: Stops,
    pub(crate) http_stop: Shutdown,
    pub(crate) http: JoinHandle<()>,
    pub(crate) follower: JoinHandle<()>,
    pub(crate) runners: Vec<JoinHandle<()>>,
    pub(crate) registrar: JoinHandle<()>,
}

impl Running {
    /// Shuts down in the order of the module docs.
    pub(crate) async fn shut_down(self) {
        let Self {
            shared,
            timing,
            stops,
            http_stop,
            http,
            follower,
            runners,
            registrar,
        } = self;
        info!("shutting down");
        shared.serving.store(false, Ordering::Release);
        stops.lease.trigger();
        let _ = registrar.await;
        Registrar::deregister(&shared).await;
        tokio::time::sleep(timing.drain_delay).await;

        let deadline = Instant::now() + timing.shutdown_timeout;
        http_stop.trigger();
        if tokio::time::timeout_at(deadline, http).await.is_err() {
            warn!("requests still in flight at the shutdown deadline");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !http_stop.drain(left).await {
            warn!("WebSockets still open at the shutdown deadline");
        }

        stops.hooks.trigger();
        let hooks_deadline = deadline.max(Instant::now() + HOOK_GRACE);
        for runner in runners {
            let abort = runner.abort_handle();
            if tokio::time::timeout_at(hooks_deadline, runner)
                .await
                .is_err()
            {
                warn!(
                    "a hook handler was still running at the shutdown deadline; cancelled, its event comes again"
                );
                abort.abort();
            }
        }
        let producers_deadline = Instant::now()
            .max(deadline)
            .max(Instant::now() + HOOK_GRACE);
        if tokio::time::timeout_at(producers_deadline, shared.producers.close())
            .await
            .is_err()
        {
            warn!("produced events still unacknowledged at the shutdown deadline");
        }
        stops.watch.trigger();
        let _ = follower.await;
        stop_all(&shared.plugins).await;
        info!("stopped");
        crate::telemetry::flush();
    }
}
