//! Deadlines on the node's listeners: a client that trickles a request body is answered 408
//! with the JSON error body and disconnected once `--body-read-timeout-ms` has passed, on the
//! API and through the ingress; long-lived requests (consume and watch sockets, a WebSocket
//! through the ingress, a route whose own `timeout_ms` is longer) outlive a short
//! `--request-timeout-ms`. (The 503 and 504 a request past that deadline gets are tested on the
//! listener itself, in `draft-http`: no endpoint of the node is slow on purpose.)

use std::time::Duration;

use draft_tests::raw::connect_from;
use draft_tests::{Node, Upstream, event, register};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message on `socket` (pings and pongs skipped), within 5 s.
async fn next_text(socket: &mut Socket) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s");
        match m {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            other => panic!("a text message, not {other:?}"),
        }
    }
}

/// Polls until the ingress routes `path` (a route follows its registration within ms).
async fn until_routed(node: &Node, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = reqwest::get(format!("{}{path}", node.ingress))
            .await
            .map(|r| r.status().as_u16());
        if matches!(status, Ok(200)) {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never routed: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_answered_408_and_closed_within_the_deadline() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--body-read-timeout-ms", "500"]);
    let echo = Upstream::start("echo");
    register(
        &node,
        "echo",
        "e1",
        &echo.address,
        json!([{"prefix": "/echo"}]),
        60_000,
    )
    .await;
    until_routed(&node, "/echo/info").await;
    for (url, request) in [
        (&node.url, "PUT /v1/kv/slow"),
        (&node.ingress, "POST /echo/upload"),
    ] {
        let mut stream = connect_from("127.0.0.1", url).await;
        let head = format!("{request} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab");
        stream.write_all(head.as_bytes()).await.expect("headers");
        let started = Instant::now();
        let (mut read, mut write) = stream.into_split();
        // One more byte every 100 ms: never idle, never done.
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write.write_all(b"x").await.is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut read, &mut answer),
        )
        .await
        .is_ok();
        let took = started.elapsed();
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{url}: {answer}");
        assert!(
            answer.contains(r#""code":"request_timeout""#),
            "{url}: {answer}"
        );
        assert!(closed, "{url}: the connection is closed after the 408");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{url}: answered at the 500 ms deadline, not after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_requests_outlive_a_short_request_deadline() {
    let dir = tempfile::tempdir().expect("dir");
    // 1 s: short enough to be outlived below, long enough for a registration's fsync on a
    // busy machine (300 ms was not).
    let node = Node::start(dir.path(), &["--request-timeout-ms", "1000"]);
    let client = draft_catalyst::client::Client::new(&node.url);
    client
        .produce("c", &event("e0", "t"))
        .await
        .expect("produce");
    let echo = Upstream::start("echo");
    register(
        &node,
        "echo",
        "e1",
        &echo.address,
        json!([{"prefix": "/ws"}]),
        60_000,
    )
    .await;
    register(
        &node,
        "slow",
        "s1",
        &echo.address,
        json!([{"prefix": "/slow", "timeout_ms": 5000}]),
        60_000,
    )
    .await;
    until_routed(&node, "/ws/info").await;
    let ws = |url: &str, path: &str| format!("{}{path}", url.replacen("http", "ws", 1));
    let (mut consume, _) =
        tokio_tungstenite::connect_async(ws(&node.url, "/v1/channels/c/consume?from=latest"))
            .await
            .expect("consume");
    let (mut watch, _) = tokio_tungstenite::connect_async(ws(&node.url, "/v1/watch?prefix=k"))
        .await
        .expect("watch");
    let (mut proxied, _) = tokio_tungstenite::connect_async(ws(&node.ingress, "/ws"))
        .await
        .expect("a WebSocket through the ingress");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    client
        .produce("c", &event("e1", "t"))
        .await
        .expect("produce");
    assert!(
        next_text(&mut consume).await.contains("\"e1\""),
        "the consumer follows"
    );

    let put = reqwest::Client::new()
        .put(format!("{}/v1/kv/k1", node.url))
        .body("v")
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if next_text(&mut watch).await.contains("k1") {
            break;
        }
        assert!(Instant::now() < deadline, "the watch sees the put");
    }

    proxied
        .send(Message::Text("hi".into()))
        .await
        .expect("send");
    assert_eq!(next_text(&mut proxied).await, "echo: hi");

    let started = Instant::now();
    let slow = reqwest::get(format!("{}/slow/x?sleep_ms=2500", node.ingress))
        .await
        .expect("slow");
    assert_eq!(
        slow.status().as_u16(),
        200,
        "the route's 5 s timeout wins over the ingress's 1 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(2500));
}
