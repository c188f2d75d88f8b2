//! Two Draft nodes on one real three-server JetStream cluster: each follows `_draft` into its
//! own projection, so a write on one is read on the other once it reaches the write's
//! revision (`?min_revision=`); compare-and-set decides between writers on both nodes; and an
//! event produced on one node is delivered live to a consumer on the other; a produce retried
//! on the other node is stored once.

use std::time::Duration;

use draft_catalyst::client::{Client, ReadOptions};
use draft_log_jetstream::testing::Cluster;
use draft_tests::{Node, event, post, register};
use futures::StreamExt;
use serde_json::{Value, json};

fn start(dir: &std::path::Path, cluster: &Cluster, name: &str) -> Node {
    Node::start_on_jetstream(dir, &cluster.urls(), &["--node-name", name])
}

/// The `draft-revision` header of a response.
fn revision_of(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("draft-revision")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a draft-revision header in {:?}", r.headers()))
}

async fn put(node: &Node, key: &str, value: &str, if_match: Option<u64>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .put(format!("{}/v1/kv/{key}", node.url))
        .body(value.to_owned());
    request = match if_match {
        Some(r) => request.header("if-match", format!("\"{r}\"")),
        None => request,
    };
    request.send().await.expect("put")
}

async fn get(node: &Node, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}{path}", node.url))
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_state_and_one_set_of_channels() {
    let cluster = Cluster::start();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = start(dir_a.path(), &cluster, "node-a");
    let b = start(dir_b.path(), &cluster, "node-b");

    // Read-your-writes across nodes: a put on A, read on B at its revision.
    let r = put(&a, "app/colour", "blue", None).await;
    assert_eq!(r.status().as_u16(), 200);
    let revision = revision_of(&r);
    let r = reqwest::get(format!(
        "{}/v1/kv/app/colour?min_revision={revision}",
        b.url
    ))
    .await
    .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert!(revision_of(&r) >= revision);
    assert_eq!(r.text().await.expect("body"), "blue");

    // A registration on B is routed by A's Fuse at the same revision.
    register(
        &b,
        "pay",
        "p1",
        "127.0.0.1:9",
        json!([{"prefix": "/pay"}]),
        30_000,
    )
    .await;
    let (_, services) = get(&b, "/v1/services").await;
    let reg_revision = reqwest::get(format!("{}/v1/services", b.url))
        .await
        .map(|r| revision_of(&r))
        .expect("services");
    let (status, routes_a) = get(&a, &format!("/v1/routes?min_revision={reg_revision}")).await;
    assert_eq!(status, 200, "{routes_a}");
    let (_, routes_b) = get(&b, &format!("/v1/routes?at={reg_revision}")).await;
    let (_, routes_a_at) = get(&a, &format!("/v1/routes?at={reg_revision}")).await;
    assert_eq!(routes_a_at, routes_b, "both nodes derive the same routes");
    assert!(routes_a_at.to_string().contains("/pay"), "{routes_a_at}");
    let (_, services_a) = get(&a, &format!("/v1/services?at={reg_revision}")).await;
    assert_eq!(services_a["services"], services["services"], "{services_a}");

    // A revision no node has written yet is refused, not waited for.
    let (status, body) = get(&b, "/v1/kv/app/colour?min_revision=999999").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");

    // Compare-and-set between the nodes: of writers on both at the same revision, one wins.
    let r = put(&a, "app/counter", "0", None).await;
    let mut current = revision_of(&r);
    for round in 0..5 {
        let (va, vb) = (format!("a{round}"), format!("b{round}"));
        let (ra, rb) = tokio::join!(
            put(&a, "app/counter", &va, Some(current)),
            put(&b, "app/counter", &vb, Some(current)),
        );
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        let mut sorted = statuses;
        sorted.sort_unstable();
        assert_eq!(sorted, [200, 412], "round {round}: {statuses:?}");
        let winner = if statuses[0] == 200 { ra } else { rb };
        current = revision_of(&winner);
        // Both nodes then agree on the value at that revision.
        for node in [&a, &b] {
            let r = reqwest::get(format!(
                "{}/v1/kv/app/counter?min_revision={current}",
                node.url
            ))
            .await
            .expect("get");
            assert_eq!(r.status().as_u16(), 200);
            let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
            assert_eq!(etag, format!("\"{current}\""), "round {round}");
        }
    }

    // Live delivery: a consumer on B gets what is produced on A.
    let client = Client::new(&b.url);
    let options = ReadOptions {
        from: Some("earliest".into()),
        ..Default::default()
    };
    let mut consumer = client
        .consume("orders", &options)
        .await
        .expect("consume on B");
    for i in 0..3 {
        let (status, body) = post(
            &a,
            "orders",
            "application/cloudevents+json",
            event(&format!("e{i}"), "t").to_string(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for i in 0..3 {
        let text = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("an event within 10 s")
            .expect("the consumer stays open")
            .expect("an event");
        let delivered: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(delivered["id"], format!("e{i}"));
    }

    retries_on_the_other_node_are_stored_once(&a, &b).await;
    a_channels_retention_is_one_setting(&cluster, &a, &b).await;
}

async fn set_retention(node: &Node, channel: &str, max_age_secs: u64) {
    let r = reqwest::Client::new()
        .put(format!("{}/v1/channels/{channel}", node.url))
        .json(&json!({"retention": {"max_age_secs": max_age_secs}}))
        .send()
        .await
        .expect("put retention");
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// A retention set on one node is shown on the other at once, and a change on the other
/// node keeps it (the table in `_channels` is shared).
async fn a_channels_retention_is_one_setting(cluster: &Cluster, a: &Node, b: &Node) {
    set_retention(a, "orders", 3600).await;
    let (status, on_b) = get(b, "/v1/channels/orders").await;
    assert_eq!(status, 200, "{on_b}");
    assert_eq!(on_b["retention"]["max_age_secs"], 3600, "{on_b}");
    assert_eq!(on_b["retention_set"], true, "{on_b}");
    // A change on B, which had not read A's table before A's change.
    let (status, body) = post(
        b,
        "invoices",
        "application/cloudevents+json",
        event("i0", "t").to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    set_retention(b, "invoices", 60).await;
    for node in [a, b] {
        let (_, orders) = get(node, "/v1/channels/orders").await;
        let (_, invoices) = get(node, "/v1/channels/invoices").await;
        assert_eq!(
            (
                &orders["retention"]["max_age_secs"],
                &invoices["retention"]["max_age_secs"]
            ),
            (&json!(3600), &json!(60)),
            "{} keeps both settings",
            node.url
        );
    }
    concurrent_retention_changes_leave_the_stream_as_the_table(cluster, a, b).await;
}

/// Both nodes change one channel's retention at once, round after round: the stream's own
/// setting (shared by the nodes) ends as the table's last record says, whichever change's
/// setting reached the stream last.
async fn concurrent_retention_changes_leave_the_stream_as_the_table(
    cluster: &Cluster,
    a: &Node,
    b: &Node,
) {
    use draft_log::LogBackend as _;
    let log = draft_log_jetstream::JetStream::connect(cluster.config())
        .await
        .expect("a client of the cluster");
    let partition = draft_log::PartitionName::new("orders").expect("name");
    for round in 0..6_u64 {
        tokio::join!(
            set_retention(a, "orders", 1000 + round),
            set_retention(b, "orders", 2000 + round),
        );
        let (_, shown) = get(a, "/v1/channels/orders").await;
        let table = shown["retention"]["max_age_secs"]
            .as_u64()
            .expect("max_age_secs");
        assert!(table == 1000 + round || table == 2000 + round, "{shown}");
        let (_, on_b) = get(b, "/v1/channels/orders").await;
        assert_eq!(on_b["retention"], shown["retention"], "round {round}");
        let stream = log
            .retention(&partition)
            .await
            .expect("the stream's retention");
        assert_eq!(
            stream.max_age,
            Some(Duration::from_secs(table)),
            "round {round}: the stream keeps what the table's last record says"
        );
    }
}

/// A retry that reaches the other node is stored once: the log drops it by source + id,
/// and it is answered with the first offset, for one event and for a whole batch. (`e0` to
/// `e2` are stored through `a` already.)
async fn retries_on_the_other_node_are_stored_once(a: &Node, b: &Node) {
    let (status, body) = post(
        b,
        "orders",
        "application/cloudevents+json",
        event("e1", "t").to_string(),
    )
    .await;
    assert_eq!(status / 100, 2, "{body}");
    assert_eq!(body["offsets"], json!([1]), "e1's first offset: {body}");
    let batch = json!([event("b0", "t"), event("b1", "t")]).to_string();
    let (status, first) = post(
        a,
        "orders",
        "application/cloudevents-batch+json",
        batch.clone(),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(b, "orders", "application/cloudevents-batch+json", batch).await;
    assert_eq!(status / 100, 2, "{again}");
    assert_eq!(
        again["offsets"], first["offsets"],
        "the batch's first offsets"
    );
    // A batch that repeats an event stored through the other node beside a new one is
    // refused whole.
    let mixed = json!([event("e2", "t"), event("b2", "t")]).to_string();
    let (status, body) = post(b, "orders", "application/cloudevents-batch+json", mixed).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let ids: Vec<Value> = draft_tests::stored(a, "orders")
        .await
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, ["e0", "e1", "e2", "b0", "b1"], "each event once");
}
