//! A produce request whose client disconnects before the answer, then retries: the retry is
//! answered with the first offset, and the event is stored once (issue 16: the append and its
//! duplicate-window entry complete even when the request is cancelled).

use std::time::Duration;

use draft_tests::{Node, count, event, post};
use tokio::io::AsyncWriteExt as _;

#[tokio::test]
async fn a_retry_after_a_disconnect_mid_request_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &[]);
    let authority = node.url.trim_start_matches("http://").to_owned();
    let tries = 40;
    for i in 0..tries {
        let body = event(&format!("cancelled-{i}"), "t").to_string();
        let request = format!(
            "POST /v1/channels/orders/events HTTP/1.1\r\nhost: {authority}\r\n\
             content-type: application/cloudevents+json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        // Send the whole request, then go away without reading the answer.
        let mut stream = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        drop(stream);
        // The retry, as a client that lost its answer would send it.
        let (status, answer) = post(&node, "orders", "application/cloudevents+json", body).await;
        assert!(status == 200 || status == 201, "{status}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count(&node, "orders").await,
        tries,
        "a retried event was stored twice"
    );
}
