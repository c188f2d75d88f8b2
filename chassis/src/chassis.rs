//! [`Chassis`]: a built service, and [`Chassis::serve`], which runs it until a signal and
//! then shuts it down in order (`shutdown.rs`: unready, deregister, drain delay, drain
//! requests and WebSockets, finish the running hook handlers, close producers, stop plugins
//! in reverse, flush). A second SIGTERM or SIGINT during all this exits at once (status 1).

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
use tracing::info;

use crate::builder::Builder;
use crate::config::Config;
use crate::config::live::Follower;
use crate::env::Environment;
use crate::error::Error;
use crate::hook::runner::Runner;
use crate::hook::{Handler, Hook};
use crate::metrics::Metrics;
use crate::node::{NodeLink, Socket};
use crate::plugin::Started;
use crate::producer::{Producer, Producers};
use crate::registration::Registrar;
use crate::shared::Shared;
use crate::shutdown::{Running, Stops};
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
    /// The token the listener and the service's WebSockets drain by.
    http_stop: Shutdown,
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
            http_stop: Shutdown::new(),
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

    /// The token the service's HTTP side shuts down by: a WebSocket handler passes it to
    /// `draft_http::ws::serve_socket` (or holds a `guard()` and watches `triggered()`), so
    /// its sockets close with 1001 during the drain and the shutdown waits for them.
    #[must_use]
    pub fn shutdown(&self) -> Shutdown {
        self.http_stop.clone()
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
        let stops = Stops::default();
        let armed = Shutdown::new();
        tokio::spawn(signals::second_exits(armed.triggered()));
        let http = tokio::spawn(draft_http::serve(
            self.listener,
            app,
            service_limits(),
            self.http_stop.clone(),
        ));
        let follower = {
            let stop = stops.watch.triggered();
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
                    stop: stops.hooks.clone(),
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
            .run(stops.lease.clone()),
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
        armed.trigger();
        Running {
            shared,
            timing: self.timing,
            stops,
            http_stop: self.http_stop,
            http,
            follower,
            runners,
            registrar,
        }
        .shut_down()
        .await;
        Ok(())
    }
}

/// A service's listener limits: the defaults, but no per-address limit beyond the cap on
/// connections, since a service behind the node's ingress sees every request it forwards
/// arrive from the node's one address; and a request deadline of a day, the longest route
/// `timeout_ms` Blueprint accepts, so the route's timeout, which the ingress keeps, decides
/// how long a handler may take (the body deadline still holds).
fn service_limits() -> Limits {
    let defaults = Limits::default();
    Limits {
        max_connections_per_address: defaults.max_connections,
        request_timeout: std::time::Duration::from_secs(24 * 60 * 60),
        ..defaults
    }
}
