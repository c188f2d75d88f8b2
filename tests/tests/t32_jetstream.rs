//! A node on a real three-server JetStream cluster (R3 streams, `sync_interval: always`):
//! produce over HTTP (one event and a batch), consume over a WebSocket, KV put and get;
//! then restart the node and read it all back from the cluster.

use std::time::Duration;

use draft_catalyst::client::{Client, ReadOptions};
use draft_log_jetstream::testing::Cluster;
use draft_tests::{Node, event, post, stored};
use futures::StreamExt;
use serde_json::Value;

fn start(dir: &std::path::Path, cluster: &Cluster) -> Node {
    Node::start_on_jetstream(dir, &cluster.urls(), &[])
}

async fn kv_get(node: &Node, key: &str) -> (u16, String) {
    let r = reqwest::get(format!("{}/v1/kv/{key}", node.url))
        .await
        .expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_jetstream_keeps_events_and_kv_across_a_restart() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("dir");
    let mut node = start(dir.path(), &cluster);
    let status: Value = reqwest::get(format!("{}/v1/status", node.url))
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON");
    assert_eq!(status["backend"]["kind"], "jetstream", "{status}");
    assert_eq!(status["backend"]["replicas"], 3, "{status}");
    assert_eq!(
        status["backend"]["servers"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );

    let (status, body) = post(
        &node,
        "orders",
        "application/cloudevents+json",
        event("one", "t").to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["offsets"], serde_json::json!([0]));
    let batch = Value::Array((0..5).map(|i| event(&format!("b{i}"), "t")).collect());
    let (status, body) = post(
        &node,
        "orders",
        "application/cloudevents-batch+json",
        batch.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["offsets"], serde_json::json!([1, 2, 3, 4, 5]));
    // A duplicate (same source and id) is answered 200 with its first offset.
    let (status, body) = post(
        &node,
        "orders",
        "application/cloudevents+json",
        event("one", "t").to_string(),
    )
    .await;
    assert_eq!((status, &body["offsets"]), (200, &serde_json::json!([0])));

    // A consumer replays what is stored, then gets a live event.
    let client = Client::new(&node.url);
    let options = ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    let mut consumer = client.consume("orders", &options).await.expect("consume");
    let (status, _) = post(
        &node,
        "orders",
        "application/cloudevents+json",
        event("live", "t").to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let mut ids = Vec::new();
    while ids.len() < 7 {
        let text = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("an event within 20 s")
            .expect("the consumer stays open")
            .expect("an event");
        let event: Value = serde_json::from_str(&text).expect("JSON");
        ids.push(event["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids, ["one", "b0", "b1", "b2", "b3", "b4", "live"]);

    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}/v1/kv/cfg/a", node.url))
        .body("42")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(kv_get(&node, "cfg/a").await, (200, "42".to_owned()));

    node.terminate();
    let node = start(dir.path(), &cluster);
    let events = stored(&node, "orders").await;
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, ["one", "b0", "b1", "b2", "b3", "b4", "live"]);
    assert_eq!(kv_get(&node, "cfg/a").await, (200, "42".to_owned()));
}

/// A batch over JetStream's atomic batch limit (1,000 events) is refused whole with 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_atomic_limit_is_413_and_stores_nothing() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("dir");
    let node = start(dir.path(), &cluster);
    let batch = Value::Array((0..1001).map(|i| event(&format!("e{i}"), "t")).collect());
    let (status, body) = post(
        &node,
        "big",
        "application/cloudevents-batch+json",
        batch.to_string(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );
    assert!(stored(&node, "big").await.is_empty());
}
