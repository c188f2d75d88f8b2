//! SIGTERM: consumers get close code 1001 (going away), the node exits 0, and everything
//! acknowledged is there on restart.

use std::time::Duration;

use draft_catalyst::client::Client;
use draft_tests::{Node, count, event};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_consumers_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), &[]);
    let client = Client::new(&node.url);
    for i in 0..10 {
        client
            .produce("s", &event(&format!("e{i}"), "t"))
            .await
            .expect("produce");
    }
    let url = format!(
        "{}/v1/channels/s/consume?from=earliest",
        node.url.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "cloudevents.json".parse().expect("header"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap_or("")),
        Some("cloudevents.json"),
        "the CloudEvents subprotocol is selected"
    );
    let mut events = 0;
    while events < 10 {
        if let Message::Text(_) = socket.next().await.expect("open").expect("message") {
            events += 1;
        }
    }
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("closed promptly");
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");

    let node = Node::start(dir.path(), &[]);
    assert_eq!(count(&node, "s").await, 10);
}

/// A request that never finishes does not hold the node past its shutdown timeout: it is cut
/// off, the log is fsync'ed, the node exits 0, and what was acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_is_cut_off_at_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(
        dir.path(),
        &["--durability", "buffered", "--shutdown-timeout-ms", "1000"],
    );
    let client = Client::new(&node.url);
    client
        .produce("s", &event("kept", "t"))
        .await
        .expect("produce");
    // Headers promising a body that never comes: the handler waits on it.
    let addr = node.url.trim_start_matches("http://").to_owned();
    let mut stuck = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    stuck
        .write_all(
            b"POST /v1/channels/s/events HTTP/1.1\r\nhost: x\r\n\
              content-type: application/cloudevents+json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    let status = tokio::task::block_in_place(|| node.terminate());
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(8), "exited after {took:?}");
    drop(stuck);
    let node = Node::start(dir.path(), &[]);
    assert_eq!(count(&node, "s").await, 1);
}
