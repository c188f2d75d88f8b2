//! `dctl up`: one Draft node (the log, Catalyst and the operations endpoints) in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use draft_blueprint::{Blueprint, BlueprintConfig};
use draft_catalyst::{Catalyst, CatalystConfig};
use draft_fuse::Fuse;
use draft_log::{Durability, Log, LogConfig};
use serde::Deserialize;
use tracing::{debug, info, warn};

use draft_http::{ApiError, Code, Limits, Shutdown, serve};

use crate::cmd::up::{DurabilityArg, UpArgs};

/// `draft.toml`: every field optional; flags and `DRAFT_*` variables win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    node: NodeSection,
    #[serde(default)]
    catalyst: CatalystSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    listen: Option<SocketAddr>,
    ingress: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    durability: Option<DurabilityArg>,
    flush_interval_ms: Option<u64>,
    max_connections: Option<usize>,
    header_read_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalystSection {
    max_event_bytes: Option<usize>,
    max_batch_bytes: Option<usize>,
    dedup_window_secs: Option<u64>,
}

/// The node's validated settings.
#[derive(Debug)]
pub(crate) struct Settings {
    listen: SocketAddr,
    ingress: SocketAddr,
    data_dir: PathBuf,
    durability: Durability,
    limits: Limits,
    catalyst: CatalystConfig,
}

impl Settings {
    /// Merges flags (and their `DRAFT_*` variables) over `draft.toml` over defaults.
    pub(crate) fn resolve(args: UpArgs) -> anyhow::Result<Self> {
        let file = load_file(args.config.as_deref())?;
        let listen = args
            .listen
            .or(file.node.listen)
            .unwrap_or(([127, 0, 0, 1], 7070).into());
        let ingress = args
            .ingress
            .or(file.node.ingress)
            .unwrap_or(([127, 0, 0, 1], 8080).into());
        let data_dir = args
            .data_dir
            .or(file.node.data_dir)
            .unwrap_or_else(|| PathBuf::from(".draft"));
        let flush = args
            .flush_interval_ms
            .or(file.node.flush_interval_ms)
            .unwrap_or(100);
        if flush == 0 {
            bail!("flush interval must be at least 1 ms");
        }
        let durability = match args
            .durability
            .or(file.node.durability)
            .unwrap_or(DurabilityArg::Sync)
        {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Buffered => Durability::Buffered {
                interval: Duration::from_millis(flush),
            },
        };
        let limits = Limits {
            max_connections: args
                .max_connections
                .or(file.node.max_connections)
                .unwrap_or(4096),
            header_read_timeout: Duration::from_millis(
                args.header_read_timeout_ms
                    .or(file.node.header_read_timeout_ms)
                    .unwrap_or(30_000),
            ),
        };
        if limits.max_connections == 0 || limits.header_read_timeout.is_zero() {
            bail!("max connections and the header read timeout must be positive");
        }
        let defaults = CatalystConfig::default();
        let catalyst = CatalystConfig {
            max_event_bytes: args
                .max_event_bytes
                .or(file.catalyst.max_event_bytes)
                .unwrap_or(defaults.max_event_bytes),
            max_batch_bytes: args
                .max_batch_bytes
                .or(file.catalyst.max_batch_bytes)
                .unwrap_or(defaults.max_batch_bytes),
            dedup_window: args
                .dedup_window_secs
                .or(file.catalyst.dedup_window_secs)
                .map_or(defaults.dedup_window, Duration::from_secs),
            ..defaults
        };
        if catalyst.max_event_bytes == 0 || catalyst.max_batch_bytes < catalyst.max_event_bytes {
            bail!("max event bytes must be positive and at most max batch bytes");
        }
        Ok(Self {
            listen,
            ingress,
            data_dir,
            durability,
            limits,
            catalyst,
        })
    }
}

fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("draft.toml"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read config {}", path.display())),
    }
}

/// The log writer thread's nice value (see `LogConfig::writer_nice`).
const WRITER_NICE: i32 = -2;

/// Runs the node until SIGINT or SIGTERM, then stops accepting, finishes in-flight requests,
/// closes WebSockets with 1001, fsyncs and returns.
pub(crate) async fn up(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    raise_open_file_limit(settings.limits.max_connections);
    // The log's writer is the one thread every append goes through; on 2 busy cores it waited
    // for a core a quarter of its time. A slightly larger share where the process may ask for
    // it (BENCHMARKS.md: -2 helped batch produce as much as -10, which took enough CPU from a
    // load generator on the same cores to cost it 10%).
    let log_config = LogConfig::new(&settings.data_dir)
        .durability(settings.durability)
        .writer_nice(WRITER_NICE);
    let log = tokio::task::spawn_blocking(move || Log::open(log_config))
        .await
        .context("log open task failed")?
        .with_context(|| format!("cannot open the log in {}", settings.data_dir.display()))?;
    let backend: Arc<dyn draft_log::LogBackend> = Arc::new(log.clone());
    let catalyst = Catalyst::new(Arc::clone(&backend), settings.catalyst.clone())
        .await
        .context("cannot start the broker")?;
    let blueprint_config = BlueprintConfig::new(node_name(), settings.data_dir.join("checkpoints"));
    let blueprint = Blueprint::open(backend, blueprint_config)
        .await
        .context("cannot start the registry")?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let ingress_listener = tokio::net::TcpListener::bind(settings.ingress)
        .await
        .with_context(|| format!("cannot listen on {} (ingress)", settings.ingress))?;
    let addr = listener.local_addr().context("listener address")?;
    let ingress_addr = ingress_listener.local_addr().context("ingress address")?;
    let fuse = Fuse::new(&blueprint);
    let parts = Parts {
        catalyst: catalyst.clone(),
        blueprint: blueprint.clone(),
        fuse: fuse.clone(),
        log: log.clone(),
        started,
    };
    let app = draft_catalyst::router(catalyst.clone())
        .merge(draft_blueprint::router(blueprint.clone()))
        .merge(draft_fuse::router(blueprint.clone()))
        .merge(ops_router(parts))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(draft_http::log_server_errors));
    info!(
        api = %format!("http://{addr}"),
        ingress = %format!("http://{ingress_addr}"),
        data_dir = %settings.data_dir.display(),
        durability = ?settings.durability,
        "draft node up"
    );
    // Machine-readable for scripts and tests that bind port 0.
    println!("listening api=http://{addr} ingress=http://{ingress_addr}");
    let shutdown = Shutdown::new();
    let ingress = tokio::spawn(serve(
        ingress_listener,
        draft_fuse::ingress(fuse),
        settings.limits,
        shutdown.clone(),
    ));
    let (closer, watches, trigger) = (catalyst.clone(), blueprint.clone(), shutdown.clone());
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: draining requests and closing consumers");
        trigger.trigger();
        closer.close_consumers();
        watches.close_watches();
    });
    serve(listener, app, settings.limits, shutdown.clone()).await;
    ingress.await.context("ingress task")?;
    // WebSockets were handed off by the server: give them a moment to send their close frame.
    let deadline = Instant::now() + Duration::from_secs(2);
    while catalyst.metrics().consumers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(catalyst);
    tokio::task::spawn_blocking(move || log.sync())
        .await
        .context("fsync task")?
        .context("final fsync")?;
    info!("stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, as Go servers (NATS, Consul) do at
/// start, so that `--max-connections` bounds clients rather than a distribution's default soft
/// limit of 1024; warns if even the hard limit is short of both listeners' caps.
fn raise_open_file_limit(max_connections: usize) {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The API described for tools (`GET /v1/openapi.json`).
const OPENAPI: &str = include_str!("openapi.json");

/// What the operations endpoints report on.
#[derive(Clone)]
struct Parts {
    catalyst: Catalyst,
    blueprint: Blueprint,
    fuse: Fuse,
    log: Log,
    started: Instant,
}

/// `/healthz`, `/readyz`, `/metrics`, `/v1/status`, and a JSON 404 for anything else.
fn ops_router(parts: Parts) -> Router {
    let for_status = parts.clone();
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        .route(
            "/metrics",
            get(move || std::future::ready(metrics_text(&parts))),
        )
        .route(
            "/v1/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI,
                )
            }),
        )
        .route(
            "/v1/status",
            get(move || std::future::ready(status(&for_status))),
        )
        .fallback(|| async {
            ApiError::new(
                Code::UnknownEndpoint,
                "no such endpoint; see /v1/openapi.json",
            )
        })
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

fn status(parts: &Parts) -> axum::Json<serde_json::Value> {
    let channels = parts
        .log
        .partitions()
        .iter()
        .filter(|h| !h.partition.is_reserved())
        .count();
    let (revision, services, instances) = parts
        .blueprint
        .read(|p| (p.revision(), p.services().count(), p.instances().count()));
    axum::Json(serde_json::json!({
        "node": node_name(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": parts.started.elapsed().as_millis() as u64,
        "revision": revision,
        "channels": channels,
        "services": services,
        "instances": instances,
        "routes": parts.fuse.table().routes.len(),
    }))
}

fn metrics_text(parts: &Parts) -> axum::response::Response {
    use std::fmt::Write;
    let (catalyst, log) = (&parts.catalyst, &parts.log);
    let mut out = String::new();
    catalyst.metrics().render(&mut out);
    parts.fuse.metrics().render(&mut out);
    out.push_str("# HELP draft_channel_events Events stored per channel.\n# TYPE draft_channel_events gauge\n");
    for head in log.partitions() {
        let _ = writeln!(
            out,
            "draft_channel_events{{channel=\"{}\"}} {}",
            head.partition,
            head.count()
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

/// This node's name: `DRAFT_NODE`, else the host name, else `draft`.
pub(crate) fn node_name() -> String {
    std::env::var("DRAFT_NODE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "draft".to_owned())
}
