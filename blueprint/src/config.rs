//! [`BlueprintConfig`]: Blueprint's settings.

use std::path::PathBuf;
use std::time::Duration;

use draft_http::Shutdown;

use crate::peers::PeersHandle;
use crate::upstream::UpstreamPolicy;

/// Blueprint's settings.
#[derive(Debug, Clone)]
pub struct BlueprintConfig {
    /// This node's name (the `source` of control events: `/draft/<node>`).
    pub node: String,
    /// Where checkpoints are kept.
    pub checkpoint_dir: PathBuf,
    /// A checkpoint is written every this many control events (default 10,000).
    pub checkpoint_every: u64,
    /// How many checkpoints are kept, newest first (default 8; at least one). A read `?at=`
    /// a revision older than the oldest kept replays the log from its start.
    pub checkpoint_keep: usize,
    /// The largest KV value, in bytes (default 1 MiB).
    pub max_value_bytes: usize,
    /// The most KV keys held (default 1,000,000): every key's metadata is in memory (its
    /// value is read from the log).
    pub max_keys: usize,
    /// The most bytes of KV keys and values held together (default 256 MiB), counted by
    /// their lengths: the values stay in the log.
    pub max_kv_bytes: u64,
    /// The most bytes of values kept in memory after a read of one key (default 16 MiB; 0:
    /// none), by the revision of their put, least recently used out first. Values are
    /// otherwise read from the log.
    pub value_cache_bytes: usize,
    /// How often leases are checked (default 100 ms).
    pub lease_check: Duration,
    /// The longest lease an instance gets when the node opens (default `None`: its full
    /// TTL). Leases live in memory only, so at open every passing instance gets a fresh one;
    /// an instance that died while the node was down is routed to until it lapses. A grace
    /// shorter than the TTL caps that; it must be longer than the instances' heartbeat
    /// interval, or live instances lapse once (and come back at their next registration).
    pub restart_grace: Option<Duration>,
    /// How long an instance may stay critical (its lease lapsed, no new registration) before
    /// the node removes it, as `io.draft.instance.removed` (default `None`: never; Consul's
    /// `DeregisterCriticalServiceAfter`).
    pub remove_critical_after: Option<Duration>,
    /// The process's shutdown token: when it is triggered, watches are closed with 1001
    /// (going away). Default: a token of its own, never triggered.
    pub shutdown: Shutdown,
    /// How long a watch may take no write before it is closed with 1008 (default 30 s).
    pub ws_write_timeout: Duration,
    /// Which addresses instances may register (default: the built-in refusals only; the
    /// node adds its own listeners and `--upstream-allow`).
    pub upstream: UpstreamPolicy,
    /// Whether other nodes append to the same log (a clustered backend): the node then tails
    /// `_draft` and applies their control events too (default `false`: this node is the
    /// log's only writer).
    pub follow_log: bool,
    /// The other nodes sharing the log, for heartbeats and the lease keeper (default `None`:
    /// this node is alone, and the keeper).
    pub peers: Option<PeersHandle>,
}

impl BlueprintConfig {
    /// Defaults for a node named `node` with checkpoints in `checkpoint_dir`.
    pub fn new(node: impl Into<String>, checkpoint_dir: impl Into<PathBuf>) -> Self {
        Self {
            node: node.into(),
            checkpoint_dir: checkpoint_dir.into(),
            checkpoint_every: 10_000,
            checkpoint_keep: 8,
            max_value_bytes: 1024 * 1024,
            max_keys: 1_000_000,
            max_kv_bytes: 256 * 1024 * 1024,
            value_cache_bytes: 16 * 1024 * 1024,
            lease_check: Duration::from_millis(100),
            restart_grace: None,
            remove_critical_after: None,
            shutdown: Shutdown::new(),
            ws_write_timeout: draft_http::ws::WRITE_TIMEOUT,
            upstream: UpstreamPolicy::default(),
            follow_log: false,
            peers: None,
        }
    }
}
