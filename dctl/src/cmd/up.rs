//! `dctl up`'s flags, as clap parses them; `node` resolves them into settings and runs the node.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// When appends are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DurabilityArg {
    /// After fsync (group commit).
    Sync,
    /// Before fsync; fsync every `flush-interval-ms`.
    Buffered,
}

/// `dctl up`. Flags win over `DRAFT_*` variables, which win over `draft.toml`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
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
    /// The largest event accepted, in bytes.
    #[arg(long, env = "DRAFT_MAX_EVENT_BYTES")]
    pub(crate) max_event_bytes: Option<usize>,
    /// The largest batch request accepted, in bytes.
    #[arg(long, env = "DRAFT_MAX_BATCH_BYTES")]
    pub(crate) max_batch_bytes: Option<usize>,
    /// How long `source` + `id` is remembered to drop duplicate events, in seconds.
    #[arg(long, env = "DRAFT_DEDUP_WINDOW_SECS")]
    pub(crate) dedup_window_secs: Option<u64>,
}
