//! kill -9 the node while producers run (HTTP requests and pipelined WebSocket producers),
//! restart it, and find every acknowledged event at its offset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draft_catalyst::client::{Client, ProducerOptions};
use draft_tests::{Node, event, stored};
use futures::StreamExt;
use futures::stream::FuturesOrdered;

type Acked = Arc<Mutex<HashMap<u64, String>>>;

/// A WebSocket producer with up to 64 events in flight, until the node is gone.
async fn pipelined(url: String, p: usize, acked: Acked) {
    let options = ProducerOptions {
        max_in_flight: 64,
        reconnect_for: Duration::from_millis(500),
    };
    let Ok(producer) = Client::new(&url).producer("crash", options).await else {
        return;
    };
    let mut in_flight = FuturesOrdered::new();
    let mut next = 0u64;
    loop {
        while in_flight.len() < 64 {
            let id = format!("w{p}-{next}");
            next += 1;
            let ack = producer.send(event(&id, "t").to_string());
            in_flight.push_back(async move { (id, ack.await) });
        }
        match in_flight.next().await {
            Some((id, Ok(offset))) => {
                acked.lock().expect("acks").insert(offset, id);
            }
            _ => return, // the node is gone
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_kill_9() {
    kill_9_mid_stream(&[]).await;
}

/// In `buffered` mode a process crash loses nothing either: each commit reaches the OS (only
/// a power cut may lose up to the flush interval, here far longer than the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_mode_loses_nothing_acknowledged_to_kill_9() {
    kill_9_mid_stream(&["--durability", "buffered", "--flush-interval-ms", "60000"]).await;
}

/// Producers of both kinds run against a node started with `args`; kill -9 it mid-stream,
/// restart it, and find every acknowledged event at its offset.
async fn kill_9_mid_stream(args: &[&str]) {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), args);
    let acked: Acked = Arc::default();
    let mut producers = Vec::new();
    for p in 0..4 {
        let (url, acked) = (node.url.clone(), Arc::clone(&acked));
        producers.push(tokio::spawn(pipelined(url, p, acked)));
    }
    // Half the producers send one event at a time, half batches of 1 to 12 (several events
    // of one append are stored together: both layouts must survive).
    for p in 0..8 {
        let (url, acked) = (node.url.clone(), Arc::clone(&acked));
        producers.push(tokio::spawn(async move {
            let client = Client::new(&url);
            for i in 0.. {
                let ids: Vec<String> = if p % 2 == 0 {
                    vec![format!("p{p}-{i}")]
                } else {
                    (0..=(i % 12)).map(|j| format!("p{p}-{i}.{j}")).collect()
                };
                let result = if ids.len() == 1 {
                    client.produce("crash", &event(&ids[0], "t")).await
                } else {
                    let events: Vec<_> = ids.iter().map(|id| event(id, "t")).collect();
                    client.produce_batch("crash", &events).await
                };
                match result {
                    Ok(r) => {
                        assert_eq!(r.offsets.len(), ids.len());
                        acked
                            .lock()
                            .expect("acks")
                            .extend(r.offsets.into_iter().zip(ids));
                    }
                    Err(_) => return, // the node is gone
                }
            }
        }));
    }
    // Let the producers run, then kill -9 mid-stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("acks").len() < 3000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "producers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill9();
    for p in producers {
        p.await.expect("producer");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acks"));

    let node = Node::start(dir.path(), &[]);
    let stored = stored(&node, "crash").await;
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(
            e["draftoffset"].as_u64(),
            Some(i as u64),
            "dense offsets after restart"
        );
    }
    for (offset, id) in &acked {
        let e = stored
            .get(*offset as usize)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} lost"));
        assert_eq!(e["id"], id.as_str(), "event at {offset}");
    }
    assert!(acked.len() >= 3000);
    assert!(
        acked.values().any(|id| id.starts_with('w'))
            && acked.values().any(|id| id.starts_with('p')),
        "both kinds of producer were acknowledged"
    );
}
