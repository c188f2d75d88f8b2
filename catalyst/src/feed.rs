//! Live feeds: one tail of the log per channel that has consumers, encoding each new event
//! **once** and broadcasting it to every consumer of the channel.
//!
//! The broadcast buffer is bounded; a consumer that falls more than that behind gets
//! `Lagged`, drops back to reading from disk and rejoins the feed when it has caught up
//! (see `consume`). So a slow consumer costs disk reads, never unbounded memory, and never
//! slows the producers or the other consumers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use axum::extract::ws::Utf8Bytes;
use draft_log::{LogBackend, Offset, PartitionName, Record, split_event_key};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::cloudevent::delivered;

/// How many events a feed keeps for consumers that are briefly behind.
const FEED_CAPACITY: usize = 4096;

/// An event as consumers receive it, shared by all of them.
#[derive(Clone, Debug)]
pub(crate) struct Delivered {
    pub(crate) offset: u64,
    pub(crate) ty: Arc<str>,
    pub(crate) source: Arc<str>,
    pub(crate) text: Utf8Bytes,
}

/// The text a consumer receives for `record` (no filter fields: for replay, which filters on
/// the record key before encoding).
pub(crate) fn delivered_text(channel: &PartitionName, record: &Record) -> Utf8Bytes {
    delivered(channel.as_str(), record.offset.0, &record.payload).into()
}

impl Delivered {
    /// Encodes a record for delivery.
    pub(crate) fn from_record(channel: &PartitionName, record: &Record) -> Self {
        let (ty, source) = record
            .key
            .as_deref()
            .and_then(split_event_key)
            .map_or(("", ""), |(ty, source, _)| (ty, source));
        Self {
            offset: record.offset.0,
            ty: ty.into(),
            source: source.into(),
            text: delivered_text(channel, record),
        }
    }
}

/// One channel's live feed. Dropping the last handle stops its tail.
///
/// Only the feed's task holds a strong sender: when the task ends (its tail failed, or the
/// log closed), every receiver sees `Closed` at once, so its consumer is closed with 1011
/// instead of waiting for ever, and [`Feeds::get`] starts a new feed for the next consumer.
pub(crate) struct Feed {
    tx: broadcast::WeakSender<Delivered>,
    task: JoinHandle<()>,
}

impl Feed {
    /// A receiver of the feed's events; `None` once the feed has stopped.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Delivered>> {
        self.tx.upgrade().map(|tx| tx.subscribe())
    }

    /// Whether the feed's task still runs.
    fn is_alive(&self) -> bool {
        !self.task.is_finished() && self.tx.strong_count() > 0
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every channel's feed, started on the first consumer and stopped after the last.
pub(crate) struct Feeds {
    log: Arc<dyn LogBackend>,
    feeds: Mutex<HashMap<PartitionName, Weak<Feed>>>,
}

impl Feeds {
    pub(crate) fn new(log: Arc<dyn LogBackend>) -> Self {
        Self {
            log,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// The channel's feed, started at the channel's current end if it is not running (or
    /// has stopped).
    pub(crate) async fn get(&self, channel: &PartitionName) -> draft_log::Result<Arc<Feed>> {
        if let Some(feed) = self.lookup(channel) {
            return Ok(feed);
        }
        let start = self.log.head(channel).await?.map_or(Offset(0), |h| h.next);
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another consumer may have started it while we read the head.
        if let Some(feed) = feeds
            .get(channel)
            .and_then(Weak::upgrade)
            .filter(|f| f.is_alive())
        {
            return Ok(feed);
        }
        feeds.retain(|_, f| f.strong_count() > 0);
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        let weak = tx.downgrade();
        let task = tokio::spawn(run(Arc::clone(&self.log), channel.clone(), start, tx));
        let feed = Arc::new(Feed { tx: weak, task });
        feeds.insert(channel.clone(), Arc::downgrade(&feed));
        Ok(feed)
    }

    fn lookup(&self, channel: &PartitionName) -> Option<Arc<Feed>> {
        let feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        feeds
            .get(channel)
            .and_then(Weak::upgrade)
            .filter(|f| f.is_alive())
    }
}

async fn run(
    log: Arc<dyn LogBackend>,
    channel: PartitionName,
    start: Offset,
    tx: broadcast::Sender<Delivered>,
) {
    let mut tail = log.tail(&channel, start);
    while let Some(record) = tail.next().await {
        match record {
            // No receivers is fine: consumers come and go.
            Ok(record) => drop(tx.send(Delivered::from_record(&channel, &record))),
            Err(e) => {
                warn!(channel = %channel, error = %e, "live feed stopped; its consumers are closed with 1011");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
