//! How a log is opened: its folder, durability and retention.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::record::PartitionName;

/// When an append is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledge only after the append's bytes are fsync'ed. Concurrent appends share one
    /// write batch and one fsync (group commit). The default.
    #[default]
    Sync,
    /// Acknowledge once the append is in the OS's buffers, and fsync every `interval`.
    /// A machine crash (not a process crash) can lose up to `interval` of acknowledged appends.
    Buffered {
        /// How often the log fsyncs.
        interval: Duration,
    },
}

/// The most [`LogConfig::max_append_bytes`] can be set to.
const MAX_APPEND_BYTES: u64 = 1 << 30;

/// How much of a partition to keep. `None` means no limit; both limits may be set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Remove records appended longer ago than this.
    pub max_age: Option<Duration>,
    /// Remove the oldest records while the partition holds more bytes than this. Records
    /// appended together go together (they are stored in frames of up to 256 KiB, or one
    /// larger record), so a partition may end up to one frame under the limit, and empty if
    /// its newest frame alone is over it.
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// Keep everything (the control partition's default: it is the audit trail).
    pub const FOREVER: Self = Self {
        max_age: None,
        max_bytes: None,
    };

    /// Whether this retention ever removes anything.
    #[must_use]
    pub fn is_forever(&self) -> bool {
        self.max_age.is_none() && self.max_bytes.is_none()
    }
}

/// The settings of a log. Build with [`LogConfig::new`] and the setters.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use draft_log::{Durability, LogConfig, Retention};
/// let config = LogConfig::new("/tmp/draft-example")
///     .durability(Durability::Buffered { interval: Duration::from_millis(50) })
///     .default_retention(Retention { max_age: Some(Duration::from_secs(3600)), max_bytes: None });
/// assert_eq!(config.dir(), std::path::Path::new("/tmp/draft-example"));
/// ```
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub(crate) dir: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) default_retention: Retention,
    pub(crate) retention: HashMap<PartitionName, Retention>,
    pub(crate) retention_interval: Duration,
    pub(crate) max_append_bytes: u64,
    pub(crate) cache_bytes: u64,
    pub(crate) writer_nice: Option<i32>,
}

impl LogConfig {
    /// A log in `dir` (created if missing), fsync'ed appends, everything kept.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::Sync,
            default_retention: Retention::FOREVER,
            retention: HashMap::new(),
            retention_interval: Duration::from_secs(1),
            max_append_bytes: 64 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
            writer_nice: None,
        }
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When appends are acknowledged (default [`Durability::Sync`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The retention of partitions without one of their own (default: keep everything).
    /// Partitions whose name starts with `_` keep everything unless given their own.
    #[must_use]
    pub fn default_retention(mut self, retention: Retention) -> Self {
        self.default_retention = retention;
        self
    }

    /// The retention of one partition.
    #[must_use]
    pub fn retention(mut self, partition: PartitionName, retention: Retention) -> Self {
        self.retention.insert(partition, retention);
        self
    }

    /// How often retention is applied in the background (default 1 s).
    #[must_use]
    pub fn retention_interval(mut self, interval: Duration) -> Self {
        self.retention_interval = interval;
        self
    }

    /// The largest single append (all records of one batch), in payload bytes (default 64 MiB,
    /// at most 1 GiB: a stored record's length must fit its frame's 32-bit length prefix).
    #[must_use]
    pub fn max_append_bytes(mut self, bytes: u64) -> Self {
        self.max_append_bytes = bytes.min(MAX_APPEND_BYTES);
        self
    }

    /// fjall's block cache size (default 64 MiB).
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Asks for this nice value (-20 to 19, lower runs first) for the writer thread, the one
    /// thread every append passes through (default: none, the thread keeps the process's).
    /// A negative value needs `CAP_SYS_NICE` (root has it) or a high enough `RLIMIT_NICE`;
    /// without them the writer keeps the default priority and the log says so at debug level.
    /// Only applied on Linux, where a thread's priority can be set apart from its process's.
    #[must_use]
    pub fn writer_nice(mut self, nice: i32) -> Self {
        self.writer_nice = Some(nice);
        self
    }

    /// The retention that applies to `partition`.
    pub(crate) fn retention_of(&self, partition: &PartitionName) -> Retention {
        match self.retention.get(partition) {
            Some(r) => *r,
            None if partition.is_reserved() => Retention::FOREVER,
            None => self.default_retention,
        }
    }
}
