//! What a WebSocket client may send to the node's sockets (consume and watch): pings, pongs
//! and a close. A message over 64 KiB is refused with close code 1009 before the node buffers
//! it; a consumer that sends data is closed with 1008. The node stays healthy either way.

use std::time::Duration;

use draft_tests::{Node, event};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(node: &Node, path: &str) -> Socket {
    let url = format!("{}{path}", node.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    if path.contains("/consume") {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "cloudevents.json".parse().expect("header"),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("connect")
        .0
}

/// Sends `message` (which may fail half-way: the node stops reading) and returns the code of
/// the close frame the node answers with.
async fn close_code_after(socket: &mut Socket, message: Message) -> Option<u16> {
    let _ = socket.send(message).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(e) => panic!("no close frame before the error {e}"),
            }
        }
        None
    })
    .await
    .expect("closed within 10 s")
}

async fn healthy(node: &Node) {
    let health = reqwest::get(format!("{}/healthz", node.url))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_1009_and_data_from_consumers_1008() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = draft_catalyst::client::Client::new(&node.url);
    client
        .produce("c", &event("e1", "t"))
        .await
        .expect("produce");

    let big = Message::Binary(vec![7u8; 70 * 1024].into());
    for path in ["/v1/channels/c/consume?from=earliest", "/v1/watch"] {
        let mut socket = open(&node, path).await;
        assert_eq!(
            close_code_after(&mut socket, big.clone()).await,
            Some(1009),
            "{path}: a 70 KiB message"
        );
        healthy(&node).await;
    }

    let mut socket = open(&node, "/v1/channels/c/consume?from=earliest").await;
    assert_eq!(
        close_code_after(&mut socket, Message::Text("hello".into())).await,
        Some(1008),
        "a consumer sends nothing but pings and close"
    );
    healthy(&node).await;
}
