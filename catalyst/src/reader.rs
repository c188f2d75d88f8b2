//! Reading a channel for one consumer: replay from the log, then the live feed, falling back
//! to the log whenever the consumer is behind the feed. Plain consumers and the active member
//! of a consumer group share it; what happens to each event is their [`Delivery`].

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use draft_http::ws::Outbound;
use draft_log::{LogBackend, Offset, PartitionName};
use tokio::sync::{broadcast, mpsc};

use crate::cloudevent::Filter;
use crate::feed::{Feeds, delivered_text};
use crate::read_size::{READ_BYTES, ReadSize};

/// Why a reader stops when its channel's live feed has (it is closed with 1011; it can
/// reconnect and resume from its last offset).
const FEED_STOPPED: &str = "the channel's live feed stopped";
/// How many records a replay reads from the log at a time.
const REPLAY_CHUNK: usize = 512;

/// Where a reader's events go.
pub(crate) trait Delivery: Send {
    /// Hands over the event at `offset` (already filtered and encoded); `false` once the
    /// consumer no longer takes events, which stops the reader.
    fn deliver(&mut self, offset: u64, text: Utf8Bytes) -> impl Future<Output = bool> + Send;
}

/// A plain consumer: every event goes to its socket.
impl Delivery for mpsc::Sender<Outbound> {
    async fn deliver(&mut self, _offset: u64, text: Utf8Bytes) -> bool {
        self.send(Outbound::Text(text)).await.is_ok()
    }
}

/// Why a consumer's reader stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The consumer took no more events (its socket went away, or it lost its place).
    Disconnected,
    /// Reading the log failed (logged, not sent to the client).
    Failed(String),
}

/// Reads a channel for one consumer from `next` on: replay from the log, then the live feed,
/// falling back to the log whenever it is behind the feed. Hands matching events, in offset
/// order, each once, to `out`.
pub(crate) async fn read_channel(
    log: Arc<dyn LogBackend>,
    feeds: Arc<Feeds>,
    channel: PartitionName,
    mut next: Offset,
    filter: Filter,
    mut out: impl Delivery,
) -> Stop {
    let feed = match feeds.get(&channel).await {
        Ok(feed) => feed,
        Err(e) => return Stop::Failed(e.to_string()),
    };
    // Subscribe before replaying: whatever is appended meanwhile is in the feed, and the
    // offsets tell the replay and the feed apart.
    let Some(mut live) = feed.subscribe() else {
        return Stop::Failed(FEED_STOPPED.to_owned());
    };
    let mut size = ReadSize::new(REPLAY_CHUNK, READ_BYTES);
    loop {
        // Replay from the log until it has nothing more.
        loop {
            let records = match log.read(&channel, next, size.next()).await {
                Ok(records) => records,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            size.observe(records.len(), records.iter().map(|r| r.payload.len()).sum());
            let Some(last) = records.last().map(|r| r.offset) else {
                break;
            };
            for record in &records {
                if filter.matches_key(record.key.as_deref())
                    && !out
                        .deliver(record.offset.0, delivered_text(&channel, record))
                        .await
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
                        && !out.deliver(event.offset, event.text).await
                    {
                        return Stop::Disconnected;
                    }
                }
                // A gap (the feed is ahead of us): read it from the log.
                Ok(_) => break,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(again) = feed.subscribe() else {
                        return Stop::Failed(FEED_STOPPED.to_owned());
                    };
                    live = again;
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Stop::Failed(FEED_STOPPED.to_owned());
                }
            }
        }
    }
}
