//! A real log with some of its calls changed, for tests that inject a failure or a delay
//! where the code under test meets the [`LogBackend`] seam.

use std::time::Duration;

use crate::{
    AppendAck, AppendLimits, Log, LogBackend, NewRecord, Offset, PartitionHead, PartitionName,
    Record, RecordStream, Retention, StorageFailure, Timestamp,
};
use futures::future::BoxFuture;

/// What a test changes of the log's calls; everything else goes straight to the log.
pub trait Hooks: Send + Sync + 'static {
    /// The tail of `partition` from `from`.
    fn tail(&self, log: &Log, partition: &PartitionName, from: Offset) -> RecordStream {
        LogBackend::tail(log, partition, from)
    }

    /// A read of up to `limit` records of `partition` from `from`.
    fn read<'a>(
        &'a self,
        log: &'a Log,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, crate::Result<Vec<Record>>> {
        LogBackend::read(log, partition, from, limit)
    }

    /// A compare-and-set append of `records` to `partition` after `expected_next`.
    fn append_expecting<'a>(
        &'a self,
        log: &'a Log,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, crate::Result<AppendAck>> {
        LogBackend::append_expecting(log, partition, expected_next, records)
    }

    /// How long a retention setting takes to land.
    fn set_retention_delay(&self, _retention: Option<&Retention>) -> Duration {
        Duration::ZERO
    }
}

/// A real log, its calls changed by `hooks`.
pub struct Hooked<H> {
    /// The log the calls go to.
    pub log: Log,
    /// What is changed.
    pub hooks: H,
}

impl<H: Hooks> LogBackend for Hooked<H> {
    fn append<'a>(
        &'a self,
        partition: &'a PartitionName,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, crate::Result<AppendAck>> {
        LogBackend::append(&self.log, partition, records)
    }

    fn append_expecting<'a>(
        &'a self,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, crate::Result<AppendAck>> {
        self.hooks
            .append_expecting(&self.log, partition, expected_next, records)
    }

    fn limits(&self) -> AppendLimits {
        LogBackend::limits(&self.log)
    }

    fn read<'a>(
        &'a self,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, crate::Result<Vec<Record>>> {
        self.hooks.read(&self.log, partition, from, limit)
    }

    fn offset_at_time<'a>(
        &'a self,
        partition: &'a PartitionName,
        time: Timestamp,
    ) -> BoxFuture<'a, crate::Result<Option<Offset>>> {
        LogBackend::offset_at_time(&self.log, partition, time)
    }

    fn tail(&self, partition: &PartitionName, from: Offset) -> RecordStream {
        self.hooks.tail(&self.log, partition, from)
    }

    fn head<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, crate::Result<Option<PartitionHead>>> {
        LogBackend::head(&self.log, partition)
    }

    fn partitions(&self) -> BoxFuture<'_, crate::Result<Vec<PartitionHead>>> {
        LogBackend::partitions(&self.log)
    }

    fn trim_before<'a>(
        &'a self,
        partition: &'a PartitionName,
        before: Offset,
    ) -> BoxFuture<'a, crate::Result<u64>> {
        LogBackend::trim_before(&self.log, partition, before)
    }

    fn sync(&self) -> BoxFuture<'_, crate::Result<()>> {
        LogBackend::sync(&self.log)
    }

    fn set_retention<'a>(
        &'a self,
        partition: &'a PartitionName,
        retention: Option<Retention>,
    ) -> BoxFuture<'a, crate::Result<()>> {
        let delay = self.hooks.set_retention_delay(retention.as_ref());
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            LogBackend::set_retention(&self.log, partition, retention).await
        })
    }

    fn retention<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, crate::Result<Retention>> {
        LogBackend::retention(&self.log, partition)
    }

    fn storage_failure(&self) -> Option<StorageFailure> {
        LogBackend::storage_failure(&self.log)
    }
}
