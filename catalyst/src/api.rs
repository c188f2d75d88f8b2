//! Catalyst's state, settings and HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use draft_log::LogBackend;
use futures::StreamExt;
use tokio::sync::watch;

use crate::channel;
use crate::consume::{Consumer, serve_socket};
use crate::dedup::Dedup;
use crate::error::ApiError;
use crate::feed::Feeds;
use crate::metrics::Metrics;
use crate::produce::produce;
use crate::query::{Query, resolve_from};
use crate::wire::SUBPROTOCOL;

/// Catalyst's settings.
#[derive(Debug, Clone)]
pub struct CatalystConfig {
    /// The largest event, in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// The largest batch request body, in bytes (default 16 MiB).
    pub max_batch_bytes: usize,
    /// The most events in one batch (default 10,000).
    pub max_batch_events: usize,
    /// How long `source` + `id` is remembered to drop duplicates (default 2 minutes).
    pub dedup_window: Duration,
}

impl Default for CatalystConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: 1024 * 1024,
            max_batch_bytes: 16 * 1024 * 1024,
            max_batch_events: 10_000,
            dedup_window: Duration::from_secs(120),
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
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
}

impl Catalyst {
    /// A broker on `log`. Rebuilds the duplicate window from the events of the last
    /// `dedup_window`, so a restart does not forget it.
    ///
    /// # Errors
    /// A log error while reading those events.
    pub async fn new(log: Arc<dyn LogBackend>, config: CatalystConfig) -> draft_log::Result<Self> {
        let dedup = Arc::new(Dedup::rebuild(&*log, config.dedup_window).await?);
        let feeds = Arc::new(Feeds::new(Arc::clone(&log)));
        tokio::spawn(crate::dedup::sweep(Arc::downgrade(&dedup)));
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                config,
                dedup,
                feeds,
                metrics: Metrics::default(),
                shutdown: watch::Sender::new(false),
            }),
        })
    }

    pub(crate) fn log(&self) -> &dyn LogBackend {
        &*self.inner.log
    }

    pub(crate) fn config(&self) -> &CatalystConfig {
        &self.inner.config
    }

    pub(crate) fn dedup(&self) -> &Dedup {
        &self.inner.dedup
    }

    /// Catalyst's counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Closes every consumer's WebSocket with 1001 (going away); call it when the node stops.
    pub fn close_consumers(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

/// Catalyst's routes, under `/v1`.
pub fn router(state: Catalyst) -> Router {
    Router::new()
        .route("/v1/channels", get(channel::list))
        .route("/v1/channels/{channel}", get(channel::get))
        .route(
            "/v1/channels/{channel}/events",
            post(produce).get(channel::events),
        )
        .route("/v1/channels/{channel}/consume", get(consume))
        .with_state(state)
}

/// `GET /v1/channels/{channel}/consume`: checks every parameter before the upgrade (a bad one
/// is a 400 with the JSON error), then serves the WebSocket.
async fn consume(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let channel = channel::channel(&name)?;
    let query = Query::parse(raw.as_deref(), &["from", "type", "source"])?;
    let filter = query.filter()?;
    let log = state.log();
    let head = log
        .head(&channel)
        .await
        .map_err(|e| ApiError::from_log(&e))?
        .unwrap_or_else(|| {
            // Consuming a channel before its first event is allowed: it waits for it.
            draft_log::PartitionHead {
                partition: channel.clone(),
                first: draft_log::Offset(0),
                next: draft_log::Offset(0),
                bytes: 0,
                last_append: None,
            }
        });
    let from = resolve_from(log, &channel, &head, query.one("from")?.unwrap_or("latest")).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            format!("consume is a WebSocket endpoint (subprotocol {SUBPROTOCOL}): {e}"),
        )
    })?;
    let consumer = Consumer {
        log: Arc::clone(&state.inner.log),
        feeds: Arc::clone(&state.inner.feeds),
        channel,
        from,
        filter,
        shutdown: state.inner.shutdown.subscribe(),
    };
    Ok(crate::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            state.metrics().consumer_connected();
            let (sink, stream) = socket.split();
            serve_socket(consumer, sink, stream).await;
            state.metrics().consumer_disconnected();
        }))
}
