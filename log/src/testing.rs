//! The conformance suite every [`LogBackend`] must pass (DESIGN.md §2).
//!
//! A backend provides a [`Harness`] that can open (and reopen) it on the same storage; then
//! [`conformance_suite!`](crate::conformance_suite) expands to one `#[tokio::test]` per check,
//! so a failure names the broken guarantee:
//!
//! ```text
//! draft_log::conformance_suite!(my_backend::TestHarness::new());
//! ```
//!
//! The checks panic with a message on failure, like any test.
//!
//! Where a backend cannot match the embedded log exactly, the suite asks only what every
//! backend gives, and says so here:
//!
//! - **Append times** are the engine's clock: fjall's never go backwards within a partition;
//!   on JetStream they are the stream leader's clock, so after a leader change between
//!   servers whose clocks disagree they may. Time lookups then find the first record stamped
//!   at or after the time, which may not be the first appended after it. The suite runs on a
//!   cluster of one machine's clock, without leader changes, and checks the strict order.
//! - **Retention by bytes** removes whole appends on fjall (frames) and single messages on
//!   JetStream; the suite checks only the bound, density and offsets.
//! - **`trim_before`** needs a partition the backend lets be trimmed (JetStream: streams
//!   without `deny_purge`, `_groups` by default); the harness makes the suite's `trimmed` so.
//! - **Appends** may be limited in records ([`LogBackend::limits`]): the suite appends large
//!   amounts in appends of at most that many.
//! - **Dedup ids** are remembered for two minutes: by the process for fjall (its only
//!   appender), by the stream for JetStream (shared by every node).

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::time::Duration;

use futures::future::BoxFuture;

use crate::backend::LogBackend;
use crate::config::{LogConfig, Retention};
use crate::error::Result;
use crate::log::Log;
use crate::record::{NewRecord, Offset, PartitionName, Record};

mod appends;
mod follow;
mod guards;
pub mod hooked;
mod upkeep;

pub use self::appends::*;
pub use self::follow::*;
pub use self::guards::*;
pub use self::upkeep::*;

/// How long a check waits for something asynchronous (a tail, retention) before failing.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Opens a backend under test, on storage that survives reopening.
pub trait Harness: Send + Sync + 'static {
    /// The backend.
    type Backend: LogBackend;

    /// Opens the backend with `retention` applied to the named partitions, applying retention
    /// at least every 50 ms. Opening again after the previous backend was dropped must see
    /// everything it acknowledged.
    fn open(
        &self,
        retention: Vec<(PartitionName, Retention)>,
    ) -> BoxFuture<'_, Result<Self::Backend>>;
}

/// The [`Harness`] for the embedded fjall [`Log`], on a temporary directory.
pub struct FjallHarness {
    dir: tempfile::TempDir,
}

impl FjallHarness {
    /// A harness on a fresh temporary directory.
    ///
    /// # Panics
    /// If no temporary directory can be created.
    #[must_use]
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory for the log"),
        }
    }
}

impl Default for FjallHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for FjallHarness {
    type Backend = Log;

    fn open(&self, retention: Vec<(PartitionName, Retention)>) -> BoxFuture<'_, Result<Log>> {
        let mut config =
            LogConfig::new(self.dir.path()).retention_interval(Duration::from_millis(50));
        for (partition, r) in retention {
            config = config.retention(partition, r);
        }
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Log::open(config))
                .await
                .expect("open task panicked")
        })
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh harness made by
/// `$harness` (an expression).
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@tests $harness;
            appends_get_dense_offsets_per_partition,
            reads_return_exactly_what_was_appended,
            batches_are_atomic_and_contiguous,
            everything_acknowledged_survives_reopen,
            tail_replays_then_follows_live_appends,
            tail_waits_for_a_partition_that_does_not_exist_yet,
            time_lookup_finds_the_first_record_at_or_after,
            retention_removes_a_prefix_and_keeps_offsets_dense,
            trim_before_removes_whole_appends_before_an_offset,
            many_concurrent_appenders_get_unique_dense_offsets,
            heads_report_counts_bytes_and_times,
            every_window_reads_back_across_append_sizes,
            sync_succeeds_and_a_fresh_backend_is_healthy,
            append_expecting_lets_exactly_one_writer_win,
            appends_over_the_limits_are_refused_clearly,
            a_retried_ambiguous_append_lands_exactly_once,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::testing::$name(&$harness).await;
            }
        )*
    };
}

pub(crate) fn p(name: &str) -> PartitionName {
    PartitionName::new(name).expect("valid test partition name")
}

pub(crate) fn records(prefix: &str, n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord::new(format!("{prefix}-{i}")))
        .collect()
}

pub(crate) fn payloads(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

pub(crate) async fn read_all<B: LogBackend>(log: &B, partition: &PartitionName) -> Vec<Record> {
    log.read(partition, Offset(0), usize::MAX)
        .await
        .expect("read")
}

pub(crate) fn payloads_of(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}
