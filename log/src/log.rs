//! [`Log`]: the handle to an open log.

use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::background::{self, RetentionTable, Stop};
use crate::config::{Durability, LogConfig, Retention};
use crate::error::{Error, Result};
use crate::failure::StorageFailure;
use crate::limits::AppendLimits;
use crate::record::{
    AppendAck, NewRecord, Offset, PartitionHead, PartitionName, Record, Timestamp,
};
use crate::store::Store;
use crate::tail::{self, RecordStream};
use crate::writer::{Command, Writer};

/// How many commands may wait for the writer thread. Appenders beyond that wait (async) or
/// block (sync) for room: back-pressure instead of unbounded memory.
const QUEUE: usize = 16 * 1024;

/// An open log. Cheap to clone; every clone is the same log. The log closes when the last
/// clone is dropped (or on [`Log::close`]): queued appends finish and the journal is fsync'ed.
///
/// Methods without `async` block on disk: from async code call them in
/// `tokio::task::spawn_blocking`, or use the [`crate::LogBackend`] implementation, which does.
///
/// # Examples
/// ```
/// # fn main() -> Result<(), draft_log::Error> {
/// use draft_log::{Log, LogConfig, NewRecord, Offset, PartitionName};
/// let dir = tempfile::tempdir().expect("temp dir");
/// let log = Log::open(LogConfig::new(dir.path()))?;
/// let orders = PartitionName::new("orders")?;
/// let ack = log.append_blocking(&orders, vec![NewRecord::new("a"), NewRecord::new("b")])?;
/// assert_eq!(ack.first, Offset(0));
/// let records = log.read(&orders, Offset(0), 10)?;
/// assert_eq!(&records[1].payload[..], b"b");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    tx: Option<mpsc::Sender<Command>>,
    /// The writer thread, unparked after each append is queued: while it gathers a group it
    /// waits for appends with `park_timeout` (see `Writer::run`).
    writer: std::thread::Thread,
    config: RetentionTable,
    /// The largest append, in key and payload bytes (the writer refuses bigger ones).
    max_append_bytes: u64,
    stop: Arc<Stop>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Log {
    /// Opens the log in `config.dir()`, creating it if needed, and recovers every partition.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process has it open; [`Error::Inconsistent`] or
    /// [`Error::Storage`] if the files cannot be recovered.
    pub fn open(config: LogConfig) -> Result<Self> {
        let started = std::time::Instant::now();
        let store = Arc::new(Store::open(&config)?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let sync = config.durability == Durability::Sync;
        let max_append_bytes = config.max_append_bytes;
        let writer = Writer::new(Arc::clone(&store), sync, max_append_bytes);
        let writer_nice = config.writer_nice;
        let spawn_err = |e: std::io::Error| Error::storage("start a thread", fjall::Error::Io(e));
        let mut threads = vec![
            std::thread::Builder::new()
                .name("draft-log-writer".into())
                .spawn(move || {
                    if let Some(nice) = writer_nice {
                        set_thread_nice(nice);
                    }
                    writer.run(rx);
                })
                .map_err(spawn_err)?,
        ];
        let writer = threads[0].thread().clone();
        let stop = Arc::new(Stop::default());
        if let Durability::Buffered { interval } = config.durability {
            threads.push(
                background::spawn_flusher(Arc::clone(&store), interval, Arc::clone(&stop))
                    .map_err(spawn_err)?,
            );
        }
        let config = Arc::new(RwLock::new(config));
        threads.push(
            background::spawn_retention(
                Arc::clone(&store),
                tx.clone(),
                Arc::clone(&config),
                Arc::clone(&stop),
            )
            .map_err(spawn_err)?,
        );
        info!(
            dir = %config.read().unwrap_or_else(std::sync::PoisonError::into_inner).dir.display(),
            partitions = store.heads().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                tx: Some(tx),
                writer,
                config,
                max_append_bytes,
                stop,
                threads: Mutex::new(threads),
            }),
        })
    }

    fn sender(&self) -> Result<&mpsc::Sender<Command>> {
        self.inner.tx.as_ref().ok_or(Error::Closed)
    }

    /// Appends `records` to `partition` atomically (all or none), creating the partition if
    /// needed. Resolves once the records are durable (in `Sync` mode: fsync'ed).
    pub async fn append(
        &self,
        partition: &PartitionName,
        records: Vec<NewRecord>,
    ) -> Result<AppendAck> {
        self.append_if(partition, None, records).await
    }

    /// [`Log::append`] only if `partition`'s next offset is `expected_next` when the writer
    /// takes the append (a partition that does not exist is at offset 0): compare-and-set,
    /// decided in the writer thread, so exact against every other append.
    ///
    /// # Errors
    /// [`Error::Conflict`] with the partition's actual next offset, and nothing appended.
    pub async fn append_expecting(
        &self,
        partition: &PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> Result<AppendAck> {
        self.append_if(partition, Some(expected_next), records)
            .await
    }

    /// The largest append this log takes (it has no limit on records, only on bytes).
    #[must_use]
    pub fn limits(&self) -> AppendLimits {
        AppendLimits {
            max_records: None,
            max_record_bytes: self.inner.max_append_bytes,
            max_append_bytes: self.inner.max_append_bytes,
        }
    }

    async fn append_if(
        &self,
        partition: &PartitionName,
        expected: Option<Offset>,
        records: Vec<NewRecord>,
    ) -> Result<AppendAck> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Append {
            partition: partition.clone(),
            records,
            expected,
            reply,
        };
        self.sender()?.send(cmd).await.map_err(|_| Error::Closed)?;
        self.inner.writer.unpark();
        rx.await.map_err(|_| Error::Closed)?
    }

    /// [`Log::append`] for synchronous callers. Do not call it from an async task.
    pub fn append_blocking(
        &self,
        partition: &PartitionName,
        records: Vec<NewRecord>,
    ) -> Result<AppendAck> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Append {
            partition: partition.clone(),
            records,
            expected: None,
            reply,
        };
        self.sender()?
            .blocking_send(cmd)
            .map_err(|_| Error::Closed)?;
        self.inner.writer.unpark();
        rx.blocking_recv().map_err(|_| Error::Closed)?
    }

    /// Creates `partition` if it does not exist (it is also created by its first append).
    pub fn create_partition(&self, partition: &PartitionName) -> Result<()> {
        self.append_blocking(partition, Vec::new()).map(|_| ())
    }

    /// Reads up to `limit` records of `partition`, in offset order, from `from` on. An offset
    /// below the first stored one (removed by retention) reads from the first stored one; an
    /// unknown partition or an offset past the end reads nothing.
    pub fn read(
        &self,
        partition: &PartitionName,
        from: Offset,
        limit: usize,
    ) -> Result<Vec<Record>> {
        self.inner.store.read(partition, from, limit)
    }

    /// The first stored offset of `partition` appended at or after `time`, or `None` if every
    /// stored record is older (or the partition is unknown).
    pub fn offset_at_time(
        &self,
        partition: &PartitionName,
        time: Timestamp,
    ) -> Result<Option<Offset>> {
        self.inner.store.offset_at_time(partition, time)
    }

    /// A stream of `partition`'s records from `from` on: it reads from disk until it has
    /// caught up, then follows new appends, forever (it ends when the log closes). A
    /// partition that does not exist yet is waited for. Call within a tokio runtime.
    #[must_use]
    pub fn tail(&self, partition: &PartitionName, from: Offset) -> RecordStream {
        tail::tail(Arc::clone(&self.inner.store), partition.clone(), from)
    }

    /// First and next offsets, count, bytes and last append time of `partition`.
    #[must_use]
    pub fn head(&self, partition: &PartitionName) -> Option<PartitionHead> {
        self.inner.store.head(partition)
    }

    /// The heads of every partition, sorted by name.
    #[must_use]
    pub fn partitions(&self) -> Vec<PartitionHead> {
        self.inner.store.heads()
    }

    /// Sets the retention of one partition (applied by the background thread).
    pub fn set_retention(&self, partition: PartitionName, retention: Retention) {
        let mut config = self
            .inner
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        config.retention.insert(partition, retention);
    }

    /// Returns `partition` to the log's default retention (reserved partitions: forever).
    pub fn clear_retention(&self, partition: &PartitionName) {
        self.inner
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retention
            .remove(partition);
    }

    /// The retention in force for `partition`: its own, else the default.
    #[must_use]
    pub fn retention_of(&self, partition: &PartitionName) -> Retention {
        self.inner
            .config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retention_of(partition)
    }

    /// Applies `partition`'s retention now rather than at the next background pass; returns
    /// how many records were removed.
    pub fn apply_retention(&self, partition: &PartitionName) -> Result<u64> {
        let retention = self
            .inner
            .config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retention_of(partition);
        if retention.is_forever() {
            return Ok(0);
        }
        background::apply(&self.inner.store, self.sender()?, partition, retention)
    }

    /// Removes the records of `partition` before `before`, whole appends at a time: a record
    /// goes only with every record appended with it, so records appended together with one at
    /// or after `before` stay (a record appended alone goes exactly). Never removes a record
    /// at or after `before`, never changes an offset; resolves once the removal is committed
    /// and returns how many records went. An unknown partition removes nothing.
    ///
    /// This is retention on demand, for a partition that keeps its own bound (a snapshot
    /// followed by changes: everything before the newest snapshot can go).
    pub async fn trim_before(&self, partition: &PartitionName, before: Offset) -> Result<u64> {
        let (tx, partition) = (self.sender()?.clone(), partition.clone());
        tokio::task::spawn_blocking(move || background::trim(&tx, &partition, before, None))
            .await
            .map_err(|e| Error::Backend(format!("trim task failed: {e}")))?
    }

    /// Forces an fsync of everything appended so far (useful in `Buffered` mode).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] if the fsync fails (the log turns read-only) or a write failed
    /// before.
    pub fn sync(&self) -> Result<()> {
        let store = &self.inner.store;
        store.check_writable()?;
        store
            .db
            .persist(PersistMode::SyncAll)
            .map_err(|e| store.fail(StorageFailure::new("fsync", &e)))
    }

    /// `false` once a write or an fsync has failed: the log then refuses writes until it is
    /// reopened (see [`Error::ReadOnly`]).
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.storage_failure().is_none()
    }

    /// The first write or fsync that failed since the log was opened, if one did: the log is
    /// read-only from then on, until it is reopened. Reads go on.
    #[must_use]
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        self.inner.store.failure().cloned()
    }

    /// Closes the log if this is the last handle: waits for queued appends and the background
    /// threads, then fsyncs. Other clones keep it open.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.stop();
        // Dropping the last sender lets the writer drain its queue and exit.
        self.tx = None;
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for thread in threads {
            if thread.join().is_err() {
                warn!("a log thread panicked while closing");
            }
        }
        self.store.close();
        // A read-only log has nothing to make durable (fjall would only say "poisoned").
        if self.store.failure().is_some() {
            return;
        }
        if let Err(e) = self.store.db.persist(PersistMode::SyncAll) {
            warn!(error = ?e, "could not fsync on close");
        }
    }
}

/// Sets the calling thread's nice value (Linux applies `setpriority` on a thread id to that
/// thread alone); a refusal (a negative value without `CAP_SYS_NICE` or a high enough
/// `RLIMIT_NICE`) is logged and ignored.
#[cfg(target_os = "linux")]
fn set_thread_nice(nice: i32) {
    let tid = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(tid), nice) {
        Ok(()) => tracing::debug!(nice, "log writer thread priority set"),
        Err(e) => tracing::debug!(nice, error = %e, "log writer thread keeps its priority"),
    }
}

/// Elsewhere `setpriority` applies to the whole process, which is not what is asked: the
/// writer keeps the process's priority.
#[cfg(not(target_os = "linux"))]
fn set_thread_nice(nice: i32) {
    tracing::debug!(nice, "thread priorities are only set on Linux");
}

#[cfg(test)]
mod tests;
