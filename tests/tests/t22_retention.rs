//! Retention: the node's default for channels (`--retention-bytes`), a channel's own
//! (`PUT /v1/channels/{channel}`, an audited control event that survives a restart), and the
//! way back to the default.

use std::time::Duration;

use draft_tests::{Node, post};
use serde_json::{Value, json};

const STRUCTURED: &str = "application/cloudevents+json";
/// The node's default: a channel keeps at most this many bytes.
const DEFAULT_BYTES: u64 = 20_000;

/// Produces `n` events of about 1 KiB to `channel`, one request each.
async fn fill(node: &Node, channel: &str, n: usize) {
    let pad = "x".repeat(1000);
    for i in 0..n {
        let event = json!({"specversion": "1.0", "id": format!("{channel}-{i}"),
            "source": "/test", "type": "t", "data": {"pad": pad}});
        let (status, body) = post(node, channel, STRUCTURED, event.to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
}

async fn channel(node: &Node, name: &str) -> Value {
    let r = reqwest::get(format!("{}/v1/channels/{name}", node.url))
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn put(node: &Node, name: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/v1/channels/{name}", node.url))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("put");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON answer"))
}

/// Polls the channel until `done` holds of it, for at most 15 s (retention runs every second).
async fn until(node: &Node, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let info = channel(node, name).await;
        if done(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: {what}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_per_channel_retention_are_applied_recorded_and_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let bytes = DEFAULT_BYTES.to_string();
    let args = ["--retention-bytes", bytes.as_str()];
    let mut node = Node::start(dir.path(), &args);

    // The default applies to a channel with no retention of its own.
    fill(&node, "trimmed", 60).await;
    let info = until(&node, "trimmed", "trimmed to the default", |c| {
        c["bytes"].as_u64().is_some_and(|b| b <= DEFAULT_BYTES)
    })
    .await;
    assert!(info["first_offset"].as_u64() > Some(0), "{info}");
    assert_eq!(info["last_offset"], 59, "{info}");
    assert_eq!(info["retention"]["max_bytes"], DEFAULT_BYTES, "{info}");
    assert_eq!(info["retention_set"], false, "{info}");

    // A channel of its own: keep everything. Set before its first event.
    let (status, body) = put(&node, "kept", r#"{"retention": {"max_bytes": null}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention_set"], true, "{body}");
    assert_eq!(body["retention"]["max_bytes"], Value::Null, "{body}");
    let revision = body["revision"].as_u64().expect("revision");
    fill(&node, "kept", 60).await;

    // Bad settings are refused and change nothing.
    for (name, body, code) in [
        (
            "kept",
            r#"{"retention": {"max_bytes": 0}}"#,
            "invalid_settings",
        ),
        (
            "kept",
            r#"{"retention": {"max_age_secs": 0}}"#,
            "invalid_settings",
        ),
        (
            "kept",
            r#"{"retention": {"max_age": 5}}"#,
            "invalid_settings",
        ),
        ("kept", r#"{"retention": 5}"#, "invalid_settings"),
        ("kept", r#"{"retention": [null, null]}"#, "invalid_settings"),
        ("kept", r#"[{"max_bytes": null}]"#, "invalid_settings"),
        ("kept", "not json", "invalid_settings"),
        (
            "_draft",
            r#"{"retention": {"max_bytes": 10}}"#,
            "invalid_channel",
        ),
    ] {
        let (status, answer) = put(&node, name, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }

    // The change is in the audit trail, once, with what was asked.
    let audit = draft_tests::stored(&node, "_draft").await;
    let configured: Vec<&Value> = audit
        .iter()
        .filter(|e| e["type"] == "io.draft.channel.configured")
        .collect();
    assert_eq!(configured.len(), 1, "{configured:?}");
    assert_eq!(configured[0]["data"]["channel"], "kept");
    assert_eq!(configured[0]["draftoffset"].as_u64(), Some(revision));

    // Retention passes run every second: after a few, "kept" still holds everything.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kept = channel(&node, "kept").await;
    assert_eq!(
        (kept["first_offset"].as_u64(), kept["count"].as_u64()),
        (Some(0), Some(60))
    );

    // A restart keeps the channel's own retention.
    node.terminate();
    let node = Node::start(dir.path(), &args);
    let kept = channel(&node, "kept").await;
    assert_eq!(kept["retention_set"], true, "{kept}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(channel(&node, "kept").await["count"], 60);

    // Back to the default: the channel is trimmed like the others.
    let (status, body) = put(&node, "kept", r#"{"retention": null}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention_set"], false, "{body}");
    assert_eq!(body["retention"]["max_bytes"], DEFAULT_BYTES, "{body}");
    until(&node, "kept", "trimmed after the reset", |c| {
        c["bytes"].as_u64().is_some_and(|b| b <= DEFAULT_BYTES)
    })
    .await;
}
