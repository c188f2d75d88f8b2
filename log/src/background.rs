//! Background threads: retention, and the periodic fsync of `Buffered` durability.

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::config::{LogConfig, Retention};
use crate::error::{Error, Result};
use crate::failure::StorageFailure;
use crate::record::{Offset, PartitionName, Timestamp};
use crate::store::Store;
use crate::writer::Command;

/// How many items (records, or frames of records appended together) one trim command removes
/// at most.
pub(crate) const TRIM_CHUNK: usize = 10_000;

/// A stop signal that background threads sleep on.
#[derive(Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl Stop {
    /// Sleeps for `d` or until stopped; returns whether the thread should stop.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard
    }

    pub(crate) fn stop(&self) {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.cond.notify_all();
    }
}

/// The per-partition retention settings, changeable while the log runs.
pub(crate) type RetentionTable = Arc<RwLock<LogConfig>>;

/// Applies retention every `interval` until stopped.
pub(crate) fn spawn_retention(
    store: Arc<Store>,
    tx: mpsc::Sender<Command>,
    config: RetentionTable,
    stop: Arc<Stop>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("draft-log-retention".into())
        .spawn(move || {
            loop {
                let interval = config
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .retention_interval;
                if stop.sleep(interval) {
                    return;
                }
                // A read-only log removes nothing (it cannot commit a removal); the failure
                // was logged once, where it happened.
                if store.failure().is_some() {
                    continue;
                }
                for head in store.heads() {
                    let retention = config
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .retention_of(&head.partition);
                    if retention.is_forever() {
                        continue;
                    }
                    match apply(&store, &tx, &head.partition, retention) {
                        Ok(0) => {}
                        Ok(n) => {
                            debug!(partition = %head.partition, removed = n, "retention applied");
                        }
                        Err(Error::Closed) => return,
                        Err(e) => {
                            warn!(partition = %head.partition, error = %e, "retention failed");
                        }
                    }
                }
            }
        })
}

/// Removes what `retention` no longer keeps from one partition; returns how many records.
pub(crate) fn apply(
    store: &Store,
    tx: &mpsc::Sender<Command>,
    partition: &PartitionName,
    retention: Retention,
) -> Result<u64> {
    let before = match retention.max_age {
        Some(age) => {
            let cutoff = Timestamp::now().saturating_sub(age);
            match store.offset_at_time(partition, cutoff)? {
                Some(offset) => offset,
                None => store.state(partition).map_or(Offset(0), |s| s.next()),
            }
        }
        None => Offset(0),
    };
    trim(tx, partition, before, retention.max_bytes)
}

/// Has the writer remove the records of `partition` before `before` (and, with `max_bytes`,
/// the oldest ones over it), in commands of at most [`TRIM_CHUNK`] records each until none
/// is left; returns how many went. Blocking: call it off the async workers.
pub(crate) fn trim(
    tx: &mpsc::Sender<Command>,
    partition: &PartitionName,
    before: Offset,
    max_bytes: Option<u64>,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Trim {
            partition: partition.clone(),
            before,
            max_bytes,
            limit: TRIM_CHUNK,
            reply,
        };
        tx.blocking_send(cmd).map_err(|_| Error::Closed)?;
        let trimmed = rx.blocking_recv().map_err(|_| Error::Closed)??;
        total += trimmed.records;
        if !trimmed.more {
            return Ok(total);
        }
    }
}

/// Fsyncs the journal every `interval` until stopped (`Durability::Buffered`).
pub(crate) fn spawn_flusher(
    store: Arc<Store>,
    interval: Duration,
    stop: Arc<Stop>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("draft-log-flush".into())
        .spawn(move || {
            while !stop.sleep(interval) {
                if let Err(e) = store.db.persist(PersistMode::SyncAll) {
                    // `fail` logs it: the log is read-only from now on.
                    store.fail(StorageFailure::new("periodic fsync", &e));
                    return;
                }
            }
        })
}
