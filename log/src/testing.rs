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

// Every check is a test body: panicking with a message is how it reports a broken guarantee.
#![allow(clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;

use crate::backend::LogBackend;
use crate::config::{LogConfig, Retention};
use crate::error::Result;
use crate::log::Log;
use crate::record::{NewRecord, Offset, PartitionName, Record, Timestamp};

/// How long a check waits for something asynchronous (a tail, retention) before failing.
const PATIENCE: Duration = Duration::from_secs(20);

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
            many_concurrent_appenders_get_unique_dense_offsets,
            heads_report_counts_bytes_and_times,
            every_window_reads_back_across_append_sizes,
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

fn p(name: &str) -> PartitionName {
    PartitionName::new(name).expect("valid test partition name")
}

fn records(prefix: &str, n: usize) -> Vec<NewRecord> {
    (0..n)
        .map(|i| NewRecord::new(format!("{prefix}-{i}")))
        .collect()
}

fn payloads(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

async fn read_all<B: LogBackend>(log: &B, partition: &PartitionName) -> Vec<Record> {
    log.read(partition, Offset(0), usize::MAX)
        .await
        .expect("read")
}

/// Offsets start at 0 in every partition and grow by one per record.
pub async fn appends_get_dense_offsets_per_partition<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let (a, b) = (p("a"), p("b"));
    let ack = log.append(&a, records("x", 3)).await.expect("append");
    assert_eq!((ack.first, ack.count), (Offset(0), 3));
    let ack = log.append(&b, records("y", 1)).await.expect("append");
    assert_eq!(ack.first, Offset(0), "each partition has its own offsets");
    let ack = log.append(&a, records("z", 2)).await.expect("append");
    assert_eq!(
        ack.offsets().collect::<Vec<_>>(),
        vec![Offset(3), Offset(4)]
    );
    let offsets: Vec<u64> = read_all(&log, &a)
        .await
        .iter()
        .map(|r| r.offset.0)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

/// Keys and payloads come back byte for byte; `from` and `limit` select a window.
pub async fn reads_return_exactly_what_was_appended<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("reads");
    let input = vec![
        NewRecord::new(vec![0u8, 255, 1]).with_key("k1"),
        NewRecord::new(Vec::new()),
        NewRecord::new("third").with_key(Vec::new()),
    ];
    log.append(&part, input.clone()).await.expect("append");
    let out = read_all(&log, &part).await;
    assert_eq!(out.len(), 3);
    for (record, sent) in out.iter().zip(&input) {
        assert_eq!(record.payload, sent.payload);
        assert_eq!(record.key, sent.key);
        assert_eq!(record.partition, part);
    }
    let window = log.read(&part, Offset(1), 1).await.expect("read");
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].offset, Offset(1));
    assert!(
        log.read(&part, Offset(3), 10)
            .await
            .expect("read")
            .is_empty(),
        "past the end"
    );
    assert!(
        log.read(&p("nothing-here"), Offset(0), 10)
            .await
            .expect("read")
            .is_empty()
    );
}

/// Appends of many sizes (one record, a few, hundreds, records of 40 KB and one of 300 KB; an
/// engine may store an append as one unit or several) read back through every window
/// `from`/`limit`, before and after a reopen, and time lookups land on the first record of
/// each append.
pub async fn every_window_reads_back_across_append_sizes<H: Harness>(h: &H) {
    let part = p("windows");
    let sizes = [1usize, 2, 1, 3, 7, 1, 300, 2, 1, 40];
    let mut expected = Vec::new();
    let mut acks = Vec::new();
    {
        let log = h.open(vec![]).await.expect("open");
        for (i, n) in sizes.into_iter().enumerate() {
            let batch: Vec<NewRecord> = (0..n)
                .map(|j| {
                    // Every ninth record is large: enough of them fill any sensible unit.
                    let pad = match j {
                        100 => 300_000,
                        _ if j % 9 == 8 => 40_000,
                        _ => j % 5,
                    };
                    NewRecord::new(format!("{i}.{j}:{}", "x".repeat(pad))).with_key(format!("k{j}"))
                })
                .collect();
            expected.extend(batch.iter().map(|r| (r.key.clone(), r.payload.clone())));
            acks.push(log.append(&part, batch).await.expect("append"));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        check_windows(&log, &part, &expected).await;
    }
    let log = h.open(vec![]).await.expect("reopen");
    check_windows(&log, &part, &expected).await;
    for ack in &acks {
        assert_eq!(
            log.offset_at_time(&part, ack.time).await.expect("lookup"),
            Some(ack.first),
            "the first record of the append at {:?}",
            ack.time
        );
    }
}

/// Reads `part` through every `from` and a few limits and compares with `expected`.
async fn check_windows<B: LogBackend>(
    log: &B,
    part: &PartitionName,
    expected: &[(Option<bytes::Bytes>, bytes::Bytes)],
) {
    let total = expected.len();
    for from in 0..=total + 1 {
        // Reading everything from every offset would be quadratic: from some offsets only.
        let limits: &[usize] = if from % 16 == 0 {
            &[1, 2, 5, 64, usize::MAX]
        } else {
            &[1, 2, 5, 64]
        };
        for &limit in limits {
            let got = log
                .read(part, Offset(from as u64), limit)
                .await
                .expect("read");
            let want = &expected[from.min(total)..from.saturating_add(limit).min(total)];
            assert_eq!(got.len(), want.len(), "from {from} limit {limit}");
            for (k, (record, (key, payload))) in got.iter().zip(want).enumerate() {
                assert_eq!(record.offset, Offset((from + k) as u64));
                assert_eq!(
                    (&record.key, &record.payload),
                    (key, payload),
                    "at {}",
                    from + k
                );
            }
        }
    }
}

/// Concurrent batches never interleave: each batch's records are contiguous and in order.
pub async fn batches_are_atomic_and_contiguous<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("batches");
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (log, part) = (Arc::clone(&log), part.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for b in 0..10 {
                let ack = log
                    .append(&part, records(&format!("{t}.{b}"), 10))
                    .await
                    .expect("append");
                acks.push((format!("{t}.{b}"), ack));
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.expect("task"));
    }
    let all_payloads = payloads(&read_all(&*log, &part).await);
    assert_eq!(all_payloads.len(), 16 * 10 * 10);
    {
        for (prefix, ack) in acks {
            assert_eq!(ack.count, 10);
            let start = ack.first.0 as usize;
            let got = all_payloads
                .get(start..start + 10)
                .expect("batch within log");
            let want: Vec<String> = (0..10).map(|i| format!("{prefix}-{i}")).collect();
            assert_eq!(
                got,
                &want[..],
                "batch {prefix} is contiguous at its offsets"
            );
        }
    }
}

/// Close and reopen: every acknowledged record is there, and appends continue after it.
pub async fn everything_acknowledged_survives_reopen<H: Harness>(h: &H) {
    let part = p("durable");
    {
        let log = h.open(vec![]).await.expect("open");
        log.append(&part, records("before", 100))
            .await
            .expect("append");
        log.append(&p("other"), records("o", 1))
            .await
            .expect("append");
    }
    let log = h.open(vec![]).await.expect("reopen");
    let out = read_all(&log, &part).await;
    assert_eq!(payloads(&out), payloads_of("before", 100));
    let head = log
        .head(&part)
        .await
        .expect("head")
        .expect("partition exists after reopen");
    assert_eq!((head.first, head.next), (Offset(0), Offset(100)));
    let ack = log
        .append(&part, records("after", 1))
        .await
        .expect("append");
    assert_eq!(ack.first, Offset(100), "offsets continue after reopen");
    let names: Vec<String> = log
        .partitions()
        .await
        .expect("partitions")
        .iter()
        .map(|h| h.partition.to_string())
        .collect();
    assert!(names.contains(&"durable".to_owned()) && names.contains(&"other".to_owned()));
}

fn payloads_of(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A tail from an offset replays what is stored, then delivers new appends, with no gap and
/// no duplicate at the seam.
pub async fn tail_replays_then_follows_live_appends<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("tail");
    log.append(&part, records("old", 1500))
        .await
        .expect("append");
    let mut tail = log.tail(&part, Offset(500));
    let writer = {
        let (log, part) = (Arc::clone(&log), part.clone());
        tokio::spawn(async move {
            for i in 0..50 {
                log.append(&part, vec![NewRecord::new(format!("new-{i}"))])
                    .await
                    .expect("append");
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 1050 {
        let record = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("tail delivers within the deadline")
            .expect("tail does not end")
            .expect("tail record");
        seen.push(record);
    }
    writer.await.expect("writer");
    for (i, record) in seen.iter().enumerate() {
        assert_eq!(
            record.offset,
            Offset(500 + i as u64),
            "offset order, no gap, no duplicate"
        );
    }
    assert_eq!(
        payloads(&seen[..1000]),
        payloads_of("old", 1500)[500..].to_vec()
    );
    assert_eq!(payloads(&seen[1000..]), payloads_of("new", 50));
}

/// Tailing a partition before its first append waits for it.
pub async fn tail_waits_for_a_partition_that_does_not_exist_yet<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("later");
    let mut tail = log.tail(&part, Offset(0));
    log.append(&part, records("first", 2))
        .await
        .expect("append");
    for want in 0..2 {
        let record = tokio::time::timeout(PATIENCE, tail.next())
            .await
            .expect("tail delivers")
            .expect("tail does not end")
            .expect("record");
        assert_eq!(record.offset, Offset(want));
    }
}

/// `offset_at_time` finds the first record appended at or after a time.
pub async fn time_lookup_finds_the_first_record_at_or_after<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("times");
    let before_all = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    log.append(&part, records("early", 10))
        .await
        .expect("append");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = log
        .append(&part, records("late", 10))
        .await
        .expect("append");
    assert_eq!(
        log.offset_at_time(&part, before_all).await.expect("lookup"),
        Some(Offset(0))
    );
    assert_eq!(
        log.offset_at_time(&part, middle).await.expect("lookup"),
        Some(late.first)
    );
    assert_eq!(
        log.offset_at_time(&part, late.time).await.expect("lookup"),
        Some(late.first)
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        log.offset_at_time(&part, Timestamp::now())
            .await
            .expect("lookup"),
        None
    );
    let records = read_all(&log, &part).await;
    assert!(
        records.windows(2).all(|w| w[0].time <= w[1].time),
        "append times never decrease"
    );
}

/// Retention removes the oldest records by bytes and by age; offsets stay dense, other
/// partitions are untouched, and reads from a removed offset start at the first kept one.
pub async fn retention_removes_a_prefix_and_keeps_offsets_dense<H: Harness>(h: &H) {
    let (by_bytes, by_age, kept) = (p("by-bytes"), p("by-age"), p("kept"));
    let log = h
        .open(vec![
            (
                by_bytes.clone(),
                Retention {
                    max_age: None,
                    max_bytes: Some(2_000),
                },
            ),
            (
                by_age.clone(),
                Retention {
                    max_age: Some(Duration::from_millis(200)),
                    max_bytes: None,
                },
            ),
        ])
        .await
        .expect("open");
    for _ in 0..10 {
        log.append(&by_bytes, records("b", 10))
            .await
            .expect("append");
        log.append(&by_age, records("a", 10)).await.expect("append");
        log.append(&kept, records("k", 10)).await.expect("append");
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let bytes = log.head(&by_bytes).await.expect("head").expect("exists");
        let age = log.head(&by_age).await.expect("head").expect("exists");
        if bytes.bytes <= 2_000 && age.count() == 0 {
            assert!(bytes.first > Offset(0) && bytes.next == Offset(100));
            assert_eq!(age.next, Offset(100), "retention never rewinds offsets");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention did not apply: {bytes:?} {age:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = log.head(&by_bytes).await.expect("head").expect("exists");
    let rest = log
        .read(&by_bytes, Offset(0), usize::MAX)
        .await
        .expect("read");
    assert_eq!(
        rest.first().map(|r| r.offset),
        Some(head.first),
        "reads start at the first kept"
    );
    assert!(
        rest.windows(2).all(|w| w[1].offset == w[0].offset.next()),
        "dense after retention"
    );
    assert_eq!(rest.last().map(|r| r.offset), Some(Offset(99)));
    assert_eq!(
        log.head(&kept)
            .await
            .expect("head")
            .expect("exists")
            .count(),
        100
    );
    let ack = log
        .append(&by_age, records("again", 1))
        .await
        .expect("append");
    assert_eq!(ack.first, Offset(100));
}

/// 64 appenders at once: every acknowledged offset is unique, together they are dense, and
/// each holds what its appender sent.
pub async fn many_concurrent_appenders_get_unique_dense_offsets<H: Harness>(h: &H) {
    let log = Arc::new(h.open(vec![]).await.expect("open"));
    let part = p("concurrent");
    let mut tasks = Vec::new();
    for t in 0..64 {
        let (log, part) = (Arc::clone(&log), part.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..50 {
                let payload = format!("{t}/{i}");
                let ack = log
                    .append(&part, vec![NewRecord::new(payload.clone())])
                    .await
                    .expect("append");
                mine.push((ack.first, payload));
            }
            mine
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("task"));
    }
    let stored = read_all(&*log, &part).await;
    assert_eq!(stored.len(), 64 * 50);
    let unique: HashSet<Offset> = acked.iter().map(|(o, _)| *o).collect();
    assert_eq!(unique.len(), acked.len(), "no offset acknowledged twice");
    for (offset, payload) in acked {
        assert_eq!(
            stored[offset.0 as usize].payload,
            payload.as_bytes(),
            "record at {offset}"
        );
    }
}

/// Heads report first/next offsets, counts, bytes and the last append time.
pub async fn heads_report_counts_bytes_and_times<H: Harness>(h: &H) {
    let log = h.open(vec![]).await.expect("open");
    let part = p("heads");
    assert!(
        log.head(&part).await.expect("head").is_none(),
        "unknown partition has no head"
    );
    let ack = log.append(&part, records("h", 7)).await.expect("append");
    let head = log.head(&part).await.expect("head").expect("exists");
    assert_eq!(
        (head.first, head.next, head.count(), head.last()),
        (Offset(0), Offset(7), 7, Some(Offset(6)))
    );
    assert!(head.bytes >= 7 * 3, "bytes count at least the payloads");
    assert_eq!(head.last_append, Some(ack.time));
    let listed = log.partitions().await.expect("partitions");
    assert!(listed.iter().any(|h| h.partition == part && h.count() == 7));
}
