//! [`Chassis`]: a built service, and [`Chassis::serve`], which runs it until a signal and
//! then shuts it down in order:
//!
//! 1. readiness false;
//! 2. deregister;
//! 3. the drain delay (the ingress stops sending);
//! 4. stop accepting; in-flight requests and WebSockets finish until the deadline;
//! 5. stop hook intake; the running handlers finish (and are acknowledged) until the deadline;
//! 6. close the producers (what was sent is acknowledged), stop the KV follower;
//! 7. stop plugins in reverse order;
//! 8. flush the logs and return, so `main` exits 0.
//!
//! A second SIGTERM or SIGINT during all this exits at once (status 1).

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use draft_blueprint::wire::{Registration, Route};
use draft_http::{Limits, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::builder::Builder;
use crate::config::Config;
use crate::config::live::Follower;
use crate::env::Environment;
use crate::error::Error;
use crate::hook::runner::Runner;
use crate::hook::{Handler, Hook};
use crate::metrics::Metrics;
use crate::node::{NodeLink, Socket};
use crate::plugin::{Started, stop_all};
use crate::producer::{Producer, Producers};
use crate::registration::Registrar;
use crate::shared::Shared;
use crate::signals;

/// How long `serve` waits for the first registration before it announces itself anyway.
const FIRST_REGISTRATION: Duration = Duration::from_secs(2);

/// The durations a service runs by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ttl: Duration,
    pub(crate) drain_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
}

/// What `build` hands over.
pub(crate) struct Parts {
    pub(crate) name: String,
    pub(crate) env: Environment,
    pub(crate) node: NodeLink,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) routes: Vec<Route>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) timing: Timing,
    pub(crate) hooks: Vec<(Hook, Handler)>,
    pub(crate) plugins: Vec<Started>,
    pub(crate) follower: Follower,
    pub(crate) watch_socket: Option<Socket>,
    pub(crate) config: (TypeId, Box<dyn Any + Send + Sync>),
    pub(crate) listener: TcpListener,
}

/// A service, built and ready to serve.
pub struct Chassis {
    shared: Arc<Shared>,
    registration: Registration,
    timing: Timing,
    hooks: Vec<(Hook, Handler, Arc<AtomicBool>)>,
    follower: Follower,
    watch_socket: Option<Socket>,
    config: (TypeId, Box<dyn Any + Send + Sync>),
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Chassis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chassis")
            .field("service", &self.shared.service)
            .field("instance", &self.shared.instance)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Chassis {
    /// Starts declaring the service `name`.
    #[must_use]
    pub fn builder(name: &str) -> Builder {
        Builder::new(name)
    }

    pub(crate) fn new(parts: Parts) -> Self {
        let local_addr = parts
            .listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let instance = parts.env.instance.clone().unwrap_or_else(|| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            format!("{}-{}-{}", parts.name, std::process::id(), &id[..8])
        });
        let address = parts
            .env
            .advertise
            .clone()
            .unwrap_or_else(|| local_addr.to_string());
        let timing = Timing {
            ttl: parts.env.ttl.unwrap_or(parts.timing.ttl),
            drain_delay: parts.env.drain_delay.unwrap_or(parts.timing.drain_delay),
            shutdown_timeout: parts
                .env
                .shutdown_timeout
                .unwrap_or(parts.timing.shutdown_timeout),
        };
        let registration = Registration {
            address,
            routes: parts.routes,
            metadata: parts.metadata,
            ttl_ms: timing.ttl.as_millis() as u64,
        };
        let hooks: Vec<_> = parts
            .hooks
            .into_iter()
            .map(|(hook, handler)| (hook, handler, Arc::new(AtomicBool::new(false))))
            .collect();
        let shared = Arc::new(Shared {
            service: parts.name,
            instance,
            node: parts.node,
            producers: Producers::default(),
            metrics: parts.metrics,
            plugins: parts.plugins,
            hooks: hooks
                .iter()
                .map(|(hook, _, connected)| (hook.name(), Arc::clone(connected)))
                .collect(),
            serving: AtomicBool::new(false),
        });
        Self {
            shared,
            registration,
            timing,
            hooks,
            follower: parts.follower,
            watch_socket: parts.watch_socket,
            config: parts.config,
            listener: parts.listener,
            local_addr,
        }
    }

    /// The service's name.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// This instance's id.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Where the service listens.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live configuration, if `T` is the type given to [`Builder::config`] (without
    /// one, `serde_json::Value`).
    #[must_use]
    pub fn config<T: Send + Sync + 'static>(&self) -> Option<Config<T>> {
        if self.config.0 != TypeId::of::<T>() {
            return None;
        }
        self.config
            .1
            .downcast_ref::<watch::Receiver<Arc<T>>>()
            .map(|rx| Config::new(rx.clone()))
    }

    /// The handle of the started plugin whose handle type is `H` (a pool, a client).
    #[must_use]
    pub fn plugin<H: Send + Sync + 'static>(&self) -> Option<Arc<H>> {
        self.shared
            .plugins
            .iter()
            .find(|s| s.plugin.handle_type() == TypeId::of::<H>())
            .and_then(|s| Arc::clone(&s.handle).downcast::<H>().ok())
    }

    /// The pipelined producer to `channel`, connected on first use and shared afterwards.
    ///
    /// # Errors
    /// [`Error::Node`] if the node refuses the channel or cannot be reached.
    pub async fn producer(&self, channel: &str) -> Result<Producer, Error> {
        self.shared
            .producer(channel)
            .await
            .map_err(|source| Error::Node {
                what: format!("opening a producer to {channel}"),
                source,
            })
    }

    /// Serves `router` (with `/healthz`, `/readyz` and `/metrics` added), registers, runs
    /// the hooks and follows the configuration until SIGTERM or SIGINT, then shuts down in
    /// order (see the module docs). Prints `listening http://ADDR instance=ID` on stdout once
    /// it accepts requests and the first attempt to register is answered.
    ///
    /// # Errors
    /// None today once built; the signature leaves room for failures that must stop the
    /// service.
    pub async fn serve(self, router: Router) -> Result<(), Error> {
        self.serve_until(router, signals::first()).await
    }

    /// [`Chassis::serve`] until `stop` resolves instead of a signal (a second signal still
    /// exits at once).
    ///
    /// # Errors
    /// As [`Chassis::serve`].
    pub async fn serve_until(
        self,
        router: Router,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let app = crate::ops::wrap(router, Arc::clone(&shared));
        let (http_stop, hooks_stop, watch_stop, lease_stop) = (
            Shutdown::new(),
            Shutdown::new(),
            Shutdown::new(),
            Shutdown::new(),
        );
        let http = tokio::spawn(draft_http::serve(
            self.listener,
            app,
            Limits::default(),
            http_stop.clone(),
        ));
        let follower = {
            let stop = watch_stop.triggered();
            tokio::spawn(self.follower.follow(self.watch_socket, stop))
        };
        let runners: Vec<_> = self
            .hooks
            .into_iter()
            .map(|(hook, handler, connected)| {
                let runner = Runner {
                    hook,
                    handler,
                    shared: Arc::clone(&shared),
                    connected,
                    stop: hooks_stop.clone(),
                };
                tokio::spawn(runner.run())
            })
            .collect();
        let (first, registered) = tokio::sync::oneshot::channel();
        let registrar = tokio::spawn(
            Registrar {
                shared: Arc::clone(&shared),
                registration: self.registration,
                first: Some(first),
            }
            .run(lease_stop.clone()),
        );
        shared.serving.store(true, Ordering::Release);
        // Announce once registered (or once the first attempt failed: the registrar keeps
        // trying), so whoever waits for the line can route to the service.
        let _ = tokio::time::timeout(FIRST_REGISTRATION, registered).await;
        println!(
            "listening http://{} instance={}",
            self.local_addr, shared.instance
        );
        info!(service = %shared.service, instance = %shared.instance, addr = %self.local_addr, "serving");

        stop.await;
        tokio::spawn(signals::second_exits());
        let timing = self.timing;
        info!("shutting down");
        // 1. Not ready.
        shared.serving.store(false, Ordering::Release);
        // 2. Deregister.
        lease_stop.trigger();
        let _ = registrar.await;
        Registrar::deregister(&shared).await;
        // 3. Let the ingress stop sending.
        tokio::time::sleep(timing.drain_delay).await;
        let deadline = Instant::now() + timing.shutdown_timeout;
        // 4. Drain HTTP and WebSockets.
        http_stop.trigger();
        if tokio::time::timeout_at(deadline, http).await.is_err() {
            warn!("requests still in flight at the shutdown deadline");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !http_stop.drain(left).await {
            warn!("WebSockets still open at the shutdown deadline");
        }
        // 5. Stop hook intake; running handlers finish and are acknowledged.
        hooks_stop.trigger();
        for runner in runners {
            if tokio::time::timeout_at(deadline, runner).await.is_err() {
                warn!("a hook handler was still running at the shutdown deadline");
            }
        }
        // 6. Producers and the KV follower.
        if tokio::time::timeout_at(deadline, shared.producers.close())
            .await
            .is_err()
        {
            warn!("produced events still unacknowledged at the shutdown deadline");
        }
        watch_stop.trigger();
        let _ = follower.await;
        // 7. Plugins, in reverse order.
        stop_all(&shared.plugins).await;
        // 8. Flush telemetry; done.
        info!("stopped");
        crate::telemetry::flush();
        Ok(())
    }
}
