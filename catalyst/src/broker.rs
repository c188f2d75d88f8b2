//! Catalyst's state and settings: the broker that every request shares.

use std::sync::Arc;
use std::time::Duration;

use draft_http::Shutdown;
use draft_log::LogBackend;

use crate::cloudevent::MaxDepth;
use crate::dedup::Dedup;
use crate::feed::Feeds;
use crate::groups::{ControlLog, GroupLocks, Groups};
use crate::metrics::Metrics;
use crate::retention::Retentions;

/// Catalyst's settings.
#[derive(Debug, Clone)]
pub struct CatalystConfig {
    /// The largest event, in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// The largest batch request body, in bytes (default 16 MiB).
    pub max_batch_bytes: usize,
    /// The most events in one batch (default 10,000).
    pub max_batch_events: usize,
    /// How deeply an event may nest, the event object itself counting as one (default and
    /// most 127, what `serde_json` parses by default: see [`MaxDepth`]). Every produce
    /// checks it the same way: structured, batch and binary mode, over HTTP and WebSocket.
    pub max_json_depth: MaxDepth,
    /// How long `source` + `id` is remembered to drop duplicates (default 2 minutes).
    pub dedup_window: Duration,
    /// Whether every record also carries its event's `source` + `id` as the log's dedup id
    /// (default false). Set it when other nodes append to the same log: the window above is
    /// this node's memory, so a retry that reaches another node is dropped only by the log
    /// (JetStream's duplicate window, `Nats-Msg-Id`). A node alone on its log does not need
    /// it, and its writer thread then does no extra work.
    pub log_dedup: bool,
    /// How many frames a WebSocket producer may have sent and not yet had acknowledged before
    /// the node stops reading its socket (default 1,024).
    pub produce_window_frames: usize,
    /// How many bytes of frames a WebSocket producer may have sent and not yet had
    /// acknowledged before the node stops reading its socket (default 16 MiB, the largest
    /// batch). One frame is always taken, whatever its size; reading stops once either bound
    /// is reached.
    pub produce_window_bytes: usize,
    /// How long a consumer group's active member may owe an acknowledgement before a
    /// standby takes over, for groups created without `timeout_ms` (default 30 s).
    pub group_timeout: Duration,
    /// How often consumer groups' acknowledgements are stored (one append for every group
    /// acknowledged meanwhile; default 100 ms). A node crash redelivers at most this much.
    pub group_commit_interval: Duration,
    /// The process's shutdown token: when it is triggered, consumers are closed with 1001
    /// (going away), and WebSocket producers once what they sent is answered. Default: a token
    /// of its own, never triggered.
    pub shutdown: Shutdown,
    /// How long a consumer or producer WebSocket may take no write before it is closed with
    /// 1008; it can connect again and resume from its last offset (default 30 s).
    pub ws_write_timeout: Duration,
}

impl Default for CatalystConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: 1024 * 1024,
            max_batch_bytes: 16 * 1024 * 1024,
            max_batch_events: 10_000,
            max_json_depth: MaxDepth::DEFAULT,
            dedup_window: Duration::from_secs(120),
            log_dedup: false,
            produce_window_frames: 1024,
            produce_window_bytes: 16 * 1024 * 1024,
            group_timeout: Duration::from_secs(30),
            group_commit_interval: Duration::from_millis(100),
            shutdown: Shutdown::new(),
            ws_write_timeout: draft_http::ws::WRITE_TIMEOUT,
        }
    }
}

/// The broker: shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct Catalyst {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn LogBackend>,
    config: CatalystConfig,
    dedup: Arc<Dedup>,
    feeds: Arc<Feeds>,
    groups: Arc<Groups>,
    retentions: Retentions,
    metrics: Metrics,
}

impl Catalyst {
    /// A broker on `log`. Rebuilds the duplicate window from the events of the last
    /// `dedup_window`, so a restart does not forget it, the consumer groups from the
    /// partition `_groups`, and the channels' own retention from `_channels`. Creating and
    /// deleting a group, and changing a channel's settings, are recorded through `control`.
    ///
    /// # Errors
    /// A log error while reading those events or the groups.
    pub async fn new(
        log: Arc<dyn LogBackend>,
        config: CatalystConfig,
        control: Arc<dyn ControlLog>,
    ) -> draft_log::Result<Self> {
        Self::open(log, config, control, None).await
    }

    /// A broker on a log other nodes append to as well: as [`Catalyst::new`], and each
    /// consumer group is served by one node at a time, the one that holds its lock in
    /// `locks` (the others' members stand by). Set [`CatalystConfig::log_dedup`] too.
    ///
    /// # Errors
    /// As [`Catalyst::new`].
    pub async fn shared(
        log: Arc<dyn LogBackend>,
        config: CatalystConfig,
        control: Arc<dyn ControlLog>,
        locks: Arc<dyn GroupLocks>,
    ) -> draft_log::Result<Self> {
        Self::open(log, config, control, Some(locks)).await
    }

    async fn open(
        log: Arc<dyn LogBackend>,
        config: CatalystConfig,
        control: Arc<dyn ControlLog>,
        locks: Option<Arc<dyn GroupLocks>>,
    ) -> draft_log::Result<Self> {
        let dedup = Arc::new(Dedup::rebuild(&*log, config.dedup_window).await?);
        let feeds = Arc::new(Feeds::new(Arc::clone(&log)));
        let retentions = Retentions::open(Arc::clone(&log), Arc::clone(&control)).await?;
        let groups = Groups::open(
            Arc::clone(&log),
            control,
            locks,
            (config.group_timeout, config.group_commit_interval),
            &config.shutdown,
        )
        .await?;
        tokio::spawn(crate::dedup::sweep(Arc::downgrade(&dedup)));
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                config,
                dedup,
                feeds,
                groups,
                retentions,
                metrics: Metrics::default(),
            }),
        })
    }

    pub(crate) fn log(&self) -> &dyn LogBackend {
        &*self.inner.log
    }

    /// The log, for a task that outlives the request (a consumer's reader).
    pub(crate) fn shared_log(&self) -> Arc<dyn LogBackend> {
        Arc::clone(&self.inner.log)
    }

    pub(crate) fn config(&self) -> &CatalystConfig {
        &self.inner.config
    }

    pub(crate) fn dedup(&self) -> &Dedup {
        &self.inner.dedup
    }

    /// Every channel's live feed.
    pub(crate) fn feeds(&self) -> Arc<Feeds> {
        Arc::clone(&self.inner.feeds)
    }

    /// The consumer groups.
    pub(crate) fn groups(&self) -> Arc<Groups> {
        Arc::clone(&self.inner.groups)
    }

    /// The channels' own retention.
    pub(crate) fn retentions(&self) -> &Retentions {
        &self.inner.retentions
    }

    /// The process's shutdown token.
    pub(crate) fn shutdown(&self) -> Shutdown {
        self.inner.config.shutdown.clone()
    }

    /// Catalyst's counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
