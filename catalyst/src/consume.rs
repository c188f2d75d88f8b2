//! Consumers: `GET /v1/channels/{channel}/consume`; replay from any position, then follow the
//! live feed; and the WebSocket loop that delivers to one client (CloudEvents WebSocket
//! binding, `cloudevents.json`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocketUpgrade, close_code};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use draft_log::{LogBackend, Offset, PartitionName};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};

use draft_http::{ApiError, Code, Query};

use crate::broker::Catalyst;
use crate::channel;
use crate::cloudevent::Filter;
use crate::error::log_error;
use crate::feed::{Feeds, delivered_text};
use crate::query::{filter, resolve_from};
use crate::wire::SUBPROTOCOL;
use draft_http::ws::{close, close_for_read_error};

/// How many records a replay reads from the log at a time.
const REPLAY_CHUNK: usize = 512;
/// Events queued between a consumer's reader and its socket.
const SOCKET_QUEUE: usize = 256;
/// How often the server pings an idle client (RFC 6455 §5.5.2).
const PING_EVERY: Duration = Duration::from_secs(15);
/// A client that answers nothing (no pong, no message) for this long is closed.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

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
        shutdown: state.shutdown_signal(),
    };
    Ok(draft_http::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            state.metrics().consumer_connected();
            let (sink, stream) = socket.split();
            serve_socket(consumer, sink, stream).await;
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
    out: mpsc::Sender<Utf8Bytes>,
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
                    && out.send(delivered_text(&channel, record)).await.is_err()
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
                        && out.send(event.text).await.is_err()
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
    shutdown: watch::Receiver<bool>,
}

/// Resolves once the node is shutting down (or its shutdown signal is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, inside, so the future stays `Send`.
    let _ = shutdown.wait_for(|stopping| *stopping).await.is_ok();
}

/// Drives one WebSocket: events out, pings, the client's close, the node's shutdown. Generic
/// over the socket's halves so it can be tested without a network.
async fn serve_socket<W, R>(consumer: Consumer, mut sink: W, mut stream: R)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let Consumer {
        log,
        feeds,
        channel,
        from,
        filter,
        mut shutdown,
    } = consumer;
    let (tx, mut events) = mpsc::channel(SOCKET_QUEUE);
    let mut reader = tokio::spawn(read_channel(log, feeds, channel.clone(), from, filter, tx));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut last_heard = tokio::time::Instant::now();
    let goodbye = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(text) = event else {
                    if let Ok(Stop::Failed(e)) = (&mut reader).await {
                        tracing::error!(channel = %channel, error = %e, "consumer stopped");
                    }
                    break Some(close(close_code::ERROR, "the node could not read the channel"));
                };
                // Feed what is already queued and flush once: one write for a run of events
                // instead of one per event.
                let mut ok = sink.feed(Message::Text(text)).await.is_ok();
                let mut queued = 1;
                while ok && queued < SOCKET_QUEUE {
                    let Ok(text) = events.try_recv() else { break };
                    ok = sink.feed(Message::Text(text)).await.is_ok();
                    queued += 1;
                }
                if !ok || sink.flush().await.is_err() {
                    break None;
                }
            },
            incoming = stream.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => break Some(close(close_code::NORMAL, "")),
                Some(Err(e)) => break Some(close_for_read_error(e)),
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    break Some(close(close_code::POLICY, "consumers only receive; send nothing but pings and close"));
                }
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    break Some(close(close_code::POLICY, "no pong within 60 s"));
                }
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    break None;
                }
            }
            () = stopping(&mut shutdown) => {
                break Some(close(close_code::AWAY, "node shutting down"));
            }
        }
    };
    reader.abort();
    if let Some(frame) = goodbye {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
}
