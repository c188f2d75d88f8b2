//! Consumers that stop reading (their TCP window stays shut) against a real `dctl up` with a
//! 1 s write deadline: the node closes them within the deadline, holds a bounded amount of
//! memory for them meanwhile, keeps delivering every event to a consumer that reads, and
//! still shuts down at once.

use std::time::Duration;

use draft_tests::{Node, event, prometheus};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The write deadline the node is started with.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Consumers that never read.
const STALLED: usize = 20;
/// Events produced in the other tests, and the size of each one's data.
const EVENTS: usize = 200;
const EVENT_BYTES: usize = 64 * 1024;
/// Events in the memory test: half replayed by the stalled consumers, half produced while
/// they are stalled.
const MEMORY_EVENTS: usize = 600;
/// How much the node's resident memory may grow while `STALLED` consumers replay and then
/// stall, with half the events produced meanwhile. Each stalled consumer holds at most its
/// 1 MiB queue, a read of at most its queue's room, the message in its writer and the
/// socket's write buffer: with the allocator's slack, +62 to +97 MiB was measured for 20 of
/// them (+17 MiB with none: the log and the reader), and it does not depend on how many
/// events there are. Before the queues were bounded in bytes, each held its own copy of
/// every event it replayed, up to 256 queued and a 4 MiB read: +163 MiB with 100 events
/// replayed, and at least 20 × 16 MiB = 320 MiB with the 300 replayed here. The limit sits
/// between the two with room on both sides.
const RSS_GROWTH_LIMIT_KIB: u64 = 160 * 1024;

fn start(args: &[&str]) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), args);
    (dir, node)
}

/// A node with the short write deadline.
fn start_with_deadline() -> (tempfile::TempDir, Node) {
    start(&[
        "--ws-write-timeout-ms",
        &WRITE_TIMEOUT.as_millis().to_string(),
    ])
}

/// A consumer over raw TCP with a small receive buffer: it completes the WebSocket handshake,
/// and then reads nothing until the test looks at whether the node closed it.
async fn stalled_consumer(node: &Node, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket
        .connect(draft_tests::raw::addr(&node.url))
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: cloudevents.json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    // The response head, a byte at a time so that no frame is read.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("a response within 5 s")
            .expect("read");
        assert_eq!(n, 1, "the node closed the upgrade: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A consumer that reads: counts the events it gets (up to `expected`) and returns their
/// offsets.
fn reading_consumer(node: &Node, path: &str, expected: usize) -> tokio::task::JoinHandle<Vec<u64>> {
    let url = format!("{}{path}", node.url.replacen("http", "ws", 1));
    tokio::spawn(async move {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "cloudevents.json".parse().expect("header"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        let mut offsets = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while offsets.len() < expected {
            let message = tokio::time::timeout_at(deadline, socket.next())
                .await
                .expect("every event within 60 s")
                .expect("open")
                .expect("a message");
            if let Message::Text(text) = message {
                let event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                offsets.push(event["draftoffset"].as_u64().expect("draftoffset"));
            }
        }
        offsets
    })
}

/// The node's `draft_consumers` gauge.
async fn consumers(node: &Node) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .filter_map(prometheus::parse_sample)
        .find(|(name, _, _)| name == "draft_consumers")
        .and_then(|(_, _, value)| format!("{value}").parse().ok())
        .expect("draft_consumers, a count")
}

/// Waits (up to `limit`) until the node counts `n` consumers; how long it took.
async fn until_consumers(node: &Node, n: u64, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if consumers(node).await == n {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Waits (up to 10 s) until the group's active member is the one connected from `address`.
async fn until_active(node: &Node, channel: &str, group: &str, address: &str) {
    let url = format!("{}/v1/channels/{channel}/groups/{group}", node.url);
    let started = Instant::now();
    loop {
        let response = reqwest::get(&url).await.expect("group");
        if response.status().is_success() {
            let info: serde_json::Value = response.json().await.expect("JSON");
            if info["active"]["address"] == address {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{address} never became the active member of {group}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn big_event(i: usize) -> serde_json::Value {
    let mut e = event(&format!("e{i}"), "t");
    e["data"] = serde_json::json!({ "pad": "x".repeat(EVENT_BYTES) });
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_consumers_are_closed_at_the_deadline_in_bounded_memory_and_a_reader_gets_all() {
    let (_dir, node) = start_with_deadline();
    let client = draft_catalyst::client::Client::new(&node.url);
    // Half the events before the consumers connect (each replays its own copies from disk),
    // half while they are stalled (the live feed's).
    for i in 0..MEMORY_EVENTS / 2 {
        client.produce("c", &big_event(i)).await.expect("produce");
    }
    let before = node.rss_kib();
    let path = "/v1/channels/c/consume?from=earliest";
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_consumer(&node, path).await);
    }
    let reader = reading_consumer(&node, path, MEMORY_EVENTS);
    let mut peak = node.rss_kib();
    for i in MEMORY_EVENTS / 2..MEMORY_EVENTS {
        client.produce("c", &big_event(i)).await.expect("produce");
        if i % 10 == 0 {
            peak = peak.max(node.rss_kib());
        }
    }

    // The reader got everything, in order, while the others were stalled.
    let offsets = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader finishes")
        .expect("task");
    assert_eq!(offsets, (0..MEMORY_EVENTS as u64).collect::<Vec<_>>());
    peak = peak.max(node.rss_kib());

    // The stalled ones are closed by the node (the reader has gone): its count drops to none,
    // within the deadline (plus the close frame's grace and the polling) of the last write
    // each took.
    let closed = until_consumers(&node, 0, WRITE_TIMEOUT * 5).await;
    let growth = peak.saturating_sub(before);
    eprintln!(
        "RSS {before} KiB before, peak {peak} KiB (+{growth} KiB) with {STALLED} stalled \
         consumers; all closed {closed:?} after the last event was stored"
    );
    assert!(
        growth < RSS_GROWTH_LIMIT_KIB,
        "RSS grew by {growth} KiB with {STALLED} stalled consumers"
    );
    assert!(closed.is_some(), "stalled consumers are still open");
    // And the TCP connections are closed: what the node had sent, then the end.
    for mut stream in stalled {
        let (_, closed) =
            draft_tests::raw::read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(closed, "the node closed the connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_stalled_consumer_and_watch_shuts_down_at_once() {
    // The default write deadline (30 s): the consumer is still attached, stuck, at SIGTERM.
    let (_dir, mut node) = start(&[]);
    let client = draft_catalyst::client::Client::new(&node.url);
    let _consumer = stalled_consumer(&node, "/v1/channels/c/consume?from=latest").await;
    let _watch = stalled_consumer(&node, "/v1/watch").await;
    for i in 0..EVENTS {
        client.produce("c", &big_event(i)).await.expect("produce");
    }
    assert_eq!(
        consumers(&node).await,
        1,
        "the stalled consumer is still open"
    );
    let started = Instant::now();
    let status = node.terminate();
    let took = started.elapsed();
    eprintln!("SIGTERM to exit: {took:?}");
    assert!(status.success(), "{status:?}");
    // The stuck socket gets 0.5 s for its close frame; before, it held the node for the
    // whole 2 s drain deadline.
    assert!(
        took < Duration::from_millis(1500),
        "the node took {took:?} to stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watch_is_closed_at_the_write_deadline() {
    let (_dir, node) = start_with_deadline();
    let mut watch = stalled_consumer(&node, "/v1/watch").await;
    let http = reqwest::Client::new();
    let value = "v".repeat(EVENT_BYTES);
    for i in 0..EVENTS {
        let r = http
            .put(format!("{}/v1/kv/big/{i}", node.url))
            .body(value.clone())
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 200);
    }
    // Still not reading for twice the deadline after the last write: reading at once could
    // drain the socket before the deadline passed (the puts can take less than it), and a
    // watch that is read is not stalled.
    tokio::time::sleep(WRITE_TIMEOUT * 2).await;
    // Written while it was stalled, then it was closed: what it had been sent, then the end.
    let (_, closed) = draft_tests::raw::read_until_closed(&mut watch, WRITE_TIMEOUT * 5).await;
    assert!(closed, "the node closed the stalled watch");
}

/// A consumer group's active member that stops reading is closed at the write deadline (long
/// before the group's own 10-minute acknowledgement timeout), and a standby takes over from
/// the committed offset: it gets every event, in order, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_group_member_is_closed_at_the_deadline_and_a_standby_takes_over() {
    use futures::SinkExt as _;
    let (_dir, node) = start_with_deadline();
    let client = draft_catalyst::client::Client::new(&node.url);
    let path = "/v1/channels/g/consume?group=billing&from=earliest&timeout_ms=600000";
    let mut stalled = stalled_consumer(&node, path).await;
    // The member joins after its upgrade: it is the active one before the standby connects.
    let address = stalled.local_addr().expect("address").to_string();
    until_active(&node, "g", "billing", &address).await;
    let url = format!("{}{path}", node.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "cloudevents.json".parse().expect("header"),
    );
    let (mut standby, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a standby joins");
    // Produced meanwhile: the standby reads as it takes over, or it would stall in turn.
    let producer = tokio::spawn(async move {
        for i in 0..EVENTS {
            client.produce("g", &big_event(i)).await.expect("produce");
        }
    });
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while offsets.len() < EVENTS {
        let message = tokio::time::timeout_at(deadline, standby.next())
            .await
            .expect("the standby takes over and gets every event within 60 s")
            .expect("open")
            .expect("a message");
        if let Message::Text(text) = message {
            let event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let offset = event["draftoffset"].as_u64().expect("draftoffset");
            offsets.push(offset);
            standby
                .send(Message::text(format!(r#"{{"ack": {offset}}}"#)))
                .await
                .expect("ack");
        }
    }
    assert_eq!(offsets, (0..EVENTS as u64).collect::<Vec<_>>());
    producer.await.expect("the producer");
    let (_, closed) =
        draft_tests::raw::read_until_closed(&mut stalled, Duration::from_secs(5)).await;
    assert!(closed, "the node closed the stalled member");
}
