//! [`LogBackend`]: the seam between Draft's services and the engine that stores the log.
//!
//! The broker, the registry and the router use the log only through this trait, so a
//! clustered engine (NATS JetStream) can stand in for the embedded fjall log. Every method is
//! async because a remote backend answers over the network; the trait is object safe
//! (`Arc<dyn LogBackend>`), which is why methods return boxed futures.

use futures::future::BoxFuture;

use crate::config::Retention;
use crate::error::{Error, Result};
use crate::failure::StorageFailure;
use crate::limits::AppendLimits;
use crate::log::Log;
use crate::record::{
    AppendAck, NewRecord, Offset, PartitionHead, PartitionName, Record, Timestamp,
};
use crate::tail::RecordStream;

/// What Draft needs from a log engine. See DESIGN.md §2 for the guarantees every
/// implementation must give; `draft_log::testing` checks them.
pub trait LogBackend: Send + Sync + 'static {
    /// Appends `records` to `partition` atomically; resolves once they are durable. Offsets
    /// are dense and in append order.
    fn append<'a>(
        &'a self,
        partition: &'a PartitionName,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<AppendAck>>;

    /// [`append`](Self::append) only if `partition`'s next offset is `expected_next` (a
    /// partition that does not exist is at 0): compare-and-set, decided atomically with the
    /// append by the engine. Dedup ids are checked first: a retry of an append that landed is
    /// acknowledged even though the partition has moved on.
    ///
    /// # Errors
    /// [`Error::Conflict`] carrying the partition's actual next offset; nothing is appended.
    fn append_expecting<'a>(
        &'a self,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<AppendAck>>;

    /// The largest append the backend takes; a bigger one is refused with
    /// [`Error::TooLarge`] or [`Error::TooMany`] and stores nothing.
    fn limits(&self) -> AppendLimits;

    /// Up to `limit` records from `from` on, in offset order.
    fn read<'a>(
        &'a self,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Record>>>;

    /// The first offset appended at or after `time`, or `None` if every record is older.
    fn offset_at_time<'a>(
        &'a self,
        partition: &'a PartitionName,
        time: Timestamp,
    ) -> BoxFuture<'a, Result<Option<Offset>>>;

    /// Replays from `from`, then follows new appends (see [`Log::tail`]).
    fn tail(&self, partition: &PartitionName, from: Offset) -> RecordStream;

    /// The head of one partition, or `None` if it does not exist.
    fn head<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, Result<Option<PartitionHead>>>;

    /// The heads of every partition, sorted by name.
    fn partitions(&self) -> BoxFuture<'_, Result<Vec<PartitionHead>>>;

    /// Removes the records of `partition` before `before`, whole appends at a time (records
    /// appended together go together, so one appended alone goes exactly); never a record at
    /// or after `before`, and no offset changes. Returns how many records went. See
    /// [`Log::trim_before`].
    fn trim_before<'a>(
        &'a self,
        partition: &'a PartitionName,
        before: Offset,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Makes everything appended so far durable (a node calls it last, on its way down; in
    /// `Buffered` mode it is what makes the last appends survive).
    fn sync(&self) -> BoxFuture<'_, Result<()>>;

    /// Sets how much of `partition` to keep from now on; `None` returns it to the backend's
    /// default. Reserved partitions keep everything unless set.
    ///
    /// # Errors
    /// If the engine refuses the change (a clustered engine may be unreachable).
    fn set_retention<'a>(
        &'a self,
        partition: &'a PartitionName,
        retention: Option<Retention>,
    ) -> BoxFuture<'a, Result<()>>;

    /// The retention in force for `partition`.
    fn retention<'a>(&'a self, partition: &'a PartitionName) -> BoxFuture<'a, Result<Retention>>;

    /// The storage failure that made the backend read-only, if one did: a write or an fsync
    /// failed, and every write is refused from then on until the backend is reopened (a node
    /// reports it as not ready, answers writes with 503 and stops expiring leases).
    fn storage_failure(&self) -> Option<StorageFailure>;

    /// Whether the backend can still take writes: no [`storage_failure`](Self::storage_failure).
    fn is_healthy(&self) -> bool {
        self.storage_failure().is_none()
    }
}

/// Runs a blocking log call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("blocking log task failed: {e}")))?
}

impl LogBackend for Log {
    fn append<'a>(
        &'a self,
        partition: &'a PartitionName,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<AppendAck>> {
        Box::pin(Log::append(self, partition, records))
    }

    fn append_expecting<'a>(
        &'a self,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<AppendAck>> {
        Box::pin(Log::append_expecting(
            self,
            partition,
            expected_next,
            records,
        ))
    }

    fn limits(&self) -> AppendLimits {
        Log::limits(self)
    }

    fn read<'a>(
        &'a self,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Record>>> {
        let (log, partition) = (self.clone(), partition.clone());
        Box::pin(blocking(move || log.read(&partition, from, limit)))
    }

    fn offset_at_time<'a>(
        &'a self,
        partition: &'a PartitionName,
        time: Timestamp,
    ) -> BoxFuture<'a, Result<Option<Offset>>> {
        let (log, partition) = (self.clone(), partition.clone());
        Box::pin(blocking(move || log.offset_at_time(&partition, time)))
    }

    fn tail(&self, partition: &PartitionName, from: Offset) -> RecordStream {
        Log::tail(self, partition, from)
    }

    fn head<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, Result<Option<PartitionHead>>> {
        // Heads are in memory: no blocking call.
        Box::pin(std::future::ready(Ok(Log::head(self, partition))))
    }

    fn partitions(&self) -> BoxFuture<'_, Result<Vec<PartitionHead>>> {
        Box::pin(std::future::ready(Ok(Log::partitions(self))))
    }

    fn trim_before<'a>(
        &'a self,
        partition: &'a PartitionName,
        before: Offset,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Log::trim_before(self, partition, before))
    }

    fn sync(&self) -> BoxFuture<'_, Result<()>> {
        let log = self.clone();
        Box::pin(blocking(move || log.sync()))
    }

    fn set_retention<'a>(
        &'a self,
        partition: &'a PartitionName,
        retention: Option<Retention>,
    ) -> BoxFuture<'a, Result<()>> {
        // In memory: no blocking call.
        match retention {
            Some(r) => Log::set_retention(self, partition.clone(), r),
            None => Log::clear_retention(self, partition),
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn retention<'a>(&'a self, partition: &'a PartitionName) -> BoxFuture<'a, Result<Retention>> {
        Box::pin(std::future::ready(Ok(Log::retention_of(self, partition))))
    }

    fn storage_failure(&self) -> Option<StorageFailure> {
        Log::storage_failure(self)
    }
}
