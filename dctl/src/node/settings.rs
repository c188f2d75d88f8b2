//! [`Settings`]: a node's validated settings, and the [`Layer`]s they are merged from.
//!
//! Each source of settings is a [`Layer`] in which every field is optional: `draft.toml`
//! deserializes into one, `dctl up`'s flags (and their `DRAFT_*` variables) build one. The
//! merge is pure: [`Layer::over`] keeps the higher layer's value where it has one, and
//! [`Settings::resolve`] fills in the defaults and checks the result. Reading the file is
//! the only I/O ([`Layer::load`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use draft_catalyst::CatalystConfig;
use draft_http::{Cidr, Limits};
use draft_log::{Durability, Retention};
use serde::Deserialize;

use crate::node::Error;

/// When appends are acknowledged, as a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityChoice {
    /// After fsync (group commit): the default.
    Sync,
    /// Before fsync; fsync every `flush_interval_ms`.
    Buffered,
}

/// Whether the API checks tokens, as a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every request but health, readiness and the API document needs a token.
    On,
    /// No request needs a token (a warning at start if the API is not on loopback).
    Off,
    /// Off while the API listens on loopback only, on otherwise: the default.
    Auto,
}

/// Whether the API checks tokens, resolved against its listen address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    /// The mode as set (`auto` by default).
    pub mode: AuthMode,
    /// Whether tokens are checked.
    pub enabled: bool,
}

impl AuthSettings {
    /// The mode `mode` (default `auto`) for an API on `listen`: `auto` is on unless `listen`
    /// is a loopback address, so a node never serves a public address without tokens unless
    /// told `off` explicitly (Redis's protected mode, in other words).
    #[must_use]
    pub fn resolve(mode: Option<AuthMode>, listen: SocketAddr) -> Self {
        let mode = mode.unwrap_or(AuthMode::Auto);
        let enabled = match mode {
            AuthMode::On => true,
            AuthMode::Off => false,
            AuthMode::Auto => !listen.ip().is_loopback(),
        };
        Self { mode, enabled }
    }

    /// Whether anyone who can reach `listen` may use the API without a token: auth is off and
    /// the address is not loopback (the node says so in a warning).
    #[must_use]
    pub fn is_open_to_the_network(&self, listen: SocketAddr) -> bool {
        !self.enabled && !listen.ip().is_loopback()
    }
}

/// One source of settings (`draft.toml`, flags, variables): every field optional.
///
/// As a file it also accepts a `[services]` table, and ignores it: `dctl run` reads it from
/// the same `draft.toml` (see [`crate::run::manifest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "FileLayer")]
pub struct Layer {
    /// `[node]`.
    #[serde(default)]
    pub node: NodeLayer,
    /// `[catalyst]`.
    #[serde(default)]
    pub catalyst: CatalystLayer,
    /// `[fuse]`.
    #[serde(default)]
    pub fuse: FuseLayer,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthLayer,
    /// `[log]`.
    #[serde(default)]
    pub log: LogLayer,
}

/// `draft.toml` as the node reads it: its sections, and `dctl run`'s services beside them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    #[serde(default)]
    node: NodeLayer,
    #[serde(default)]
    catalyst: CatalystLayer,
    #[serde(default)]
    fuse: FuseLayer,
    #[serde(default)]
    auth: AuthLayer,
    #[serde(default)]
    log: LogLayer,
    /// `dctl run`'s, checked by it; a table here, whatever it holds.
    #[serde(default, rename = "services")]
    _services: Option<toml::Table>,
}

impl From<FileLayer> for Layer {
    fn from(file: FileLayer) -> Self {
        Self {
            node: file.node,
            catalyst: file.catalyst,
            fuse: file.fuse,
            auth: file.auth,
            log: file.log,
        }
    }
}

/// `[node]`: the process, its listeners and its log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLayer {
    /// The node's name, the `source` of its control events (default: the host name).
    pub name: Option<String>,
    /// The API's listen address (default `127.0.0.1:7070`).
    pub listen: Option<SocketAddr>,
    /// The ingress's listen address (default `127.0.0.1:8080`).
    pub ingress: Option<SocketAddr>,
    /// Where the log lives (default `.draft`).
    pub data_dir: Option<PathBuf>,
    /// `sync` (default) or `buffered`.
    pub durability: Option<DurabilityChoice>,
    /// With `buffered`: how often to fsync, in milliseconds (default 100).
    pub flush_interval_ms: Option<u64>,
    /// The most connections open at once, per listener (default 4096).
    pub max_connections: Option<usize>,
    /// How long a client has to send request headers, in milliseconds (default 30000).
    pub header_read_timeout_ms: Option<u64>,
    /// The longest lease an instance gets when the node starts, in milliseconds (default:
    /// its full TTL).
    pub restart_grace_ms: Option<u64>,
    /// How long a stopping node waits for requests and WebSockets, in milliseconds (default
    /// 10000).
    pub shutdown_timeout_ms: Option<u64>,
    /// How long an instance may stay critical before the node removes it, in seconds
    /// (default: never).
    pub remove_critical_after_secs: Option<u64>,
    /// The most keys the KV store holds (default 1,000,000).
    pub kv_max_keys: Option<usize>,
    /// The most bytes of keys and values the KV store holds (default 256 MiB).
    pub kv_max_bytes: Option<u64>,
    /// The most connections open at once from one client address (an IPv4 address or an
    /// IPv6 /64), per listener (default 512).
    pub max_connections_per_address: Option<usize>,
    /// The most WebSockets open at once, per listener (default 2048).
    pub max_websockets: Option<usize>,
    /// How long a client has to send a request's body, in milliseconds (default 30000).
    pub body_read_timeout_ms: Option<u64>,
    /// How long a WebSocket client may take no write before it is closed with 1008, in
    /// milliseconds (default 30000).
    pub ws_write_timeout_ms: Option<u64>,
    /// How long a request may take until its response starts, in milliseconds (default
    /// 60000).
    pub request_timeout_ms: Option<u64>,
    /// A PEM certificate chain: both listeners serve TLS with it (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// `[auth]`: tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthLayer {
    /// `on`, `off` or `auto` (default: off while the API listens on loopback only).
    pub mode: Option<AuthMode>,
}

/// `[catalyst]`: the broker's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalystLayer {
    /// The largest event, in bytes (default 1 MiB).
    pub max_event_bytes: Option<usize>,
    /// The largest batch request, in bytes (default 16 MiB).
    pub max_batch_bytes: Option<usize>,
    /// How deeply an event may nest, the event itself counting as one: 1 to 127 levels
    /// (default 127, what `serde_json` parses by default).
    pub max_json_depth: Option<usize>,
    /// How long `source` + `id` is remembered, in seconds (default 120).
    pub dedup_window_secs: Option<u64>,
    /// Frames a WebSocket producer may have unacknowledged before the node stops reading it
    /// (default 1024).
    pub produce_window_frames: Option<usize>,
    /// Bytes of frames a WebSocket producer may have unacknowledged before the node stops
    /// reading it (default 16 MiB).
    pub produce_window_bytes: Option<usize>,
    /// How long a consumer group's active member may owe an acknowledgement before a
    /// standby takes over, in milliseconds, for groups created without `timeout_ms`
    /// (default 30000).
    pub group_timeout_ms: Option<u64>,
    /// How often consumer groups' acknowledgements are stored, in milliseconds (default 100).
    pub group_commit_interval_ms: Option<u64>,
    /// How long channels keep events, in seconds, unless a channel has its own retention
    /// (default: for ever).
    pub retention_age_secs: Option<u64>,
    /// The most bytes a channel keeps, unless it has its own retention (default: no limit).
    pub retention_bytes: Option<u64>,
}

/// `[fuse]`: what the ingress dials and whom it believes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseLayer {
    /// The networks instances may register addresses in (default `[]`: any address the
    /// built-in refusals leave).
    pub upstream_allow: Option<Vec<Cidr>>,
    /// The proxies in front of the ingress whose `X-Forwarded-*`, `Forwarded` and
    /// `X-Real-IP` are kept (default `[]`: nobody's).
    pub trusted_proxies: Option<Vec<Cidr>>,
}

impl Layer {
    /// This layer over `lower`: each field from `self` where set, else from `lower`.
    #[must_use]
    pub fn over(self, lower: Self) -> Self {
        let (n, l) = (self.node, lower.node);
        let (c, lc) = (self.catalyst, lower.catalyst);
        let (f, lf) = (self.fuse, lower.fuse);
        Self {
            node: NodeLayer {
                name: n.name.or(l.name),
                listen: n.listen.or(l.listen),
                ingress: n.ingress.or(l.ingress),
                data_dir: n.data_dir.or(l.data_dir),
                durability: n.durability.or(l.durability),
                flush_interval_ms: n.flush_interval_ms.or(l.flush_interval_ms),
                max_connections: n.max_connections.or(l.max_connections),
                header_read_timeout_ms: n.header_read_timeout_ms.or(l.header_read_timeout_ms),
                restart_grace_ms: n.restart_grace_ms.or(l.restart_grace_ms),
                shutdown_timeout_ms: n.shutdown_timeout_ms.or(l.shutdown_timeout_ms),
                remove_critical_after_secs: n
                    .remove_critical_after_secs
                    .or(l.remove_critical_after_secs),
                kv_max_keys: n.kv_max_keys.or(l.kv_max_keys),
                kv_max_bytes: n.kv_max_bytes.or(l.kv_max_bytes),
                max_connections_per_address: n
                    .max_connections_per_address
                    .or(l.max_connections_per_address),
                max_websockets: n.max_websockets.or(l.max_websockets),
                body_read_timeout_ms: n.body_read_timeout_ms.or(l.body_read_timeout_ms),
                ws_write_timeout_ms: n.ws_write_timeout_ms.or(l.ws_write_timeout_ms),
                request_timeout_ms: n.request_timeout_ms.or(l.request_timeout_ms),
                tls_cert: n.tls_cert.or(l.tls_cert),
                tls_key: n.tls_key.or(l.tls_key),
            },
            catalyst: CatalystLayer {
                max_event_bytes: c.max_event_bytes.or(lc.max_event_bytes),
                max_batch_bytes: c.max_batch_bytes.or(lc.max_batch_bytes),
                max_json_depth: c.max_json_depth.or(lc.max_json_depth),
                dedup_window_secs: c.dedup_window_secs.or(lc.dedup_window_secs),
                produce_window_frames: c.produce_window_frames.or(lc.produce_window_frames),
                produce_window_bytes: c.produce_window_bytes.or(lc.produce_window_bytes),
                group_timeout_ms: c.group_timeout_ms.or(lc.group_timeout_ms),
                group_commit_interval_ms: c
                    .group_commit_interval_ms
                    .or(lc.group_commit_interval_ms),
                retention_age_secs: c.retention_age_secs.or(lc.retention_age_secs),
                retention_bytes: c.retention_bytes.or(lc.retention_bytes),
            },
            fuse: FuseLayer {
                upstream_allow: f.upstream_allow.or(lf.upstream_allow),
                trusted_proxies: f.trusted_proxies.or(lf.trusted_proxies),
            },
            auth: AuthLayer {
                mode: self.auth.mode.or(lower.auth.mode),
            },
            log: self.log.over(lower.log),
        }
    }

    /// A `draft.toml`'s text as a layer; `path` names it in the error.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid TOML or an unknown setting.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads `draft.toml`: the file `explicit` names (which must exist), else `./draft.toml`
    /// if it exists, else an empty layer.
    ///
    /// # Errors
    /// [`Error::Config`] if the file cannot be read or is not valid.
    pub fn load(explicit: Option<&Path>) -> Result<Self, Error> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("draft.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text, &path),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Config {
                path,
                reason: format!("cannot read it: {e}"),
            }),
        }
    }
}

/// A node's validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The node's name.
    pub name: String,
    /// The API's listen address.
    pub listen: SocketAddr,
    /// The ingress's listen address.
    pub ingress: SocketAddr,
    /// Where the log lives.
    pub data_dir: PathBuf,
    /// When appends are acknowledged.
    pub durability: Durability,
    /// Limits on each listener's clients.
    pub limits: Limits,
    /// The longest lease an instance gets when the node starts (`None`: its full TTL).
    pub restart_grace: Option<Duration>,
    /// How long a stopping node waits for requests and WebSockets before cutting them off.
    pub shutdown_timeout: Duration,
    /// How long a WebSocket client (consume, produce, watch) may take no write before it is
    /// closed with 1008 ("not reading").
    pub ws_write_timeout: Duration,
    /// How long an instance may stay critical before the node removes it (`None`: never).
    pub remove_critical_after: Option<Duration>,
    /// The most keys, and bytes of keys and values, the KV store holds.
    pub kv_max: (usize, u64),
    /// The broker's settings.
    pub catalyst: CatalystConfig,
    /// How much of each channel the log keeps, unless the channel has its own retention.
    pub retention: Retention,
    /// The networks upstream addresses must be in (empty: no restriction beyond the
    /// built-in refusals).
    pub upstream_allow: Vec<Cidr>,
    /// The proxies whose forwarding headers the ingress keeps.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether the API checks tokens.
    pub auth: AuthSettings,
    /// The certificate chain and key both listeners serve TLS with (`None`: plain HTTP).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Which engine holds the log.
    pub backend: BackendSettings,
}

impl Settings {
    /// The settings `layer` gives, with defaults for what it leaves out (the name defaults
    /// to `fallback_name`), checked.
    ///
    /// # Errors
    /// [`Error::Settings`] naming the setting that is out of range.
    pub fn resolve(layer: Layer, fallback_name: impl FnOnce() -> String) -> Result<Self, Error> {
        let backend = log::backend(&layer.log)?;
        let (node, catalyst, fuse, auth) = (layer.node, layer.catalyst, layer.fuse, layer.auth);
        let invalid = |what: &str| Err(Error::Settings(what.to_owned()));
        let flush = node.flush_interval_ms.unwrap_or(100);
        if flush == 0 {
            return invalid("flush interval must be at least 1 ms");
        }
        let durability = match node.durability.unwrap_or(DurabilityChoice::Sync) {
            DurabilityChoice::Sync => Durability::Sync,
            DurabilityChoice::Buffered => Durability::Buffered {
                interval: Duration::from_millis(flush),
            },
        };
        let limits = limits(&node);
        if limits.max_connections == 0
            || limits.max_connections_per_address == 0
            || limits.max_websockets == 0
        {
            return invalid(
                "max connections, max connections per address and max websockets must be positive",
            );
        }
        if limits.header_read_timeout.is_zero()
            || limits.body_read_timeout.is_zero()
            || limits.request_timeout.is_zero()
        {
            return invalid("the header read, body read and request timeouts must be positive");
        }
        let (catalyst, retention) = broker(&catalyst)?;
        let restart_grace = node.restart_grace_ms.map(Duration::from_millis);
        if restart_grace.is_some_and(|g| g.is_zero()) {
            return invalid("the restart grace must be at least 1 ms");
        }
        let remove_critical_after = node.remove_critical_after_secs.map(Duration::from_secs);
        if remove_critical_after.is_some_and(|d| d.is_zero()) {
            return invalid("remove critical after must be at least 1 s");
        }
        let kv_max = (
            node.kv_max_keys.unwrap_or(1_000_000),
            node.kv_max_bytes.unwrap_or(256 * 1024 * 1024),
        );
        if kv_max.0 == 0 || kv_max.1 == 0 {
            return invalid("the KV store's most keys and bytes must be positive");
        }
        let shutdown_timeout = Duration::from_millis(node.shutdown_timeout_ms.unwrap_or(10_000));
        if !(1..=600_000).contains(&shutdown_timeout.as_millis()) {
            return invalid("the shutdown timeout must be 1 ms to 10 minutes");
        }
        let ws_write_timeout = Duration::from_millis(node.ws_write_timeout_ms.unwrap_or(30_000));
        if !(1..=3_600_000).contains(&ws_write_timeout.as_millis()) {
            return invalid("the WebSocket write timeout must be 1 ms to 1 hour");
        }
        let name = node.name.unwrap_or_else(fallback_name);
        if name.is_empty() || name.contains(['/', ' ']) {
            return invalid("the node name must be non-empty, without '/' or spaces");
        }
        let listen = node.listen.unwrap_or(([127, 0, 0, 1], 7070).into());
        let tls = match (node.tls_cert.clone(), node.tls_key.clone()) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return invalid("TLS needs both a certificate (tls_cert) and its key (tls_key)"),
        };
        Ok(Self {
            name,
            listen,
            auth: AuthSettings::resolve(auth.mode, listen),
            tls,
            ingress: node.ingress.unwrap_or(([127, 0, 0, 1], 8080).into()),
            data_dir: node.data_dir.unwrap_or_else(|| PathBuf::from(".draft")),
            durability,
            limits,
            restart_grace,
            shutdown_timeout,
            ws_write_timeout,
            remove_critical_after,
            kv_max,
            catalyst,
            retention,
            upstream_allow: fuse.upstream_allow.unwrap_or_default(),
            trusted_proxies: fuse.trusted_proxies.unwrap_or_default(),
            backend,
        })
    }
}

/// The listeners' limits `node` sets, with the defaults for what it leaves out.
/// `[node]`'s limits on each listener's clients, with defaults (checked by the caller).
fn limits(node: &NodeLayer) -> Limits {
    let defaults = Limits::default();
    let ms = |set: Option<u64>, default: Duration| set.map_or(default, Duration::from_millis);
    Limits {
        max_connections: node.max_connections.unwrap_or(defaults.max_connections),
        max_connections_per_address: node
            .max_connections_per_address
            .unwrap_or(defaults.max_connections_per_address),
        max_websockets: node.max_websockets.unwrap_or(defaults.max_websockets),
        header_read_timeout: ms(node.header_read_timeout_ms, defaults.header_read_timeout),
        body_read_timeout: ms(node.body_read_timeout_ms, defaults.body_read_timeout),
        request_timeout: ms(node.request_timeout_ms, defaults.request_timeout),
        role: defaults.role,
    }
}

/// This machine's name, for a node that is not given one: the host name, else `draft`.
#[must_use]
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|n| !n.is_empty() && !n.contains(['/', ' ']))
        .unwrap_or_else(|| "draft".to_owned())
}

mod catalyst;
mod log;
use catalyst::broker;
pub use log::{BackendChoice, BackendSettings, DEFAULT_KEEPER_TTL, DEFAULT_NATS_URL, LogLayer};

#[cfg(test)]
mod tests;
