//! Produce over a WebSocket (`GET /v1/channels/{channel}/produce`) against a real node:
//! pipelined frames acknowledged in order with dense offsets, error acknowledgements that
//! keep the connection, atomic batch frames, the window's backpressure (the node stops
//! reading and its memory stays flat), duplicates answered with their first offsets after a
//! reconnect, the client's producer surviving a node restart, and a drain at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use draft_catalyst::client::{Client, ProducerOptions};
use draft_tests::{Node, count, event, free_port, stored};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(node: &Node, channel: &str) -> Socket {
    let url = format!(
        "{}/v1/channels/{channel}/produce",
        node.url.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "cloudevents.json".parse().expect("header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "cloudevents.json"
    );
    socket
}

/// The next acknowledgement (skipping pings), failing after 20 s or on a close.
async fn next_ack(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("an acknowledgement within 20 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON ack"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}

fn error_code(ack: &Value) -> &str {
    ack["error"]["code"].as_str().unwrap_or("(no error)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_frames_are_acknowledged_in_order_with_dense_offsets() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let mut socket = open(&node, "p").await;
    let n = 2000u64;
    // Every frame goes out before any acknowledgement is read: more than the window.
    for i in 0..n {
        socket
            .feed(text(&event(&format!("e{i}"), "t")))
            .await
            .expect("feed");
    }
    socket.flush().await.expect("flush");
    for i in 0..n {
        let ack = next_ack(&mut socket).await;
        assert_eq!(ack["seq"], i, "in frame order: {ack}");
        assert_eq!(
            ack["offsets"],
            serde_json::json!([i]),
            "one connection's frames are stored in order, densely"
        );
    }
    let events = stored(&node, "p").await;
    assert_eq!(events.len() as u64, n);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["draftoffset"], i as u64);
        assert_eq!(e["id"], format!("e{i}"), "the event acknowledged at {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_acks_and_the_connection_stays_open() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let mut socket = open(&node, "bad").await;
    let huge = serde_json::json!({"specversion": "1.0", "id": "big", "source": "/t",
        "type": "t", "data": "x".repeat(1024 * 1024 + 1)});
    let half_bad = serde_json::json!([event("h1", "t"), {"specversion": "1.0", "id": "h2"}]);
    let frames = [
        text(&event("g0", "t")),
        text(&serde_json::json!({"specversion": "1.0", "id": "no-source", "type": "t"})),
        Message::Text("not json".into()),
        Message::Binary(b"\x00\x01".to_vec().into()),
        text(&huge),
        text(&half_bad),
        text(&event("g1", "t")),
    ];
    for frame in frames {
        socket.send(frame).await.expect("send");
    }
    let acks: Vec<Value> = {
        let mut acks = Vec::new();
        for _ in 0..7 {
            acks.push(next_ack(&mut socket).await);
        }
        acks
    };
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack["seq"], i as u64, "{ack}");
    }
    assert_eq!(acks[0]["offsets"], serde_json::json!([0]));
    assert_eq!(error_code(&acks[1]), "invalid_event", "{}", acks[1]);
    assert!(
        acks[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("source")),
        "names the attribute: {}",
        acks[1]
    );
    assert_eq!(error_code(&acks[2]), "invalid_event", "{}", acks[2]);
    assert_eq!(
        error_code(&acks[3]),
        "unsupported_media_type",
        "{}",
        acks[3]
    );
    assert_eq!(error_code(&acks[4]), "too_large", "{}", acks[4]);
    assert_eq!(error_code(&acks[5]), "invalid_event", "{}", acks[5]);
    assert_eq!(acks[6]["offsets"], serde_json::json!([1]), "still open");
    assert_eq!(count(&node, "bad").await, 2, "nothing of a refused frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_is_checked_before_the_upgrade() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    for (path, code) in [
        ("/v1/channels/_draft/produce", "invalid_channel"),
        ("/v1/channels/Bad!/produce", "invalid_channel"),
        ("/v1/channels/ok/produce", "websocket_required"),
    ] {
        let response = http
            .get(format!("{}{path}", node.url))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    let refused = Client::new(&node.url)
        .producer("_draft", ProducerOptions::default())
        .await
        .expect_err("a reserved channel");
    assert!(
        matches!(&refused, draft_catalyst::client::ClientError::Api { status: 400, code, .. } if code == "invalid_channel"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_frames_are_atomic_among_concurrent_producers() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let mut batches = open(&node, "b").await;
    let mut singles = open(&node, "b").await;
    let rounds = 40;
    for r in 0..rounds {
        let batch: Vec<Value> = (0..25).map(|j| event(&format!("b{r}.{j}"), "t")).collect();
        batches
            .feed(text(&Value::Array(batch)))
            .await
            .expect("feed");
        singles
            .feed(text(&event(&format!("s{r}"), "t")))
            .await
            .expect("feed");
    }
    batches.flush().await.expect("flush");
    singles.flush().await.expect("flush");
    for r in 0..rounds {
        let ack = next_ack(&mut batches).await;
        let offsets: Vec<u64> = serde_json::from_value(ack["offsets"].clone()).expect("offsets");
        assert_eq!(offsets.len(), 25);
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "batch {r} is stored contiguously: {offsets:?}"
        );
        next_ack(&mut singles).await;
    }
    assert_eq!(count(&node, "b").await, 40 * 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_never_reads_is_stopped_and_the_node_stays_small() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    // One batch of 10,000 events (about 1 MiB), sent again and again: every repeat is answered
    // from the duplicate window with 10,000 offsets (nothing more is stored), and the client
    // reads none of those answers. Only the window can stop the node from reading the 1 GiB.
    let batch: Vec<Value> = (0..10_000)
        .map(|j| {
            serde_json::json!({"specversion": "1.0", "id": format!("r{j}"), "source": "/rss",
                "type": "t", "data": "0123456789abcdef0123"})
        })
        .collect();
    let frame: tokio_tungstenite::tungstenite::Utf8Bytes = Value::Array(batch).to_string().into();
    let attempts = (1 << 30) / frame.len();
    let mut socket = open(&node, "rss").await;
    let rss_before = node.rss_kib();
    let mut sent = 0usize;
    let mut blocked = false;
    for _ in 0..attempts {
        let sending = socket.send(Message::Text(frame.clone()));
        match tokio::time::timeout(Duration::from_secs(3), sending).await {
            Ok(Ok(())) => sent += frame.len(),
            Ok(Err(e)) => panic!("the node closed the producer: {e}"),
            Err(_) => {
                blocked = true;
                break;
            }
        }
    }
    assert!(
        blocked,
        "the node read all {attempts} frames ({sent} bytes) though no answer was read"
    );
    let rss_after = node.rss_kib();
    assert!(
        rss_after.saturating_sub(rss_before) < 100 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB while the client sent {} MiB",
        sent >> 20
    );
    assert!(sent < 512 << 20, "stopped early: {} MiB", sent >> 20);
    drop(socket);
    assert_eq!(count(&node, "rss").await, 10_000, "stored once");
    let health = reqwest::get(format!("{}/healthz", node.url))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_again_on_a_new_connection_get_their_first_offsets() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let frames: Vec<Message> = (0..100)
        .map(|i| text(&event(&format!("d{i}"), "t")))
        .collect();
    let mut first = Vec::new();
    for round in 0..2 {
        let mut socket = open(&node, "dup").await;
        for frame in &frames {
            socket.feed(frame.clone()).await.expect("feed");
        }
        socket.flush().await.expect("flush");
        let mut offsets = Vec::new();
        for _ in 0..frames.len() {
            offsets.push(next_ack(&mut socket).await["offsets"].clone());
        }
        if round == 0 {
            first = offsets;
        } else {
            assert_eq!(offsets, first, "the same offsets again");
        }
        socket.close(None).await.expect("close");
    }
    assert_eq!(count(&node, "dup").await, 100, "nothing stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_producer_resends_across_a_node_restart_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut node = Node::start_listening(dir.path(), &listen, &[]);
    let options = ProducerOptions {
        max_in_flight: 256,
        reconnect_for: Duration::from_secs(30),
    };
    let producer = Client::new(&node.url)
        .producer("again", options)
        .await
        .expect("producer");
    let n = 20_000u64;
    let done = Arc::new(AtomicU64::new(0));
    let mut sends = Vec::new();
    for i in 0..n {
        let ack = producer.send(event(&format!("a{i}"), "t").to_string());
        let done = Arc::clone(&done);
        sends.push(tokio::spawn(async move {
            let offset = ack.await;
            done.fetch_add(1, Ordering::SeqCst);
            offset
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::SeqCst) < 500 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    node.kill9();
    let at_kill = done.load(Ordering::SeqCst);
    let node = Node::start_listening(dir.path(), &listen, &[]);
    let mut acked = HashMap::new();
    for (i, send) in sends.into_iter().enumerate() {
        let offset = tokio::time::timeout(Duration::from_secs(60), send)
            .await
            .expect("answered within 60 s")
            .expect("task")
            .unwrap_or_else(|e| panic!("event {i}: {e}"));
        assert!(
            acked.insert(offset, format!("a{i}")).is_none(),
            "offset {offset} twice"
        );
    }
    producer.close().await;
    assert!(at_kill < n, "the node was killed with frames in flight");
    let events = stored(&node, "again").await;
    assert_eq!(events.len() as u64, n, "each event stored once");
    for (offset, id) in &acked {
        assert_eq!(events[*offset as usize]["id"], id.as_str(), "at {offset}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_what_is_in_flight_is_answered_then_1001() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), &[]);
    let mut socket = open(&node, "bye").await;
    let n = 5000u64;
    for i in 0..n {
        socket
            .feed(text(&event(&format!("s{i}"), "t")))
            .await
            .expect("feed");
    }
    socket.flush().await.expect("flush");
    let first = next_ack(&mut socket).await;
    assert_eq!(first["seq"], 0);
    let stopping = tokio::task::spawn_blocking(move || {
        assert!(node.terminate().success());
        node
    });
    // (frame, offset) of each frame stored; a frame the log could no longer take is answered
    // shutting_down.
    let mut acked = vec![(0, first["offsets"][0].as_u64().expect("offset"))];
    let mut answered = 1u64;
    let code = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("within 20 s");
        match message {
            Some(Ok(Message::Text(t))) => {
                let ack: Value = serde_json::from_str(&t).expect("JSON");
                assert_eq!(ack["seq"], answered, "in order: {ack}");
                match ack["offsets"][0].as_u64() {
                    Some(offset) => acked.push((answered, offset)),
                    None => assert_eq!(error_code(&ack), "shutting_down", "{ack}"),
                }
                answered += 1;
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1001), "going away");
    let node = stopping.await.expect("terminated");
    drop(node);
    let node = Node::start(dir.path(), &[]);
    let events = stored(&node, "bye").await;
    for (i, offset) in &acked {
        assert_eq!(events[*offset as usize]["id"], format!("s{i}"));
    }
}
