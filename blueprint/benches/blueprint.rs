//! Benchmarks of Blueprint's core (no HTTP): durable KV puts from 64 concurrent writers, a
//! read `?at=` a revision 1,000,000 changes back, and a restart with 1,000,000 control events.
//! HTTP figures (KV put and get through the node) are measured with `wrk`; see BENCHMARKS.md.
//!
//! `cargo bench -p draft-blueprint --bench blueprint` (`DRAFT_BENCH_QUICK=1`: 100,000 events).

// A benchmark measures with the standard clock (`clippy.toml` bans it in async code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
// Figures for humans: float conversions of counts cannot matter here.
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use draft_blueprint::{
    Blueprint, BlueprintConfig, Condition, InstanceId, Key, Revision, ServiceName,
};
use draft_log::{Log, LogConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn open(dir: &std::path::Path) -> (Log, Blueprint) {
    let path = dir.join("log");
    let log = tokio::task::spawn_blocking(move || Log::open(LogConfig::new(path)))
        .await
        .expect("task")
        .expect("log");
    let bp = Blueprint::open(
        Arc::new(log.clone()),
        BlueprintConfig::new("bench", dir.join("checkpoints")),
    )
    .await
    .expect("blueprint");
    (log, bp)
}

/// `total` puts of 200-byte values over 1,000 keys from 64 concurrent writers; returns puts/s.
async fn puts(bp: &Blueprint, total: u64) -> f64 {
    let started = Instant::now();
    let per_task = total / 64;
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let bp = bp.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    let key =
                        Key::parse(&format!("config/{}", (t * per_task + i) % 1000)).expect("key");
                    bp.put(&key, vec![b'v'; 200], Condition::None, "bench")
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    (per_task * 64) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::var_os("DRAFT_BENCH_QUICK").is_some();
    let total: u64 = if quick { 100_000 } else { 1_000_000 };
    let rt = runtime();
    let dir = tempfile::tempdir().expect("dir");
    let (log, bp) = rt.block_on(open(dir.path()));

    let warmup = rt.block_on(puts(&bp, 64_000));
    let rate = rt.block_on(puts(&bp, total - 64_000));
    println!(
        "report kv_put_64_writers: {rate:.0} puts/s durable (warm-up {warmup:.0}/s), {total} control events"
    );

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let current = bp.revision().expect("revision").get();
    let target = Revision::new(current - (total - 1).min(current));
    c.bench_function("state_at_1m_back", |b| {
        b.iter(|| rt.block_on(bp.state_at(Some(target))).expect("state"));
    });
    c.bench_function("state_at_recent", |b| {
        b.iter(|| {
            rt.block_on(bp.state_at(Some(Revision::new(current - 1))))
                .expect("state")
        });
    });
    c.final_summary();

    // Let the last checkpoint land, then restart: open the log and Blueprint until ready.
    std::thread::sleep(Duration::from_secs(2));
    drop((bp, log));
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (_log, bp) = rt.block_on(open(dir.path()));
    let ready = started.elapsed();
    println!(
        "report restart: {} control events, ready in {ready:?} (log open + newest checkpoint + replay of the tail)",
        bp.revision().map_or(0, |r| r.next().get())
    );
    rt.block_on(heartbeats(&bp, if quick { 10 } else { 30 }));
}

/// 10,000 instances with a 10 s lease, each heartbeating every 5 s (spread evenly, 2,000 a
/// second) for `secs` seconds: every lease must hold.
async fn heartbeats(bp: &Blueprint, secs: u64) {
    const INSTANCES: usize = 10_000;
    let registration = draft_blueprint::wire::Registration {
        address: "127.0.0.1:1".into(),
        routes: vec![],
        metadata: std::collections::BTreeMap::new(),
        ttl_ms: 10_000,
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let (bp, registration) = (bp.clone(), registration.clone());
            tokio::spawn(async move {
                for i in (t..INSTANCES).step_by(64) {
                    bp.register(&fleet(), &instance(i), registration.clone(), "bench")
                        .await
                        .expect("register");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("register");
    }
    let registered_in = started.elapsed();
    let first = bp.revision().expect("revision").get();
    // One ticker per 100 instances, offset so the 2,000 heartbeats a second are spread out.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tickers: Vec<_> = (0..INSTANCES / 100)
        .map(|g| {
            let bp = bp.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(g as u64 * 50)).await;
                let mut missed = 0u64;
                while Instant::now() < deadline {
                    for i in g * 100..(g + 1) * 100 {
                        missed +=
                            u64::from(!bp.heartbeat(&fleet(), &instance(i)).expect("writable"));
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                missed
            })
        })
        .collect();
    let mut missed = 0;
    for t in tickers {
        missed += t.await.expect("ticker");
    }
    let critical = bp.read(|p| {
        p.service("fleet").map_or(0, |s| {
            s.values()
                .filter(|i| i.health == draft_blueprint::wire::Health::Critical)
                .count()
        })
    });
    println!(
        "report heartbeats: {INSTANCES} instances registered in {registered_in:?}; {secs} s of heartbeats every 5 s: \
         {missed} refused, {critical} critical, {} control events appended meanwhile (expiries would show here)",
        bp.revision().expect("revision").get() - first
    );
}

/// The service the heartbeat benchmark registers.
fn fleet() -> ServiceName {
    ServiceName::parse("fleet").expect("service name")
}

/// Its `i`-th instance.
fn instance(i: usize) -> InstanceId {
    InstanceId::parse(&format!("i{i}")).expect("instance id")
}
