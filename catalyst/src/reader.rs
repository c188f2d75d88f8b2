//! Reading a channel for one consumer: replay from the log, then the live feed, falling back
//! to the log whenever the consumer is behind the feed. Plain consumers and the active member
//! of a consumer group share it; what happens to each event is their [`Delivery`].

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use draft_http::ws::{Outbound, OutboxSender};
use draft_log::{LogBackend, Offset, PartitionName};
use tokio::sync::broadcast;

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

    /// Whether a message of `bytes` would be queued at once, without waiting for the client.
    fn has_room(&self, bytes: usize) -> bool;

    /// How many bytes could be queued now without waiting for the client.
    fn room(&self) -> usize;
}

/// A plain consumer: every event goes to its socket.
impl Delivery for OutboxSender {
    async fn deliver(&mut self, _offset: u64, text: Utf8Bytes) -> bool {
        self.send(Outbound::Text(text)).await.is_ok()
    }

    fn has_room(&self, bytes: usize) -> bool {
        OutboxSender::has_room(self, bytes)
    }

    fn room(&self) -> usize {
        OutboxSender::room(self)
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
///
/// A consumer whose queue is full (its client is not reading) lets go of the feed, or of the
/// rest of its replay read, before it waits: a stalled consumer holds one event beside its
/// queue, never a read's worth nor events in the channel's broadcast ring. Once there is room
/// it reads what it missed from the log, like one that lagged.
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
            let records = match log.read(&channel, next, size.within(out.room())).await {
                Ok(records) => records,
                Err(e) => return Stop::Failed(e.to_string()),
            };
            size.observe(records.len(), records.iter().map(|r| r.payload.len()).sum());
            let Some(last) = records.last().map(|r| r.offset) else {
                break;
            };
            // The event met when the queue is full: the rest of the read is let go before
            // waiting (and read again after), so a stalled consumer holds one event, not a read.
            let mut waiting = None;
            for record in &records {
                if !filter.matches_key(record.key.as_deref()) {
                    continue;
                }
                let text = delivered_text(&channel, record);
                if !out.has_room(text.len()) {
                    waiting = Some((record.offset, text));
                    break;
                }
                if !out.deliver(record.offset.0, text).await {
                    return Stop::Disconnected;
                }
            }
            drop(records);
            next = last.next();
            if let Some((offset, text)) = waiting {
                if !out.deliver(offset.0, text).await {
                    return Stop::Disconnected;
                }
                next = offset.next();
            }
        }
        // Follow the feed while it is contiguous with what we sent.
        loop {
            match live.recv().await {
                Ok(event) if event.offset < next.0 => {}
                Ok(event) if event.offset == next.0 => {
                    next = next.next();
                    if !filter.matches(&event.ty, &event.source) {
                        continue;
                    }
                    if out.has_room(event.text.len()) {
                        if !out.deliver(event.offset, event.text).await {
                            return Stop::Disconnected;
                        }
                        continue;
                    }
                    // Behind: off the feed while waiting, then the log.
                    drop(live);
                    if !out.deliver(event.offset, event.text).await {
                        return Stop::Disconnected;
                    }
                    let Some(again) = feed.subscribe() else {
                        return Stop::Failed(FEED_STOPPED.to_owned());
                    };
                    live = again;
                    break;
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
