//! Consumers: `GET /v1/channels/{channel}/consume`; replay from any position, then follow the
//! live feed; and the WebSocket loop that delivers to one client (CloudEvents WebSocket
//! binding, `cloudevents.json`).

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocketUpgrade, close_code};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use draft_http::ws::{ClientData, Outbound, SocketOptions, serve_socket};
use draft_http::{ApiError, Code, Query};
use draft_log::{LogBackend, Offset, PartitionName};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::broker::Catalyst;
use crate::channel;
use crate::cloudevent::Filter;
use crate::error::log_error;
use crate::feed::{Feeds, delivered_text};
use crate::query::{filter, resolve_from};
use crate::wire::SUBPROTOCOL;

/// How many records a replay reads from the log at a time.
const REPLAY_CHUNK: usize = 512;
/// Events queued between a consumer's reader and its socket.
const SOCKET_QUEUE: usize = 256;
/// Consumers only receive (the CloudEvents WebSocket binding's consumer side).
const OPTIONS: SocketOptions = SocketOptions {
    ping_every: draft_http::ws::PING_EVERY,
    idle_limit: draft_http::ws::IDLE_LIMIT,
    client_data: ClientData::Refuse("consumers only receive; send nothing but pings and close"),
};

/// `GET /v1/channels/{channel}/consume`: checks every parameter before the upgrade (a bad one
/// is a 400 with the JSON error), then serves the WebSocket.
pub(crate) async fn consume(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let channel = channel::channel(&name)?;
    let query = Query::parse(raw.as_deref(), &["from", "type", "source"])?;
    let filter = filter(&query)?;
    let log = state.log();
    let head = log
        .head(&channel)
        .await
        .map_err(|e| log_error(&e))?
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
            Code::WebsocketRequired,
            format!("consume is a WebSocket endpoint (subprotocol {SUBPROTOCOL}): {e}"),
        )
    })?;
    let consumer = Consumer {
        log: state.shared_log(),
        feeds: state.feeds(),
        channel,
        from,
        filter,
    };
    Ok(draft_http::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            state.metrics().consumer_connected();
            let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
            let reader = tokio::spawn(consumer.read(tx));
            let (sink, stream) = socket.split();
            serve_socket(sink, stream, rx, OPTIONS, state.shutdown()).await;
            reader.abort();
            state.metrics().consumer_disconnected();
        }))
}

/// Why a consumer's reader stopped.
#[derive(Debug)]
enum Stop {
    /// The socket side went away.
    Disconnected,
    /// Reading the log failed (logged, not sent to the client).
    Failed(String),
}

/// Reads a channel for one consumer from `next` on: replay from the log, then the live feed,
/// falling back to the log whenever it is behind the feed. Sends matching events, in offset
/// order, each once, into `out`.
async fn read_channel(
    log: Arc<dyn LogBackend>,
    feeds: Arc<Feeds>,
    channel: PartitionName,
    mut next: Offset,
    filter: Filter,
    out: mpsc::Sender<Outbound>,
) -> Stop {
    let feed = match feeds.get(&channel).await {
        Ok(feed) => feed,
        Err(e) => return Stop::Failed(e.to_string()),
    };
    // Subscribe before replaying: whatever is appended meanwhile is in the feed, and the
    // offsets tell the replay and the feed apart.
    let mut live = feed.subscribe();
    loop {
        // Replay from the log until it has nothing more.
        loop {
            let records = match log.read(&channel, next, REPLAY_CHUNK).await {
                Ok(records) => records,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            let Some(last) = records.last().map(|r| r.offset) else {
                break;
            };
            for record in &records {
                if filter.matches_key(record.key.as_deref())
                    && out
                        .send(Outbound::Text(delivered_text(&channel, record)))
                        .await
                        .is_err()
                {
                    return Stop::Disconnected;
                }
            }
            next = last.next();
        }
        // Follow the feed while it is contiguous with what we sent.
        loop {
            match live.recv().await {
                Ok(event) if event.offset < next.0 => {}
                Ok(event) if event.offset == next.0 => {
                    next = next.next();
                    if filter.matches(&event.ty, &event.source)
                        && out.send(Outbound::Text(event.text)).await.is_err()
                    {
                        return Stop::Disconnected;
                    }
                }
                // A gap (the feed is ahead of us): read it from the log.
                Ok(_) => break,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    live = feed.subscribe();
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Stop::Failed("the channel's live feed stopped".to_owned());
                }
            }
        }
    }
}

/// Everything a consumer connection needs.
struct Consumer {
    log: Arc<dyn LogBackend>,
    feeds: Arc<Feeds>,
    channel: PartitionName,
    from: Offset,
    filter: Filter,
}

impl Consumer {
    /// Reads the channel into `out` until the socket goes away; a failure to read is logged
    /// here and ends the socket with 1011.
    async fn read(self, out: mpsc::Sender<Outbound>) {
        let channel = self.channel.clone();
        let stop = read_channel(
            self.log,
            self.feeds,
            self.channel,
            self.from,
            self.filter,
            out.clone(),
        )
        .await;
        if let Stop::Failed(e) = stop {
            tracing::error!(channel = %channel, error = %e, "consumer stopped");
            let reason = "the node could not read the channel".into();
            let _ = out.send(Outbound::Close(close_code::ERROR, reason)).await;
        }
    }
}
