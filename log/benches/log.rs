//! Benchmarks of draft-log, with raw fjall as the floor in the same run (see BENCHMARKS.md).
//!
//! `cargo bench -p draft-log --bench log` runs the criterion groups (throughput), then prints
//! the reports criterion cannot express: append latency percentiles under 64 appenders, reopen
//! time of a 10,000,000-record log, and the RSS of a process whose tail reader stopped reading.
//! Set `DRAFT_BENCH_QUICK=1` for smaller sizes, and `DRAFT_BENCH_REPORTS=latency,stalled` (or
//! `none`) to run only some of the reports.

// A benchmark measures with the standard clock (`clippy.toml` bans it in async code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
// Figures for humans: float conversions of counts and sizes cannot matter here.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use draft_log::{Log, LogConfig, NewRecord, Offset, PartitionName};
use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use futures::StreamExt;

const PAYLOAD: usize = 200;

fn payload() -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; PAYLOAD])
}

fn quick() -> bool {
    std::env::var_os("DRAFT_BENCH_QUICK").is_some()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt")
}

fn partition() -> PartitionName {
    PartitionName::new("bench").expect("name")
}

/// Raw fjall: the floor our log is measured against.
fn raw_fjall(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_fjall");
    g.sample_size(10);
    let dir = tempfile::tempdir().expect("dir");
    let db = Database::builder(dir.path()).open().expect("open");
    let ks = db
        .keyspace("raw", KeyspaceCreateOptions::default)
        .expect("keyspace");
    let value = vec![b'x'; PAYLOAD];
    let mut key = 0u64;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("batch_1000_syncall", |b| {
        b.iter(|| {
            let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
            for _ in 0..1000 {
                key += 1;
                batch.insert(&ks, key.to_be_bytes(), value.clone());
            }
            batch.commit().expect("commit");
        });
    });
    // The floor for 64 concurrent single-record appenders: one batch of 64 and one sync.
    g.throughput(Throughput::Elements(64));
    for (name, mode) in [
        ("batch_64_syncall", PersistMode::SyncAll),
        ("batch_64_syncdata", PersistMode::SyncData),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut batch = db.batch().durability(Some(mode));
                for _ in 0..64 {
                    key += 1;
                    batch.insert(&ks, key.to_be_bytes(), value.clone());
                }
                batch.commit().expect("commit");
            });
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("insert_then_fsync", |b| {
        b.iter(|| {
            key += 1;
            ks.insert(key.to_be_bytes(), value.clone()).expect("insert");
            db.persist(PersistMode::SyncAll).expect("fsync");
        });
    });
    g.bench_function("insert_then_fdatasync", |b| {
        b.iter(|| {
            key += 1;
            ks.insert(key.to_be_bytes(), value.clone()).expect("insert");
            db.persist(PersistMode::SyncData).expect("fdatasync");
        });
    });
    g.finish();
}

/// Appends `per_task` single records from each of `tasks` concurrent appenders, each keeping
/// up to `in_flight` appends unacknowledged (1: it waits for each before the next, as a
/// request handler does; more: a pipelining producer, like Kafka's `max.in.flight`); returns
/// the elapsed time and every append's latency.
fn concurrent_appends(
    rt: &tokio::runtime::Runtime,
    log: &Log,
    tasks: usize,
    per_task: usize,
    in_flight: usize,
) -> (Duration, Vec<Duration>) {
    use futures::StreamExt;
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move {
                    let part = partition();
                    // `buffered` polls (so sends) the appends in order and yields their
                    // acknowledgements in order.
                    futures::stream::iter(0..per_task)
                        .map(|_| {
                            let (log, part) = (&log, &part);
                            async move {
                                let t = Instant::now();
                                log.append(part, vec![NewRecord::new(payload())])
                                    .await
                                    .expect("append");
                                t.elapsed()
                            }
                        })
                        .buffered(in_flight)
                        .collect::<Vec<_>>()
                        .await
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.expect("task"));
        }
        (start.elapsed(), all)
    })
}

/// Durable appends through the log: 64 concurrent appenders, and one appender.
fn log_appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("log_append_durable");
    g.sample_size(10);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    for (tasks, in_flight) in [(64usize, 1usize), (64, 8), (1, 1)] {
        let per_task = if tasks == 1 { 1000 } else { 200 * in_flight };
        let id = if in_flight == 1 {
            tasks.to_string()
        } else {
            format!("{tasks}x{in_flight}_in_flight")
        };
        g.throughput(Throughput::Elements((tasks * per_task) as u64));
        g.bench_function(BenchmarkId::new("appenders", id), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| concurrent_appends(&rt, &log, tasks, per_task, in_flight).0)
                    .sum()
            });
        });
    }
    g.finish();
}

/// Writes `n` records in batches of 1,000 (fast setup for the read benchmarks).
fn fill(log: &Log, n: u64) {
    let part = partition();
    let mut written = 0;
    while written < n {
        let batch: Vec<_> = (0..1000.min(n - written))
            .map(|_| NewRecord::new(payload()))
            .collect();
        written += batch.len() as u64;
        log.append_blocking(&part, batch).expect("append");
    }
}

/// Replay (read and validate every record) of 1,000,000 records from a reopened log.
fn replay(c: &mut Criterion) {
    let n: u64 = if quick() { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().expect("dir");
    fill(&Log::open(LogConfig::new(dir.path())).expect("open"), n);
    let log = Log::open(LogConfig::new(dir.path())).expect("reopen");
    let rt = runtime();
    let mut g = c.benchmark_group("log_replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("read_range", |b| {
        b.iter(|| {
            let mut from = Offset(0);
            let mut count = 0u64;
            loop {
                let chunk = log.read(&partition(), from, 10_000).expect("read");
                let Some(last) = chunk.last() else { break };
                from = last.offset.next();
                count += chunk.len() as u64;
            }
            assert_eq!(count, n);
        });
    });
    g.bench_function("tail_stream", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tail = log.tail(&partition(), Offset(0));
                for _ in 0..n {
                    tail.next().await.expect("endless").expect("record");
                }
            });
        });
    });
    g.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Latency percentiles of durable appends under 64 appenders.
fn latency_report() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    concurrent_appends(&rt, &log, 64, 100, 1); // warm up
    for in_flight in [1, 8] {
        let (elapsed, mut latencies) = concurrent_appends(&rt, &log, 64, 2000, in_flight);
        latencies.sort();
        let rate = latencies.len() as f64 / elapsed.as_secs_f64();
        println!(
            "report append_latency_64_appenders ({in_flight} in flight each): {} appends, \
             {:.0} rec/s, p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            rate,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );
    }
}

/// Environment variable: fill the log in this directory, then exit without closing it.
const FILL_DIR: &str = "DRAFT_BENCH_FILL_DIR";

/// Time to reopen a log of 10,000,000 records until it is ready to serve, after a crash (the
/// writer process exits without closing, so fjall replays its journal) and after a clean close.
fn reopen_report() {
    let n: u64 = if quick() { 1_000_000 } else { 10_000_000 };
    let dir = tempfile::tempdir().expect("dir");
    let started = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().expect("bench binary"))
        .env(FILL_DIR, dir.path())
        .env("DRAFT_BENCH_FILL_COUNT", n.to_string())
        .status()
        .expect("run the filler");
    assert!(status.success(), "filler failed");
    let fill_time = started.elapsed();
    for attempt in ["after a crash", "after a clean close"] {
        let t = Instant::now();
        let log = Log::open(LogConfig::new(dir.path())).expect("reopen");
        let ready = t.elapsed();
        let head = log.head(&partition()).expect("head");
        println!(
            "report reopen ({attempt}): {} records ready in {ready:?} (filled in {fill_time:?})",
            head.count()
        );
    }
}

/// The filler's body: append `DRAFT_BENCH_FILL_COUNT` records, then exit without closing.
fn fill_and_crash(dir: &str) -> ! {
    let n = std::env::var("DRAFT_BENCH_FILL_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let log = Log::open(LogConfig::new(dir)).expect("open");
    fill(&log, n);
    std::process::exit(0);
}

/// RSS of a process whose tail reader stopped reading: 1,000,000 records are appended first so
/// that fjall's memtables and block cache reach their steady size, then RSS is taken, then
/// another 1,000,000 are appended while the stalled tail still exists. Flat RSS between the two
/// readings means the stalled tail holds nothing.
fn stalled_tail_report() {
    let n: u64 = if quick() { 100_000 } else { 1_000_000 };
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    let log2 = log.clone();
    let stalled = rt.block_on(async move {
        let mut tail = log2.tail(&partition(), Offset(0));
        log2.append(&partition(), vec![NewRecord::new(payload())])
            .await
            .expect("append");
        tail.next().await.expect("endless").expect("first record");
        tail // kept, never polled again
    });
    let start = rss_kib();
    fill(&log, n);
    let before = rss_kib();
    fill(&log, n);
    let after = rss_kib();
    println!(
        "report stalled_tail_memory: RSS {start} KiB at start, {before} KiB after {n} appends \
         (steady state), {after} KiB after {n} more with the tail stalled (delta {} KiB; fjall \
         memtables and block cache included)",
        after as i64 - before as i64
    );
    drop(stalled);
}

fn main() {
    if let Ok(dir) = std::env::var(FILL_DIR) {
        fill_and_crash(&dir);
    }
    let mut c = Criterion::default().configure_from_args();
    raw_fjall(&mut c);
    log_appends(&mut c);
    replay(&mut c);
    c.final_summary();
    if report_wanted("latency") {
        latency_report();
    }
    if report_wanted("reopen") {
        reopen_report();
    }
    if report_wanted("stalled") {
        stalled_tail_report();
    }
}

/// Whether to run a custom report: all of them unless `DRAFT_BENCH_REPORTS` lists some
/// (comma-separated: `latency`, `reopen`, `stalled`; `none` for none).
fn report_wanted(name: &str) -> bool {
    std::env::var("DRAFT_BENCH_REPORTS").map_or(true, |list| list.split(',').any(|r| r == name))
}
