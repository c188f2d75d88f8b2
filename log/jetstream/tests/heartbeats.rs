//! Heartbeats shared between two nodes connected to different servers of a real cluster.

use std::time::Duration;

use draft_log_jetstream::testing::Cluster;
use draft_log_jetstream::{
    HEARTBEAT_SUBJECT, Heartbeat, HeartbeatBus, Heartbeats, SharedHeartbeat,
};
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

const WITHIN: Duration = Duration::from_secs(10);
/// How long a drop count that stopped moving is taken as final.
const SETTLED: Duration = Duration::from_secs(2);

fn heartbeat(instance: &str) -> Heartbeat {
    Heartbeat {
        service: "orders".into(),
        instance: instance.into(),
        ttl: Duration::from_secs(30),
    }
}

async fn bus(url: &str, node: &str) -> HeartbeatBus {
    let client = async_nats::connect(url).await.expect("connect");
    HeartbeatBus::new(client, node)
}

async fn next(heartbeats: &mut Heartbeats) -> SharedHeartbeat {
    tokio::time::timeout(WITHIN, heartbeats.next())
        .await
        .expect("a heartbeat in time")
        .expect("the stream goes on")
}

/// Publishes probes from `from` until `to` receives one: interest in the subject crosses
/// the cluster's routes a little after the subscription is made.
async fn until_connected(from: &HeartbeatBus, to: &mut Heartbeats) {
    let deadline = Instant::now() + WITHIN;
    loop {
        from.publish(&heartbeat("probe")).await.expect("publish");
        let got = tokio::time::timeout(Duration::from_millis(100), to.next()).await;
        if let Ok(Some(shared)) = got {
            assert_eq!(shared.node, from.node());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat crossed within {WITHIN:?}"
        );
    }
    // Drain the probes still on their way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while to.next().now_or_never().flatten().is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_cross_nodes_skip_their_sender_and_survive_garbage() {
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let (a, b) = (bus(&urls[0], "a").await, bus(&urls[1], "b").await);
    let mut at_a = a.subscribe(64).await.expect("subscribe a");
    let mut at_b = b.subscribe(64).await.expect("subscribe b");
    until_connected(&a, &mut at_b).await;
    until_connected(&b, &mut at_a).await;

    // Garbage on the subject, then a heartbeat: b skips the one and gets the other.
    let raw = async_nats::connect(&urls[0]).await.expect("connect");
    for garbage in [
        &b"not json"[..],
        b"{}",
        br#"{"service":"s","instance":"i","node":"x","ttl_ms":0}"#,
    ] {
        raw.publish(HEARTBEAT_SUBJECT, garbage.to_vec().into())
            .await
            .expect("publish garbage");
    }
    raw.flush().await.expect("flush");
    a.publish(&heartbeat("orders-1")).await.expect("publish");
    let got = next(&mut at_b).await;
    assert_eq!(
        got,
        SharedHeartbeat {
            node: "a".into(),
            heartbeat: heartbeat("orders-1"),
        }
    );
    // The raw client's messages may arrive after a's (two connections): wait for the count.
    let deadline = Instant::now() + WITHIN;
    while at_b.malformed() < 3 {
        assert!(Instant::now() < deadline, "malformed: {}", at_b.malformed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(at_b.malformed(), 3);
    // a's own heartbeats never reached a's stream; b's does.
    b.publish(&heartbeat("orders-2")).await.expect("publish");
    let got = next(&mut at_a).await;
    assert_eq!(
        (got.node.as_str(), got.heartbeat),
        ("b", heartbeat("orders-2"))
    );
    assert!(
        at_a.next().now_or_never().is_none(),
        "a received its own heartbeat"
    );
    assert_eq!(at_b.dropped() + at_a.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_loses_heartbeats_rather_than_queueing_them() {
    const SENT: u64 = 200;
    const CAPACITY: usize = 4;
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let a = bus(&urls[0], "a").await;
    let client_b = async_nats::connect(&urls[1]).await.expect("connect");
    let b = HeartbeatBus::new(client_b.clone(), "b");
    let mut probe = b.subscribe(64).await.expect("subscribe");
    until_connected(&a, &mut probe).await;
    let mut slow = b.subscribe(CAPACITY).await.expect("subscribe");
    // The server already routes the subject to b: once it has the new subscription (the
    // flush), that gets the next message too.
    client_b.flush().await.expect("flush");
    for i in 0..SENT {
        a.publish(&heartbeat(&format!("i-{i}")))
            .await
            .expect("publish");
    }
    // Every heartbeat that reaches the relay is kept or counted as dropped. Under load the
    // client's own buffer may lose some before that (not counted, as the module says): wait
    // until all are counted, or the count has not moved for a while.
    let deadline = Instant::now() + WITHIN;
    let (mut last, mut still_since) = (0, Instant::now());
    while slow.dropped() < SENT - CAPACITY as u64 {
        let dropped = slow.dropped();
        if dropped != last {
            (last, still_since) = (dropped, Instant::now());
        } else if dropped > 0 && still_since.elapsed() > SETTLED {
            break;
        }
        assert!(Instant::now() < deadline, "dropped only {dropped}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kept = Vec::new();
    while let Some(Some(shared)) = slow.next().now_or_never() {
        let n: u64 = shared.heartbeat.instance["i-".len()..]
            .parse()
            .expect("a number");
        kept.push(n);
    }
    assert_eq!(
        kept.len(),
        CAPACITY,
        "the reader holds its capacity, no more: {kept:?}"
    );
    assert!(kept.is_sorted(), "kept in the order sent: {kept:?}");
    let dropped = slow.dropped();
    assert!(
        dropped >= SENT / 2 && dropped + kept.len() as u64 <= SENT,
        "the rest is dropped, not queued: {dropped}"
    );
    if dropped == SENT - CAPACITY as u64 {
        assert_eq!(
            kept,
            [0, 1, 2, 3],
            "with nothing lost before, the oldest are kept"
        );
    }
}
