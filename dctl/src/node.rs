//! [`Node`]: one Draft node (Catalyst, Blueprint and Fuse over one `LogBackend`, the
//! operations endpoints, the API and ingress listeners) as a value: open it, then serve it
//! until a shutdown future resolves.

mod auth;
mod backend;
mod cluster;
mod control;
mod group_locks;
mod ops;
mod settings;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use draft_blueprint::{Blueprint, BlueprintConfig, Revision, UpstreamPolicy};
use draft_catalyst::Catalyst;
use draft_fuse::{Fuse, FuseConfig};
use draft_http::{ApiError, Code, Limits, Role, Shutdown, Tls, serve_tls};
use draft_log::LogBackend;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

pub use self::settings::{
    AuthLayer, AuthMode, AuthSettings, BackendChoice, BackendSettings, CatalystLayer,
    DEFAULT_KEEPER_TTL, DEFAULT_NATS_URL, DurabilityChoice, FuseLayer, Layer, LogLayer, NodeLayer,
    Settings, host_name,
};
use crate::error::{Error, Result};

/// How long WebSockets get to send their close frames on the way down.
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// A node, opened and bound, not yet serving.
pub struct Node {
    settings: Settings,
    parts: ops::Parts,
    guard: auth::Guard,
    /// The file of the admin token this start made, if it made one.
    admin_token: Option<PathBuf>,
    api: TcpListener,
    ingress: TcpListener,
    shutdown: Shutdown,
    /// TLS for both listeners, if configured.
    tls: Option<Tls>,
}

impl Node {
    /// Opens the log the settings name (the embedded log in `settings.data_dir`, or a
    /// JetStream cluster) and the node on it.
    ///
    /// # Errors
    /// [`Error::OpenLog`], [`Error::ConnectLog`], and those of [`Node::open_on`].
    pub async fn open(settings: Settings) -> Result<Self> {
        let (log, cluster) = backend::open(&settings).await?;
        Self::open_with(settings, log, cluster).await
    }

    /// Opens the node on `log`: rebuilds the registry's projection, the broker's duplicate
    /// window and its consumer groups from it, makes the first admin token if tokens are
    /// checked and none is valid, and binds both listeners.
    ///
    /// # Errors
    /// [`Error::Start`] if reading the log fails, [`Error::Bootstrap`] if the first token
    /// cannot be made, [`Error::Bind`] for a listen address.
    pub async fn open_on(settings: Settings, log: Arc<dyn LogBackend>) -> Result<Self> {
        Self::open_with(settings, log, None).await
    }

    /// [`Node::open_on`], as one of the nodes of `cluster` when it is given.
    async fn open_with(
        settings: Settings,
        log: Arc<dyn LogBackend>,
        cluster: Option<Arc<cluster::Cluster>>,
    ) -> Result<Self> {
        let started = tokio::time::Instant::now();
        let shutdown = Shutdown::new();
        // Bound first: the upstream policy refuses instances at the node's own listeners, so
        // it needs their addresses (the ports, when the settings say 0).
        let api = bind("api", settings.listen).await?;
        let ingress = bind("ingress", settings.ingress).await?;
        let mut blueprint_config =
            BlueprintConfig::new(&settings.name, settings.data_dir.join("checkpoints"));
        blueprint_config.shutdown = shutdown.clone();
        blueprint_config.restart_grace = settings.restart_grace;
        blueprint_config.ws_write_timeout = settings.ws_write_timeout;
        blueprint_config.remove_critical_after = settings.remove_critical_after;
        (blueprint_config.max_keys, blueprint_config.max_kv_bytes) = settings.kv_max;
        blueprint_config.upstream = upstream_policy(&settings, &api, &ingress)?;
        // On a clustered log other nodes write `_draft` too: follow it.
        blueprint_config.follow_log = !matches!(settings.backend, BackendSettings::Fjall);
        // With other nodes: share heartbeats, and expire leases only while keeper.
        blueprint_config.peers = cluster
            .clone()
            .map(|c| draft_blueprint::PeersHandle(c as Arc<dyn draft_blueprint::Peers>));
        let blueprint = Blueprint::open(Arc::clone(&log), blueprint_config)
            .await
            .map_err(|e| start_error("registry", &e))?;
        let admin_token = if settings.auth.enabled {
            auth::ensure_admin(&blueprint, &settings.data_dir).await?
        } else {
            None
        };
        if settings.auth.is_open_to_the_network(settings.listen) {
            warn!(
                listen = %settings.listen,
                "auth is off and the API does not listen on loopback only: anyone who can reach \
                 it can do anything; use --auth on (or auto) to require tokens"
            );
        }
        let catalyst_config = draft_catalyst::CatalystConfig {
            shutdown: shutdown.clone(),
            ws_write_timeout: settings.ws_write_timeout,
            // Other nodes append too: a retry that reaches one of them is dropped by the log.
            log_dedup: !matches!(settings.backend, BackendSettings::Fjall),
            ..settings.catalyst.clone()
        };
        // Catalyst's control events (consumer groups) go through Blueprint's writer.
        let control = Arc::new(control::ThroughBlueprint(blueprint.clone()));
        // With other nodes on the log, each consumer group is served by one node at a time.
        let catalyst = match &cluster {
            Some(c) => {
                let locks = c.group_locks();
                Catalyst::shared(Arc::clone(&log), catalyst_config, control, locks).await
            }
            None => Catalyst::new(Arc::clone(&log), catalyst_config, control).await,
        }
        .map_err(|e| start_error("broker", &e))?;
        let control_head = log
            .head(blueprint.control())
            .await
            .map_err(|e| start_error("registry", &e))?;
        let fuse = Fuse::new(
            &blueprint,
            FuseConfig {
                trusted_proxies: settings.trusted_proxies.clone(),
            },
        );
        let guard = auth::Guard {
            enabled: settings.auth.enabled,
            blueprint: blueprint.clone(),
        };
        let parts = ops::Parts {
            name: settings.name.clone(),
            log,
            catalyst,
            blueprint,
            fuse,
            started,
            control_at_open: control_head.and_then(|h| h.last()).map(Revision::from),
            shutdown: shutdown.clone(),
            backend: settings.backend.status(),
            cluster,
        };
        let tls = match &settings.tls {
            None => None,
            Some((cert, key)) => {
                Some(Tls::from_files(cert, key).map_err(|e| Error::Settings(format!("TLS: {e}")))?)
            }
        };
        Ok(Self {
            settings,
            parts,
            guard,
            admin_token,
            api,
            ingress,
            shutdown,
            tls,
        })
    }

    /// `https` when the listeners serve TLS, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Where the API listens.
    ///
    /// # Errors
    /// The socket's error, if its address cannot be read.
    pub fn api_addr(&self) -> std::io::Result<SocketAddr> {
        self.api.local_addr()
    }

    /// Where the ingress listens.
    ///
    /// # Errors
    /// The socket's error, if its address cannot be read.
    pub fn ingress_addr(&self) -> std::io::Result<SocketAddr> {
        self.ingress.local_addr()
    }

    /// The file this start wrote the first admin token's secret to (auth on, no valid token
    /// before), if it did.
    #[must_use]
    pub fn admin_token_file(&self) -> Option<&Path> {
        self.admin_token.as_deref()
    }

    /// Whether the API checks tokens.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.guard.enabled
    }

    /// The node's shutdown token: triggering it stops the node as `serve`'s future does.
    #[must_use]
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The API: every service's routes, the operations endpoints, JSON 404 and 405, every
    /// request authorized (see `node/auth.rs`), and server errors logged once.
    pub fn router(&self) -> Router {
        let p = &self.parts;
        draft_catalyst::router(p.catalyst.clone())
            .merge(draft_blueprint::router(p.blueprint.clone()))
            .merge(draft_fuse::router(p.blueprint.clone()))
            .merge(ops::router(p.clone()))
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.guard.clone(),
                auth::check,
            ))
            .layer(axum::middleware::from_fn(draft_http::log_server_errors))
    }

    /// Serves both listeners until `stop` resolves; then stops accepting, finishes in-flight
    /// requests and closes WebSockets with 1001, for at most the shutdown timeout (then
    /// what is left is cut off), fsyncs and returns.
    ///
    /// # Errors
    /// [`Error::Sync`] if the final fsync fails.
    pub async fn serve(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let app = self.router();
        let Self {
            settings,
            parts,
            api,
            ingress,
            shutdown,
            tls,
            ..
        } = self;
        let scheme = if tls.is_some() { "https" } else { "http" };
        info!(
            api = %api.local_addr().map_or_else(|e| e.to_string(), |a| format!("{scheme}://{a}")),
            ingress = %ingress.local_addr().map_or_else(|e| e.to_string(), |a| format!("{scheme}://{a}")),
            data_dir = %settings.data_dir.display(),
            durability = ?settings.durability,
            auth = settings.auth.enabled,
            "draft node up"
        );
        let ingress = tokio::spawn(serve_tls(
            ingress,
            draft_fuse::ingress(parts.fuse.clone()),
            // It forwards: a request past its deadline is the upstream's, 504.
            Limits {
                role: Role::Gateway,
                ..settings.limits
            },
            shutdown.clone(),
            tls.clone(),
        ));
        let trigger = shutdown.clone();
        let triggered_at = Arc::new(std::sync::OnceLock::new());
        let at = Arc::clone(&triggered_at);
        tokio::spawn(async move {
            stop.await;
            info!("shutting down: draining requests and closing WebSockets");
            let _ = at.set(tokio::time::Instant::now());
            trigger.trigger();
        });
        let api = tokio::spawn(serve_tls(api, app, settings.limits, shutdown.clone(), tls));
        let aborts = [api.abort_handle(), ingress.abort_handle()];
        let listeners = async {
            for (name, task) in [("API", api), ("ingress", ingress)] {
                if let Err(e) = task.await {
                    warn!(error = %e, listener = name, "a listener task failed");
                }
            }
        };
        let timeout = settings.shutdown_timeout;
        let out_of_time = async {
            shutdown.triggered().await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            () = listeners => {}
            () = out_of_time => {
                warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    "requests still in flight at the shutdown timeout; closing them"
                );
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
            }
        }
        // WebSockets were handed off by the listeners: give them a moment to send their close,
        // within the shutdown timeout, so the fsync below comes before a supervisor's SIGKILL.
        let end = triggered_at
            .get()
            .map_or_else(tokio::time::Instant::now, |t| *t + timeout);
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if !shutdown.drain(left.min(DRAIN_DEADLINE)).await {
            warn!(
                open = shutdown.active(),
                "WebSockets still open after the drain deadline"
            );
        }
        if let Some(cluster) = &parts.cluster {
            // Resign as keeper, so that another node takes over without waiting a TTL.
            cluster.shutdown().await;
        }
        let log = Arc::clone(&parts.log);
        drop(parts);
        log.sync().await.map_err(Error::Sync)?;
        info!("stopped");
        Ok(())
    }
}

fn start_error(service: &'static str, e: &dyn std::fmt::Display) -> Error {
    Error::Start {
        service,
        reason: e.to_string(),
    }
}

/// The upstream policy: `--upstream-allow`, and the node's own two listeners, where they
/// are bound.
fn upstream_policy(
    settings: &Settings,
    api: &TcpListener,
    ingress: &TcpListener,
) -> Result<UpstreamPolicy> {
    let at = |what: &'static str, listener: &TcpListener, addr: SocketAddr| {
        listener
            .local_addr()
            .map_err(|source| Error::Bind { what, addr, source })
    };
    Ok(UpstreamPolicy::new(settings.upstream_allow.clone())
        .with_listener("API", at("api", api, settings.listen)?)
        .with_listener("ingress", at("ingress", ingress, settings.ingress)?))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}

/// A known path asked with a method it does not take: 405 with the JSON error body (axum adds
/// the `Allow` header listing the methods it does take).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "{} does not take {method}; the Allow header lists what it takes",
            uri.path()
        ),
    )
}

/// Raises the soft limit on open files to the hard limit, as Go servers (NATS, Consul) do at
/// start, so that `--max-connections` bounds clients rather than a distribution's default soft
/// limit of 1024; warns if even the hard limit is short of both listeners' caps. A process-wide
/// setting: the binary calls it, a library user decides for themselves.
pub fn raise_open_file_limit(max_connections: usize) {
    let needed = 2 * max_connections as u64 + 1024;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => warn!(
            limit,
            needed,
            "the open-file limit is below 2 x max_connections + 1024: raise it (ulimit -n) or \
             lower --max-connections, or clients will be refused by the kernel first"
        ),
        Ok(limit) => debug!(limit, "open-file limit"),
        Err(e) => warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), as
/// databases that allocate as they go (Redis among them) advise. mimalloc asks for huge pages
/// for its arenas, so a fresh one costs a 2 MiB page zeroed on its first touch: measured here
/// 3-9 ms at a time on the request workers and the writer, which put the acknowledgement's
/// p99.9 at 1,000 events/s at 6.6-21 ms (2.0-2.7 ms without huge pages), for no gain in
/// throughput (see BENCHMARKS.md). A process-wide setting, inherited by children: the binary
/// calls it, a library user decides for themselves. Linux only; a failure is a warning.
pub fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    match rustix::thread::disable_transparent_huge_pages(true) {
        Ok(()) => debug!("transparent huge pages off for this process"),
        Err(e) => warn!(error = %e, "cannot turn transparent huge pages off"),
    }
}
