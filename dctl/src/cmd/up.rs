//! `dctl up`: its flags, as clap parses them (with their `DRAFT_*` variables), as the top
//! layer of the node's settings; then the node, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use dctl::node::{
    AuthLayer, AuthMode, BackendChoice, CatalystLayer, DurabilityChoice, FuseLayer, Layer,
    LogLayer, Node, NodeLayer, Settings,
};
use draft_http::Cidr;

/// When appends are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// After fsync (group commit).
    Sync,
    /// Before fsync; fsync every `flush-interval-ms`.
    Buffered,
}

/// Which engine holds the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendArg {
    /// The embedded log in the data directory (the default).
    Fjall,
    /// A NATS JetStream cluster (`--nats-url`).
    Jetstream,
}

/// Whether the API checks tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthArg {
    /// Every request but health, readiness and the API document needs a token.
    On,
    /// No request needs one (warned about when the API is not on loopback).
    Off,
    /// Off while the API listens on loopback only, on otherwise (the default).
    Auto,
}

/// `dctl up`. Flags win over `DRAFT_*` variables, which win over `draft.toml`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The node's name, the source of its control events (default: the host name).
    #[arg(long, env = "DRAFT_NODE")]
    pub(crate) node_name: Option<String>,
    /// The API's listen address.
    #[arg(long, env = "DRAFT_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// The ingress (Fuse) listen address.
    #[arg(long, env = "DRAFT_INGRESS")]
    pub(crate) ingress: Option<SocketAddr>,
    /// Where the log lives.
    #[arg(long, env = "DRAFT_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// A `draft.toml` with node settings (default: `./draft.toml` if it exists).
    #[arg(long, env = "DRAFT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// `sync` (fsync before acknowledging, the default) or `buffered`.
    #[arg(long, env = "DRAFT_DURABILITY")]
    pub(crate) durability: Option<DurabilityArg>,
    /// With `buffered`: how often to fsync, in milliseconds.
    #[arg(long, env = "DRAFT_FLUSH_INTERVAL_MS")]
    pub(crate) flush_interval_ms: Option<u64>,
    /// The most client connections open at once, per listener (API and ingress); one more
    /// is closed at once. Default 4096.
    #[arg(long, env = "DRAFT_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// How long a client has to send a request's headers, in milliseconds; also the longest
    /// a keep-alive connection may sit idle. Default 30000.
    #[arg(long, env = "DRAFT_HEADER_READ_TIMEOUT_MS")]
    pub(crate) header_read_timeout_ms: Option<u64>,
    /// How long a stopping node waits for in-flight requests and WebSockets before it cuts
    /// them off, fsyncs and exits, in milliseconds. Keep it under the supervisor's grace
    /// period (Kubernetes: 30 s). Default 10000.
    #[arg(long, env = "DRAFT_SHUTDOWN_TIMEOUT_MS")]
    pub(crate) shutdown_timeout_ms: Option<u64>,
    /// The most keys the KV store holds (every key's metadata is in memory, its value in the
    /// log); one more put is answered 507. Default 1000000.
    #[arg(long, env = "DRAFT_KV_MAX_KEYS")]
    pub(crate) kv_max_keys: Option<usize>,
    /// The most bytes of keys and values the KV store holds; a put past it is answered 507.
    /// Default 268435456 (256 MiB).
    #[arg(long, env = "DRAFT_KV_MAX_BYTES")]
    pub(crate) kv_max_bytes: Option<u64>,
    /// How long an instance may stay critical (its lease lapsed and it did not register
    /// again) before the node removes it, as `io.draft.instance.removed`, in seconds
    /// (Consul's `DeregisterCriticalServiceAfter`). Default: never.
    #[arg(long, env = "DRAFT_REMOVE_CRITICAL_AFTER_SECS")]
    pub(crate) remove_critical_after_secs: Option<u64>,
    /// The longest lease an instance gets when the node starts, in milliseconds (default:
    /// its full TTL). Longer than the instances' heartbeat interval, or live ones lapse once.
    #[arg(long, env = "DRAFT_RESTART_GRACE_MS")]
    pub(crate) restart_grace_ms: Option<u64>,
    /// The most connections open at once from one client address (an IPv4 address, or an
    /// IPv6 /64), per listener; one more is closed at once. Default 512.
    #[arg(long, env = "DRAFT_MAX_CONNECTIONS_PER_ADDRESS")]
    pub(crate) max_connections_per_address: Option<usize>,
    /// The most WebSockets open at once, per listener (they also count as connections until
    /// they close); one more upgrade is answered 503. Default 2048.
    #[arg(long, env = "DRAFT_MAX_WEBSOCKETS")]
    pub(crate) max_websockets: Option<usize>,
    /// How long a client has to send a request's body, in milliseconds, from the end of its
    /// headers; later it is answered 408 and disconnected. Default 30000.
    #[arg(long, env = "DRAFT_BODY_READ_TIMEOUT_MS")]
    pub(crate) body_read_timeout_ms: Option<u64>,
    /// How long a WebSocket client (consume, produce, watch) may take no write (its TCP window
    /// stays shut: it does not read) before the node closes it with 1008, in milliseconds; it
    /// can connect again and resume from its last offset. Default 30000.
    #[arg(long, env = "DRAFT_WS_WRITE_TIMEOUT_MS")]
    pub(crate) ws_write_timeout_ms: Option<u64>,
    /// How long a request may take until its response starts, in milliseconds: later the API
    /// answers 503 and the ingress 504 (a route's longer `timeout_ms` wins on the ingress).
    /// WebSockets are exempt once upgraded. Default 60000.
    #[arg(long, env = "DRAFT_REQUEST_TIMEOUT_MS")]
    pub(crate) request_timeout_ms: Option<u64>,
    /// A PEM certificate chain (leaf first): the API and the ingress serve HTTPS with it.
    #[arg(long, env = "DRAFT_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "DRAFT_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The largest event accepted, in bytes.
    #[arg(long, env = "DRAFT_MAX_EVENT_BYTES")]
    pub(crate) max_event_bytes: Option<usize>,
    /// The largest batch request accepted, in bytes.
    #[arg(long, env = "DRAFT_MAX_BATCH_BYTES")]
    pub(crate) max_batch_bytes: Option<usize>,
    /// How deeply an event may nest, the event object itself counting as one: 1 to 127
    /// levels; a deeper one is refused with 400 naming `data`. Default 127, the most
    /// `serde_json` (the SDK's parser, and most consumers') reads by default.
    #[arg(long, env = "DRAFT_MAX_JSON_DEPTH")]
    pub(crate) max_json_depth: Option<usize>,
    /// How long `source` + `id` is remembered to drop duplicate events, in seconds.
    #[arg(long, env = "DRAFT_DEDUP_WINDOW_SECS")]
    pub(crate) dedup_window_secs: Option<u64>,
    /// How long a consumer group's active member may owe an acknowledgement before a standby
    /// takes over, in milliseconds (groups created without `timeout_ms`). Default 30000.
    #[arg(long, env = "DRAFT_GROUP_TIMEOUT_MS")]
    pub(crate) group_timeout_ms: Option<u64>,
    /// How often consumer groups' acknowledgements are stored, in milliseconds: a node crash
    /// redelivers at most this much of a group. Default 100.
    #[arg(long, env = "DRAFT_GROUP_COMMIT_INTERVAL_MS")]
    pub(crate) group_commit_interval_ms: Option<u64>,
    /// How long channels keep events, in seconds, unless a channel has a retention of its own
    /// (`PUT /v1/channels/{channel}`). Default: for ever.
    #[arg(long, env = "DRAFT_RETENTION_AGE_SECS")]
    pub(crate) retention_age_secs: Option<u64>,
    /// The most bytes a channel keeps (the oldest events go first), unless it has a retention
    /// of its own. Default: no limit.
    #[arg(long, env = "DRAFT_RETENTION_BYTES")]
    pub(crate) retention_bytes: Option<u64>,
    /// The networks instances may register addresses in, as CIDRs separated by commas
    /// (`10.0.0.0/8,fd00::/8`). Default: any address the built-in refusals leave (not
    /// link-local, unspecified, multicast, or one of this node's listeners).
    #[arg(long, env = "DRAFT_UPSTREAM_ALLOW", value_delimiter = ',')]
    pub(crate) upstream_allow: Option<Vec<Cidr>>,
    /// The proxies in front of the ingress (CIDRs, separated by commas) whose
    /// `X-Forwarded-*`, `Forwarded` and `X-Real-IP` headers are kept and appended to.
    /// Default: nobody's; the ingress sets them from the connection.
    #[arg(long, env = "DRAFT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub(crate) trusted_proxies: Option<Vec<Cidr>>,
    /// Whether API requests need a token: `on`, `off`, or `auto` (the default: off while the
    /// API listens on loopback only). With auth on and no token yet, the node makes an admin
    /// token and writes its secret to <data dir>/admin.token.
    #[arg(long, env = "DRAFT_AUTH")]
    pub(crate) auth: Option<AuthArg>,
    /// Which engine holds the log: `fjall` (embedded, in the data directory; the default) or
    /// `jetstream` (a NATS JetStream cluster).
    #[arg(long, env = "DRAFT_BACKEND")]
    pub(crate) backend: Option<BackendArg>,
    /// JetStream: the NATS servers, separated by commas (default `nats://127.0.0.1:4222`).
    #[arg(long, env = "DRAFT_NATS_URL", value_delimiter = ',')]
    pub(crate) nats_url: Option<Vec<String>>,
    /// JetStream: a NATS credentials file to connect with.
    #[arg(long, env = "DRAFT_NATS_CREDS")]
    pub(crate) nats_creds: Option<PathBuf>,
    /// JetStream: how many servers hold each new stream, 1, 3 or 5 (default 3).
    #[arg(long, env = "DRAFT_REPLICAS")]
    pub(crate) replicas: Option<usize>,
    /// JetStream: how long the lease keeper's lock holds without renewal, in milliseconds
    /// (default 10000, at least 1000): a lost keeper is replaced within about this long.
    #[arg(long, env = "DRAFT_KEEPER_TTL_MS")]
    pub(crate) keeper_ttl_ms: Option<u64>,
    /// JetStream: how long an append waits for its acknowledgement before it is sent again
    /// (to the new leader, after a leader stops), in milliseconds, plus 64 ms a MiB
    /// (default 500; 10 to 60000).
    #[arg(long, env = "DRAFT_NATS_ACK_TIMEOUT_MS")]
    pub(crate) nats_ack_timeout_ms: Option<u64>,
}

impl UpArgs {
    /// The flags (and variables) as a settings layer.
    fn layer(self) -> Layer {
        Layer {
            node: NodeLayer {
                name: self.node_name,
                listen: self.listen,
                ingress: self.ingress,
                data_dir: self.data_dir,
                durability: self.durability.map(|d| match d {
                    DurabilityArg::Sync => DurabilityChoice::Sync,
                    DurabilityArg::Buffered => DurabilityChoice::Buffered,
                }),
                flush_interval_ms: self.flush_interval_ms,
                max_connections: self.max_connections,
                header_read_timeout_ms: self.header_read_timeout_ms,
                restart_grace_ms: self.restart_grace_ms,
                remove_critical_after_secs: self.remove_critical_after_secs,
                kv_max_keys: self.kv_max_keys,
                kv_max_bytes: self.kv_max_bytes,
                shutdown_timeout_ms: self.shutdown_timeout_ms,
                max_connections_per_address: self.max_connections_per_address,
                max_websockets: self.max_websockets,
                body_read_timeout_ms: self.body_read_timeout_ms,
                ws_write_timeout_ms: self.ws_write_timeout_ms,
                request_timeout_ms: self.request_timeout_ms,
                tls_cert: self.tls_cert,
                tls_key: self.tls_key,
            },
            catalyst: CatalystLayer {
                max_event_bytes: self.max_event_bytes,
                max_batch_bytes: self.max_batch_bytes,
                max_json_depth: self.max_json_depth,
                dedup_window_secs: self.dedup_window_secs,
                // draft.toml only.
                produce_window_frames: None,
                produce_window_bytes: None,
                group_timeout_ms: self.group_timeout_ms,
                group_commit_interval_ms: self.group_commit_interval_ms,
                retention_age_secs: self.retention_age_secs,
                retention_bytes: self.retention_bytes,
            },
            fuse: FuseLayer {
                upstream_allow: self.upstream_allow,
                trusted_proxies: self.trusted_proxies,
            },
            auth: AuthLayer {
                mode: self.auth.map(|a| match a {
                    AuthArg::On => AuthMode::On,
                    AuthArg::Off => AuthMode::Off,
                    AuthArg::Auto => AuthMode::Auto,
                }),
            },
            log: LogLayer {
                backend: self.backend.map(|b| match b {
                    BackendArg::Fjall => BackendChoice::Fjall,
                    BackendArg::Jetstream => BackendChoice::Jetstream,
                }),
                nats_url: self.nats_url,
                nats_creds: self.nats_creds,
                replicas: self.replicas,
                keeper_ttl_ms: self.keeper_ttl_ms,
                nats_ack_timeout_ms: self.nats_ack_timeout_ms,
            },
        }
    }
}

/// Runs a node with flags over `DRAFT_*` over `draft.toml` over defaults, until SIGINT or
/// SIGTERM.
pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let file = Layer::load(args.config.as_deref())?;
    let settings = Settings::resolve(args.layer().over(file), dctl::node::host_name)?;
    dctl::node::raise_open_file_limit(settings.limits.max_connections);
    dctl::node::disable_huge_pages();
    let node = Node::open(settings).await?;
    if let Some(path) = node.admin_token_file() {
        // The path, never the secret: it is in the file (mode 0600), for whoever may read it.
        println!(
            "admin token created: its secret is in {} (dctl --token-file {0} ...)",
            path.display()
        );
    }
    // Machine-readable for scripts and tests that bind port 0.
    let scheme = node.scheme();
    println!(
        "listening api={scheme}://{} ingress={scheme}://{}",
        node.api_addr()?,
        node.ingress_addr()?
    );
    node.serve(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
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
