//! Durable consumer groups on real nodes: a group resumes after its last acknowledgement when
//! its consumer drops the socket and when the node is killed with -9 (nothing skipped, order
//! kept); a standby takes over when the active member leaves or stops acknowledging; the
//! groups endpoints report lag and members; bad acknowledgements and bad names are refused
//! without changing anything; a group is deleted, and both changes are in the audit trail.

use std::time::Duration;

use draft_tests::group_member::Member;
use draft_tests::{Node, dctl, event, post};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const STRUCTURED: &str = "application/cloudevents+json";
/// How long anything expected may take.
const PATIENCE: Duration = Duration::from_secs(20);

async fn produce(node: &Node, channel: &str, n: usize) {
    for i in 0..n {
        let id = format!("{}-{i}", uuid_ish());
        let (status, body) = post(node, channel, STRUCTURED, event(&id, "t").to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// A unique enough id prefix for events of one call.
fn uuid_ish() -> String {
    format!("{:?}", std::time::SystemTime::now())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The status and JSON error of a consume request refused before the upgrade.
async fn refused(node: &Node, query: &str) -> (u16, Value) {
    let url = format!("{}/v1/channels/{query}", node.url.replacen("http", "ws", 1));
    let request = url.into_client_request().expect("request");
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (response.status().as_u16(), json)
        }
        Ok(_) => panic!("{query} was accepted"),
        Err(e) => panic!("{query}: {e}"),
    }
}

async fn group(node: &Node, channel: &str, group: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}/v1/channels/{channel}/groups/{group}", node.url))
        .await
        .expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Polls the group until `check` holds.
async fn group_until(
    node: &Node,
    channel: &str,
    name: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, info) = group(node, channel, name).await;
        if status == 200 && check(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group never got there: {info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn range(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_after_its_last_ack_when_the_consumer_drops_and_after_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = Node::start(dir.path(), &[]);
    produce(&node, "orders", 20).await;
    let mut m = Member::join(&node, "orders", "group=billing&from=earliest").await;
    assert_eq!(m.take(10).await, range(0, 9));
    m.ack(6).await;
    group_until(&node, "orders", "billing", |g| g["acked_offset"] == 6).await;
    // The consumer dies mid-stream: no close, the socket just goes.
    drop(m);

    let mut m = Member::join(&node, "orders", "group=billing&from=latest").await;
    assert_eq!(
        m.take(13).await,
        range(7, 19),
        "from the last ack; `from` is ignored"
    );
    m.ack(15).await;
    group_until(&node, "orders", "billing", |g| g["committed_offset"] == 15).await;
    produce(&node, "orders", 5).await;
    assert_eq!(m.take(5).await, range(20, 24));
    m.ack(19).await;
    node.kill9();

    let mut node = Node::start(dir.path(), &[]);
    let (status, info) = group(&node, "orders", "billing").await;
    assert_eq!(status, 200, "{info}");
    let committed = info["committed_offset"].as_u64().expect("committed");
    assert!(committed == 15 || committed == 19, "{info}");
    let mut m = Member::join(&node, "orders", "group=billing").await;
    assert_eq!(
        m.take((24 - committed) as usize).await,
        range(committed + 1, 24),
        "everything after the committed offset again, in order"
    );
    m.close().await;
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_active_member_leaves() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    produce(&node, "orders", 10).await;
    let mut a = Member::join(&node, "orders", "group=shipping&from=earliest").await;
    assert_eq!(a.take(10).await, range(0, 9));
    let mut b = Member::join(&node, "orders", "group=shipping").await;
    let info = group_until(&node, "orders", "shipping", |g| {
        g["standbys"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    assert!(
        info["active"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert!(
        info["active"]["since"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{info}"
    );
    b.nothing_for(Duration::from_millis(300)).await;
    a.ack(4).await;
    group_until(&node, "orders", "shipping", |g| g["acked_offset"] == 4).await;
    a.close().await;
    assert_eq!(
        b.take(5).await,
        range(5, 9),
        "no offset skipped, order kept"
    );
    produce(&node, "orders", 2).await;
    assert_eq!(b.take(2).await, range(10, 11), "and it follows live events");
    let info = group_until(&node, "orders", "shipping", |g| {
        g["standbys"] == Value::Array(vec![])
    })
    .await;
    assert!(info["active"].is_object(), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_acknowledging_loses_its_place_after_the_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    produce(&node, "orders", 10).await;
    let mut a = Member::join(&node, "orders", "group=slow&from=earliest&timeout_ms=500").await;
    assert_eq!(a.take(10).await, range(0, 9));
    let mut b = Member::join(&node, "orders", "group=slow&timeout_ms=500").await;
    a.ack(2).await;
    // a acknowledges nothing more: within the timeout (and a tick) it is closed, and b
    // resumes after its last ack.
    let (code, reason) = a.closed().await;
    assert_eq!(code, 4001, "{reason}");
    assert!(
        reason.contains("500 ms") && reason.contains("offset 3"),
        "{reason}"
    );
    assert_eq!(b.take(7).await, range(3, 9));
    let (status, conflict) = refused(&node, "orders/consume?group=slow&timeout_ms=900").await;
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{conflict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_reported_and_bad_acks_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    produce(&node, "orders", 10).await;
    let mut m = Member::join(&node, "orders", "group=audit&from=earliest&type=t").await;
    assert_eq!(m.take(10).await, range(0, 9));
    let (_, info) = group(&node, "orders", "audit").await;
    assert_eq!(
        (info["lag"].as_u64(), &info["committed_offset"]),
        (Some(10), &Value::Null)
    );
    assert_eq!(info["type"], serde_json::json!(["t"]));
    m.ack(3).await;
    let info = group_until(&node, "orders", "audit", |g| g["committed_offset"] == 3).await;
    assert_eq!(info["lag"], 6, "last offset 9 minus committed 3");
    assert!(info["last_ack_time"].as_str().is_some(), "{info}");

    // Bad acknowledgements close the socket with 1008 and change nothing.
    m.ack(10).await;
    let (code, reason) = m.closed().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("beyond"), "{reason}");
    for (bad, says) in [(r#"{"ack": 2}"#, "backwards"), ("hello", "expected")] {
        let mut m = Member::join(&node, "orders", "group=audit").await;
        assert_eq!(m.take(6).await, range(4, 9));
        m.send(bad).await;
        let (code, reason) = m.closed().await;
        assert_eq!(code, 1008, "{bad}");
        assert!(reason.contains(says), "{bad}: {reason}");
    }
    let (_, info) = group(&node, "orders", "audit").await;
    assert_eq!(
        (
            info["committed_offset"].as_u64(),
            info["acked_offset"].as_u64()
        ),
        (Some(3), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_settings_are_refused_before_the_upgrade() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let _member = Member::join(&node, "orders", "group=audit&type=t").await;
    for (query, status, code) in [
        ("orders/consume?group=Bad_Name", 400, "invalid_group"),
        ("orders/consume?group=_x", 400, "invalid_group"),
        ("_draft/consume?group=g", 400, "invalid_channel"),
        (
            "orders/consume?group=g&timeout_ms=5",
            400,
            "invalid_parameter",
        ),
        ("orders/consume?timeout_ms=500", 400, "invalid_parameter"),
        ("orders/consume?group=audit&type=other", 409, "conflict"),
    ] {
        let (got, body) = refused(&node, query).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let (_, info) = group(&node, "orders", "audit").await;
    assert_eq!(info["type"], serde_json::json!(["t"]), "nothing changed");
    let (status, _) = group(&node, "orders", "g").await;
    assert_eq!(status, 404, "no refused connection created a group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_deleted_once_its_members_are_gone_and_both_ends_are_audited() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let m = Member::join(&node, "orders", "group=audit").await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/channels/orders/groups/audit", node.url);
    group_until(&node, "orders", "audit", |g| g["active"].is_object()).await;
    let busy = client.delete(&url).send().await.expect("delete");
    assert_eq!(busy.status().as_u16(), 409);
    m.close().await;
    group_until(&node, "orders", "audit", |g| g["active"].is_null()).await;
    for status in [204, 404] {
        let answer = client.delete(&url).send().await.expect("delete");
        assert_eq!(answer.status().as_u16(), status);
    }
    assert_eq!(group(&node, "orders", "audit").await.0, 404);
    let audit: Vec<Value> = client
        .get(format!(
            "{}/v1/channels/_draft/events?from=earliest",
            node.url
        ))
        .send()
        .await
        .expect("read _draft")
        .json()
        .await
        .expect("JSON");
    let kinds: Vec<String> = audit
        .iter()
        .map(|e| format!("{} by {}", e["type"], e["draftactor"]))
        .collect();
    assert_eq!(
        kinds,
        [
            r#""io.draft.group.created" by "anonymous""#,
            r#""io.draft.group.deleted" by "anonymous""#
        ]
    );
    assert_eq!(audit[0]["data"]["group"], "audit");

    // The registry, its history and the CLI still read `_draft`, and list the groups.
    let put = client
        .put(format!("{}/v1/kv/app/db", node.url))
        .body("v1")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);
    let history: Value = client
        .get(format!("{}/v1/kv/app/db/history", node.url))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("JSON");
    assert_eq!(history["changes"][0]["revision"], 2, "{history}");
    let _kept = Member::join(&node, "orders", "group=kept").await;
    for (args, says) in [
        (vec!["log", "tail"], "io.draft.group.deleted"),
        (vec!["groups"], "kept"),
        (vec!["groups", "orders", "-o", "json"], "\"lag\""),
    ] {
        let out = std::process::Command::new(dctl())
            .args(&args)
            .args(["--url", &node.url])
            .output()
            .expect("run dctl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(says),
            "dctl {args:?}: {text}"
        );
    }
}
