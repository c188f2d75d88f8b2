//! How the backend reaches the cluster and what its streams are made with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use draft_log::{PartitionName, Retention};

/// How long an append waits for its acknowledgement by default (see
/// [`JetStreamConfig::ack_timeout`]).
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_millis(500);

/// The time an append's acknowledgement may take on top of the ack timeout, for each MiB
/// the append holds: JetStream stores about 110 MiB/s of R3 atomic batches here
/// (`BENCHMARKS.md`), so this is about 7 times what a batch needs.
pub const ACK_ALLOWANCE_PER_MIB: Duration = Duration::from_millis(64);

/// How long a call retries while JetStream does not answer, by default: a stream whose
/// leader was killed has none until a follower campaigns, 4 to 9 s later (nats-server's Raft
/// election timeout), so this covers one full timeout, a second round and the answer.
pub const DEFAULT_UNAVAILABLE_AFTER: Duration = Duration::from_secs(20);

/// The settings of a [`JetStream`](crate::JetStream) backend. Build with
/// [`JetStreamConfig::new`] and the setters.
///
/// # Examples
/// ```
/// use draft_log_jetstream::JetStreamConfig;
/// let config = JetStreamConfig::new(["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"])
///     .replicas(3);
/// assert_eq!(config.urls().len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) creds: Option<PathBuf>,
    pub(crate) replicas: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) unavailable_after: Duration,
    pub(crate) default_retention: Retention,
    pub(crate) retention: HashMap<PartitionName, Retention>,
    pub(crate) trimmable: Vec<PartitionName>,
    pub(crate) name: String,
}

impl JetStreamConfig {
    /// A backend on the servers at `urls` (any of them; the client finds the others), with
    /// streams of 3 replicas, everything kept.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            creds: None,
            replicas: 3,
            request_timeout: Duration::from_secs(2),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            unavailable_after: DEFAULT_UNAVAILABLE_AFTER,
            default_retention: Retention::FOREVER,
            retention: HashMap::new(),
            trimmable: ["_groups", "_channels"]
                .into_iter()
                .filter_map(|p| PartitionName::new(p).ok())
                .collect(),
            name: "draft".to_owned(),
        }
    }

    /// The servers.
    #[must_use]
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// A NATS credentials file (JWT and seed) to connect with.
    #[must_use]
    pub fn creds(mut self, path: impl Into<PathBuf>) -> Self {
        self.creds = Some(path.into());
        self
    }

    /// How many servers hold each new stream (1, 3 or 5; default 3). Existing streams keep
    /// theirs.
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How long one request waits for its answer (default 2 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long an append waits for JetStream's acknowledgement before it sends the append
    /// again (default 500 ms), plus [`ACK_ALLOWANCE_PER_MIB`] for each MiB it holds: a
    /// leader that stops, or the server the client is connected to, leaves the publish in
    /// flight unanswered, and the retry goes to the new leader. The retry lands once (message
    /// ids), so a short timeout costs only a repeated publish when the cluster is slow.
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long a call retries while JetStream does not answer before it reports the log
    /// unavailable (default [`DEFAULT_UNAVAILABLE_AFTER`]).
    #[must_use]
    pub fn unavailable_after(mut self, deadline: Duration) -> Self {
        self.unavailable_after = deadline;
        self
    }

    /// The retention of new partitions without one of their own (default: keep everything).
    /// Partitions whose name starts with `_` keep everything unless given their own.
    #[must_use]
    pub fn default_retention(mut self, retention: Retention) -> Self {
        self.default_retention = retention;
        self
    }

    /// The retention of one partition, applied when its stream is created.
    #[must_use]
    pub fn retention(mut self, partition: PartitionName, retention: Retention) -> Self {
        self.retention.insert(partition, retention);
        self
    }

    /// Lets `trim_before` remove records of `partition`: its stream is created without
    /// `deny_purge` (default: `_groups` and `_channels`, the partitions Draft trims itself; every other
    /// stream denies purges, so no client can empty a channel or the audit trail).
    #[must_use]
    pub fn trimmable(mut self, partition: PartitionName) -> Self {
        if !self.trimmable.contains(&partition) {
            self.trimmable.push(partition);
        }
        self
    }

    /// The client's name, as servers show it in their connection lists (default `draft`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The retention that applies to `partition` when its stream is created.
    pub(crate) fn retention_of(&self, partition: &PartitionName) -> Retention {
        match self.retention.get(partition) {
            Some(r) => *r,
            None if partition.is_reserved() => Retention::FOREVER,
            None => self.default_retention,
        }
    }
}
