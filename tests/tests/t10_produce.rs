//! Produce against a real node: the three content modes, duplicates, and every bad input
//! (right status, the JSON error body, nothing added to the log).

use draft_tests::{Node, count, event, fixture, post};
use serde_json::Value;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

async fn read_all(node: &Node, channel: &str) -> Vec<Value> {
    let client = draft_catalyst::client::Client::new(&node.url);
    let options = draft_catalyst::client::ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    client
        .page(channel, &options, 1000)
        .await
        .expect("page")
        .events
}

#[tokio::test]
async fn structured_binary_and_batch_events_are_stored_as_sent() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);

    let (status, body) = post(
        &node,
        "orders",
        STRUCTURED,
        fixture("events/order-created.json"),
    )
    .await;
    assert_eq!(
        (status, &body["offsets"]),
        (201, &serde_json::json!([0])),
        "{body}"
    );

    let response = reqwest::Client::new()
        .post(format!("{}/v1/channels/orders/events", node.url))
        .header("ce-specversion", "1.0")
        .header("ce-id", "bin-1")
        .header("ce-source", "/pos")
        .header("ce-type", "com.example.payment")
        .header("ce-tenant", "acme")
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 201);

    let (status, body) = post(&node, "orders", BATCH, fixture("events/batch.json")).await;
    assert_eq!(
        (status, &body["offsets"]),
        (201, &serde_json::json!([2, 3, 4])),
        "{body}"
    );

    let events = read_all(&node, "orders").await;
    assert_eq!(events.len(), 5);
    let sent: Value = serde_json::from_str(&fixture("events/order-created.json")).expect("fixture");
    for (k, v) in sent.as_object().expect("object") {
        assert_eq!(&events[0][k], v, "attribute {k} kept");
    }
    assert_eq!(events[0]["draftchannel"], "orders");
    assert_eq!(events[0]["draftoffset"], 0);
    assert_eq!(events[1]["tenant"], "acme", "binary-mode extension kept");
    assert_eq!(
        events[1]["data_base64"], "AJ+Slg==",
        "binary data as data_base64"
    );
    assert_eq!(events[4]["data_base64"], "AAECAwQ=");
    assert_eq!(events[3]["data"]["carrier"], "dhl");
}

#[tokio::test]
async fn a_duplicate_source_and_id_answers_the_first_offset_and_is_not_stored() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let (status, body) = post(&node, "d", STRUCTURED, event("same", "t").to_string()).await;
    assert_eq!((status, body["offsets"][0].as_u64()), (201, Some(0)));
    post(&node, "d", STRUCTURED, event("other", "t").to_string()).await;
    let (status, body) = post(&node, "d", STRUCTURED, event("same", "t").to_string()).await;
    assert_eq!(
        (status, body["offsets"][0].as_u64()),
        (200, Some(0)),
        "{body}"
    );
    assert_eq!(count(&node, "d").await, 2);
}

#[tokio::test]
async fn bad_input_gets_its_status_and_json_error_and_adds_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(
        dir.path(),
        &["--max-event-bytes", "2048", "--max-batch-bytes", "8192"],
    );
    post(&node, "orders", STRUCTURED, event("seed", "t").to_string()).await;
    let cases = bad_cases();
    for (channel, content_type, body, want_status, want_code) in cases {
        let (status, answer) = post(&node, channel, content_type, body.clone()).await;
        assert_eq!(status, want_status, "{content_type} {body:.80}: {answer}");
        assert_eq!(answer["error"]["code"], want_code, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (_, answer) = post(
        &node,
        "orders",
        STRUCTURED,
        fixture("events/invalid-missing-type.json"),
    )
    .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("type"),
        "names the attribute: {answer}"
    );
    assert_eq!(
        count(&node, "orders").await,
        1,
        "nothing was added by bad input"
    );
    // The node is still healthy.
    let health = reqwest::get(format!("{}/healthz", node.url))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

/// Each bad request: channel, content type, body, expected status and error code.
fn bad_cases() -> Vec<(&'static str, &'static str, String, u16, &'static str)> {
    let big = serde_json::json!({"specversion":"1.0","id":"big","source":"/s","type":"t","data":"x".repeat(4096)});
    let many: Vec<Value> = (0..40).map(|i| serde_json::json!({"specversion":"1.0","id":format!("m{i}"),"source":"/s","type":"t","data":"y".repeat(300)})).collect();
    vec![
        (
            "orders",
            STRUCTURED,
            "{not json".into(),
            400,
            "invalid_event",
        ),
        (
            "orders",
            STRUCTURED,
            fixture("events/invalid-missing-type.json"),
            400,
            "invalid_event",
        ),
        (
            "orders",
            STRUCTURED,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"noon"}"#.into(),
            400,
            "invalid_event",
        ),
        (
            "orders",
            STRUCTURED,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","BadExt":1}"#.into(),
            400,
            "invalid_event",
        ),
        (
            "orders",
            BATCH,
            format!("[{}, {{\"id\":\"2\"}}]", event("ok", "t")),
            400,
            "invalid_event",
        ),
        ("orders", STRUCTURED, big.to_string(), 413, "too_large"),
        (
            "orders",
            BATCH,
            serde_json::to_string(&many).expect("json"),
            413,
            "too_large",
        ),
        (
            "orders",
            "text/plain",
            "hello".into(),
            415,
            "unsupported_media_type",
        ),
        (
            "Orders",
            STRUCTURED,
            event("1", "t").to_string(),
            400,
            "invalid_channel",
        ),
        (
            "_draft",
            STRUCTURED,
            event("1", "t").to_string(),
            400,
            "invalid_channel",
        ),
    ]
}

#[tokio::test]
async fn events_nested_past_the_limit_are_refused_in_every_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &[]);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let event = |id: &str, data: &str, escaped: bool| {
        // An escaped attribute name sends the event down the SDK's path instead of the fast one.
        let ty = if escaped {
            r#""typ\u0065""#
        } else {
            r#""type""#
        };
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/deep",{ty}:"t","data":{data}}}"#)
    };
    for escaped in [false, true] {
        let (status, body) = post(
            &node,
            "deep",
            "application/cloudevents+json",
            event("ok", &nested(100), escaped),
        )
        .await;
        assert!(status == 201 || status == 200, "{status} {body}");
        for depth in [127, 100_000] {
            let (status, body) = post(
                &node,
                "deep",
                "application/cloudevents+json",
                event("deep", &nested(depth), escaped),
            )
            .await;
            assert_eq!(status, 400, "depth {depth}, escaped {escaped}: {body}");
            assert_eq!(body["error"]["code"], "invalid_event");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("data") && message.contains("nested deeper"),
                "{message}"
            );
        }
    }
    let batch = format!(
        "[{},{}]",
        event("b1", "1", false),
        event("b2", &nested(5000), false)
    );
    let (status, body) = post(&node, "deep", "application/cloudevents-batch+json", batch).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nested deeper")),
        "{body}"
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v1/channels/deep/events", node.url))
        .header("ce-specversion", "1.0")
        .header("ce-id", "bin")
        .header("ce-source", "/deep")
        .header("ce-type", "t")
        .header("content-type", "application/json")
        .body(nested(5000))
        .send()
        .await
        .expect("binary produce");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        count(&node, "deep").await,
        1,
        "only the shallow event is stored"
    );
}

/// Produce over a WebSocket to `channel`: one text frame, and its acknowledgement.
async fn produce_frame(node: &Node, channel: &str, frame: String) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let url = format!(
        "{}/v1/channels/{channel}/produce",
        node.url.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "cloudevents.json".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    socket
        .send(Message::Text(frame.into()))
        .await
        .expect("send");
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
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

/// `dctl up --max-json-depth 8`: the limit counts the event object as one level, so `data`
/// nested 7 deep is the deepest stored and 8 or 9 deep is refused naming `data`, the same on
/// every path: structured (fast path and SDK path), batch, binary mode, and WebSocket frames
/// of one event and of a batch.
#[tokio::test]
async fn a_configured_depth_limit_holds_on_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &["--max-json-depth", "8"]);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let event = |id: &str, depth: usize, escaped: bool| {
        // An escaped attribute name sends the event down the SDK's path instead of the fast one.
        let ty = if escaped {
            r#""typ\u0065""#
        } else {
            r#""type""#
        };
        let data = nested(depth);
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/deep",{ty}:"t","data":{data}}}"#)
    };
    let refused = |depth: usize, what: &str, error: &Value| {
        assert_eq!(
            error["code"], "invalid_event",
            "{what}, data {depth} deep: {error}"
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("data is nested deeper than 8 levels"),
            "{what}, data {depth} deep: {message}"
        );
    };
    let mut stored = 0;
    for depth in [7, 8, 9] {
        let fits = depth < 8;
        for escaped in [false, true] {
            let id = format!("s{depth}{escaped}");
            let (status, body) = post(&node, "deep", STRUCTURED, event(&id, depth, escaped)).await;
            let what = format!("structured, escaped {escaped}");
            if fits {
                assert_eq!(status, 201, "{what}: {body}");
            } else {
                assert_eq!(status, 400, "{what}, data {depth} deep: {body}");
                refused(depth, &what, &body["error"]);
            }
        }
        let batch = format!(
            "[{},{}]",
            event(&format!("b{depth}"), 1, false),
            event(&format!("c{depth}"), depth, false)
        );
        let (status, body) = post(&node, "deep", BATCH, batch).await;
        if fits {
            assert_eq!(status, 201, "batch: {body}");
        } else {
            assert_eq!(status, 400, "batch, data {depth} deep: {body}");
            refused(depth, "batch", &body["error"]);
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("event 1 of the batch"), "{message}");
        }
        let response = reqwest::Client::new()
            .post(format!("{}/v1/channels/deep/events", node.url))
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("bin{depth}"))
            .header("ce-source", "/deep")
            .header("ce-type", "t")
            .header("content-type", "application/json")
            .body(nested(depth))
            .send()
            .await
            .expect("binary produce");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON answer");
        if fits {
            assert_eq!(status, 201, "binary: {body}");
        } else {
            assert_eq!(status, 400, "binary, data {depth} deep: {body}");
            refused(depth, "binary", &body["error"]);
        }
        for (what, frame) in [
            ("frame", event(&format!("w{depth}"), depth, false)),
            (
                "batch frame",
                format!("[{}]", event(&format!("wb{depth}"), depth, true)),
            ),
        ] {
            let ack = produce_frame(&node, "deep", frame).await;
            if fits {
                assert_eq!(
                    ack["offsets"].as_array().map(Vec::len),
                    Some(1),
                    "{what}: {ack}"
                );
            } else {
                refused(depth, what, &ack["error"]);
            }
        }
        if fits {
            // Two structured, two in the batch, binary, two frames.
            stored += 7;
        }
    }
    assert_eq!(
        count(&node, "deep").await,
        stored,
        "only what fits is stored"
    );
}
