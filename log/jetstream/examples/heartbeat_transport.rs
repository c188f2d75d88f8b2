//! Measures the two ways nodes could share heartbeats, on a fresh three-server loopback
//! cluster (`testing::Cluster`, `sync_interval: always`): core NATS publish/subscribe (what
//! `HeartbeatBus` does) and puts into an R3 KV bucket whose `max_age` is the lease TTL,
//! watched by the other node. The sender is connected to one server, the receiver to
//! another, so every heartbeat crosses a route.
//!
//! ```text
//! cargo run --release -p draft-log-jetstream --example heartbeat_transport [N]
//! ```

use std::time::Duration;

use async_nats::jetstream::kv;
use draft_log_jetstream::testing::Cluster;
use draft_log_jetstream::{Heartbeat, HeartbeatBus};
use futures::StreamExt;
use tokio::time::Instant;

/// Round trips measured for latency.
const ROUND_TRIPS: usize = 1000;
/// KV puts in flight at once in the throughput run.
const IN_FLIGHT: usize = 256;
/// Distinct instances the heartbeats cycle through (KV keys).
const INSTANCES: usize = 1000;

fn heartbeat(i: usize) -> Heartbeat {
    Heartbeat {
        service: "orders".into(),
        instance: format!("orders-{}", i % INSTANCES),
        ttl: Duration::from_secs(30),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |per_mille: usize| samples[(samples.len() - 1) * per_mille / 1000];
    format!(
        "p50 {:?}, p99 {:?}, max {:?}",
        at(500),
        at(990),
        samples[samples.len() - 1]
    )
}

fn rate(n: usize, took: Duration) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX)) / took.as_secs_f64()
}

async fn core_nats(urls: &[String], n: usize) {
    let a = HeartbeatBus::new(async_nats::connect(&urls[0]).await.expect("connect"), "a");
    let client_b = async_nats::connect(&urls[1]).await.expect("connect");
    let b = HeartbeatBus::new(client_b, "b");
    let mut at_b = b.subscribe(1 << 16).await.expect("subscribe");
    // Interest crosses the route shortly after the subscription: wait for a probe.
    loop {
        a.publish(&heartbeat(0)).await.expect("publish");
        if tokio::time::timeout(Duration::from_millis(100), at_b.next())
            .await
            .is_ok()
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    while futures::FutureExt::now_or_never(at_b.next()).is_some() {}

    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let sent = Instant::now();
        a.publish(&heartbeat(i)).await.expect("publish");
        at_b.next().await.expect("a heartbeat");
        samples.push(sent.elapsed());
    }
    println!("core NATS  latency a -> b: {}", percentiles(samples));

    let receiver = tokio::spawn(async move {
        let mut received = 0;
        let mut last = Instant::now();
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(2), at_b.next()).await {
            received += 1;
            last = Instant::now();
            if received == n {
                break;
            }
        }
        (received, last, at_b.dropped())
    });
    let start = Instant::now();
    for i in 0..n {
        a.publish(&heartbeat(i)).await.expect("publish");
    }
    let published = start.elapsed();
    let (got, last, dropped) = receiver.await.expect("the receiver");
    println!(
        "core NATS  throughput: {n} published in {published:?} ({:.0}/s); {got} received \
         in {:?} ({:.0}/s), {dropped} dropped by the reader",
        rate(n, published),
        last - start,
        rate(got, last - start),
    );
}

async fn kv_bucket(urls: &[String], n: usize) {
    let a = async_nats::jetstream::new(async_nats::connect(&urls[0]).await.expect("connect"));
    let b = async_nats::jetstream::new(async_nats::connect(&urls[1]).await.expect("connect"));
    let put = a
        .create_key_value(kv::Config {
            bucket: "draft_heartbeats".into(),
            history: 1,
            max_age: Duration::from_secs(30),
            num_replicas: 3,
            ..kv::Config::default()
        })
        .await
        .expect("the bucket");
    let watched = b.get_key_value("draft_heartbeats").await.expect("bind");
    let mut watch = watched.watch_all().await.expect("watch");
    let body = |i: usize| {
        let hb = heartbeat(i);
        (
            format!("{}.{}", hb.service, hb.instance),
            serde_json::to_vec(&serde_json::json!({"node": "a", "ttl_ms": 30_000}))
                .expect("encodes"),
        )
    };
    // The first put may wait for the new stream's leader and interest: retry it.
    loop {
        let (key, value) = body(0);
        if put.put(key, value.into()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watch
        .next()
        .await
        .expect("the first entry")
        .expect("an entry");

    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let (key, value) = body(i);
        let sent = Instant::now();
        put.put(key, value.into()).await.expect("put");
        watch.next().await.expect("an entry").expect("an entry");
        samples.push(sent.elapsed());
    }
    println!(
        "KV R3      latency a -> b (put acked, then watched): {}",
        percentiles(samples)
    );

    let receiver = tokio::spawn(async move {
        let mut received = 0;
        let mut last = Instant::now();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), watch.next()).await
        {
            received += 1;
            last = Instant::now();
            if received == n {
                break;
            }
        }
        (received, last)
    });
    let start = Instant::now();
    let acked = futures::stream::iter(0..n)
        .map(|i| {
            let (key, value) = body(i);
            let put = &put;
            async move { put.put(key, value.into()).await.is_ok() }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let published = start.elapsed();
    let (got, last) = receiver.await.expect("the receiver");
    println!(
        "KV R3      throughput ({IN_FLIGHT} puts in flight): {acked}/{n} acked in {published:?} \
         ({:.0}/s); {got} watched in {:?} ({:.0}/s)",
        rate(acked, published),
        last - start,
        rate(got, last - start),
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("N: a number of heartbeats"));
    let cluster = Cluster::start();
    let urls = cluster.urls();
    core_nats(&urls, n).await;
    kv_bucket(&urls, (n / 10).max(1000)).await;
}
