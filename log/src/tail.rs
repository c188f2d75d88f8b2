//! Tail: a stream that replays a partition from disk, then follows new appends.
//!
//! The stream reads a bounded chunk only when its consumer asks for more, so a slow or
//! stalled consumer holds at most one chunk and simply falls behind on disk; the writer never
//! waits for it (it only bumps a `watch` counter).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::record::{Offset, PartitionName, Record};
use crate::store::Store;

/// How many records a tail reads from disk at a time.
const CHUNK: usize = 512;

/// A stream of records in offset order; see [`crate::Log::tail`].
pub type RecordStream = BoxStream<'static, Result<Record>>;

struct TailState {
    store: Arc<Store>,
    partition: PartitionName,
    next: Offset,
    buf: VecDeque<Record>,
    changes: watch::Receiver<u64>,
    failed: bool,
}

/// Tails `partition` from `from` (records removed by retention are skipped).
pub(crate) fn tail(store: Arc<Store>, partition: PartitionName, from: Offset) -> RecordStream {
    let changes = store.committed.subscribe();
    let state = TailState {
        store,
        partition,
        next: from,
        buf: VecDeque::new(),
        changes,
        failed: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        let item = st.next_record().await?;
        Some((item, st))
    })
    .boxed()
}

impl TailState {
    async fn next_record(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(record) = self.buf.pop_front() {
                self.next = record.offset.next();
                return Some(Ok(record));
            }
            if self.failed {
                return None;
            }
            // Mark the current commit as seen *before* checking the head, so an append that
            // lands between the check and the wait still wakes us.
            self.changes.borrow_and_update();
            let head = self.store.state(&self.partition);
            if head.is_some_and(|s| s.next() > self.next) {
                match self.read_chunk().await {
                    Ok(records) if records.is_empty() => {
                        // Everything from `next` on was removed by retention meanwhile.
                        if let Some(s) = self.store.state(&self.partition) {
                            self.next = self.next.max(s.first());
                        }
                    }
                    Ok(records) => self.buf.extend(records),
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            if self.store.is_closed() || self.changes.changed().await.is_err() {
                return None;
            }
        }
    }

    async fn read_chunk(&self) -> Result<Vec<Record>> {
        let store = Arc::clone(&self.store);
        let (partition, from) = (self.partition.clone(), self.next);
        tokio::task::spawn_blocking(move || store.read(&partition, from, CHUNK))
            .await
            .map_err(|e| Error::Backend(format!("tail reader task failed: {e}")))?
    }
}
