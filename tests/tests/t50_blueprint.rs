//! Blueprint against a real node: a watch resumed from a revision misses nothing; kill -9
//! during KV writes keeps every acknowledged write at its revision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draft_tests::Node;
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn watch(node: &Node, query: &str) -> Socket {
    let url = format!("{}/v1/watch?{query}", node.url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("watch")
        .0
}

/// The next JSON message, failing after 10 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("message within 10 s")
            .expect("open")
            .expect("message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

async fn put(client: &reqwest::Client, node: &Node, key: &str, value: &str) -> u64 {
    let r = client
        .put(format!("{}/v1/kv/{key}", node.url))
        .body(value.to_owned())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.expect("json")["revision"]
        .as_u64()
        .expect("revision")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_from_a_revision_misses_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    put(&client, &node, "cfg/a", "1").await;
    put(&client, &node, "other/x", "1").await;

    let mut w = watch(&node, "prefix=cfg/").await;
    let state = next(&mut w).await;
    assert_eq!(
        (state["kind"].as_str(), state["key"].as_str()),
        (Some("put"), Some("cfg/a"))
    );
    let marker = next(&mut w).await;
    assert_eq!(
        (marker["kind"].as_str(), marker["revision"].as_u64()),
        (Some("caught-up"), Some(1))
    );
    let r2 = put(&client, &node, "cfg/b", "2").await;
    let live = next(&mut w).await;
    assert_eq!(
        (live["key"].as_str(), live["revision"].as_u64()),
        (Some("cfg/b"), Some(r2))
    );
    drop(w); // the client goes away...

    let mut missed = Vec::new();
    for i in 0..20 {
        missed.push(put(&client, &node, &format!("cfg/k{i}"), "v").await);
        put(&client, &node, "other/y", "ignored").await;
    }
    // ...and resumes from the last revision it saw.
    let mut w = watch(&node, &format!("prefix=cfg/&from={r2}")).await;
    let mut got = Vec::new();
    loop {
        let m = next(&mut w).await;
        if m["kind"] == "caught-up" {
            break;
        }
        assert!(
            m["key"].as_str().is_some_and(|k| k.starts_with("cfg/")),
            "prefix filter: {m}"
        );
        got.push(m["revision"].as_u64().expect("revision"));
    }
    assert_eq!(
        got, missed,
        "every change after {r2}, in order, nothing else"
    );
    let r = put(&client, &node, "cfg/live", "v").await;
    assert_eq!(
        next(&mut w).await["revision"].as_u64(),
        Some(r),
        "then live"
    );

    // An empty prefix with nothing under it still gets the marker.
    let mut w = watch(&node, "prefix=nothing/").await;
    assert_eq!(next(&mut w).await["kind"], "caught-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_kv_writes_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), &[]);
    let acked: Arc<Mutex<HashMap<u64, (String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, acked) = (node.url.clone(), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let (key, value) = (format!("w{w}/k{}", i % 5), format!("{w}-{i}"));
                let Ok(r) = client
                    .put(format!("{url}/v1/kv/{key}"))
                    .body(value.clone())
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                let Some(revision) = body["revision"].as_u64() else {
                    return;
                };
                acked.lock().expect("acks").insert(revision, (key, value));
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("acks").len() < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill9();
    for w in writers {
        w.await.expect("writer");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acks"));

    let node = Node::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for (revision, (key, value)) in &acked {
        let r = client
            .get(format!("{}/v1/kv/{key}?at={revision}", node.url))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{key} at {revision}");
        assert_eq!(
            r.text().await.expect("body"),
            *value,
            "{key} as of revision {revision}"
        );
    }
}
