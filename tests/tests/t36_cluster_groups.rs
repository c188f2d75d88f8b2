//! A consumer group across two Draft nodes on one real three-server JetStream cluster has
//! one active member cluster-wide: a member on the second node stands by while a member on
//! the first is active, takes over after the last acknowledgement when that member leaves,
//! follows live events from its own node's tail, and when its node is killed with -9 a
//! member on the first node takes over once the group's lock lapses, with no offset
//! skipped and order kept. The group is created once, whichever node a member joins first,
//! and is not deleted through one node while it has members on another: the node that
//! serves it, or a third one where members stand by.

use std::time::Duration;

use draft_log_jetstream::testing::Cluster;
use draft_tests::group_member::Member;
use draft_tests::{Node, event, post, stored};
use serde_json::Value;

const STRUCTURED: &str = "application/cloudevents+json";
/// The keeper's (and so every group lock's) TTL the nodes run with.
const LOCK_TTL_MS: &str = "2000";
/// The longest any wait below may take.
const PATIENCE: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, cluster: &Cluster, name: &str) -> Node {
    Node::start_on_jetstream(
        dir,
        &cluster.urls(),
        &["--node-name", name, "--keeper-ttl-ms", LOCK_TTL_MS],
    )
}

async fn produce(node: &Node, from: usize, n: usize) {
    for i in from..from + n {
        let (status, body) = post(
            node,
            "orders",
            STRUCTURED,
            event(&format!("e{i}"), "t").to_string(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn range(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

/// Polls the group on `node` until `check` holds; returns what it last said.
async fn group_until(node: &Node, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let info: Value = reqwest::get(format!("{}/v1/channels/orders/groups/billing", node.url))
            .await
            .expect("get")
            .json()
            .await
            .expect("JSON");
        if check(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group never got there: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delete_group(node: &Node) -> (u16, Value) {
    let r = reqwest::Client::new()
        .delete(format!("{}/v1/channels/orders/groups/billing", node.url))
        .send()
        .await
        .expect("delete");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_has_one_active_member_across_nodes_and_fails_over_between_them() {
    let cluster = Cluster::start();
    let dirs = [(); 2].map(|()| tempfile::tempdir().expect("dir"));
    let a = start(dirs[0].path(), &cluster, "node-a");
    let mut b = start(dirs[1].path(), &cluster, "node-b");
    produce(&a, 0, 20).await;

    let mut on_a = Member::join(&a, "orders", "group=billing&from=earliest").await;
    assert_eq!(on_a.take(10).await, range(0, 9));
    on_a.ack(9).await;
    // The group exists once, on both nodes: joining on B neither creates it again nor
    // makes a second active member.
    let mut on_b = Member::join(&b, "orders", "group=billing&from=latest").await;
    on_b.nothing_for(Duration::from_millis(1500)).await;
    assert_eq!(on_a.take(10).await, range(10, 19), "A's member goes on");
    on_a.ack(14).await;
    group_until(&a, |g| g["committed_offset"] == 14).await;
    on_a.close().await;

    // A stored the acknowledgement and gave the group up: B's member resumes after it.
    assert_eq!(
        on_b.take(5).await,
        range(15, 19),
        "no offset skipped, order kept"
    );
    on_b.ack(19).await;
    produce(&a, 20, 5).await;
    assert_eq!(
        on_b.take(5).await,
        range(20, 24),
        "events produced on A reach B's member live"
    );
    on_b.ack(22).await;
    let info = group_until(&b, |g| g["committed_offset"] == 22).await;
    assert!(info["active"].is_object(), "{info}");
    // A group in use on B is not deleted through A, which has no member of it.
    let (status, body) = delete_group(&a).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("another node")),
        "{body}"
    );

    // B dies holding the group: a member on A takes over once B's lock lapses.
    let mut again = Member::join(&a, "orders", "group=billing").await;
    b.kill9();
    assert_eq!(again.take(2).await, range(23, 24), "after B's last commit");
    produce(&a, 25, 1).await;
    assert_eq!(again.take(1).await, vec![25]);
    // Without members anywhere, it is deleted.
    again.close().await;
    let (status, body) = delete_group(&a).await;
    assert_eq!(status, 204, "{body}");

    let created: Vec<Value> = stored(&a, "_draft")
        .await
        .into_iter()
        .filter(|e| e["type"] == "io.draft.group.created")
        .collect();
    assert_eq!(created.len(), 1, "one creation: {created:?}");
}

/// Members standing by on a node that does not serve the group keep it: a deletion through
/// a third node is refused while they wait, also in the moment the group's lock passes from
/// the serving node to theirs, and they take over with the group intact. Once no member is
/// left anywhere, the group is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_on_a_node_that_does_not_serve_the_group_keep_it_from_deletion() {
    let cluster = Cluster::start();
    let dirs = [(); 3].map(|()| tempfile::tempdir().expect("dir"));
    let a = start(dirs[0].path(), &cluster, "node-a");
    let b = start(dirs[1].path(), &cluster, "node-b");
    let c = start(dirs[2].path(), &cluster, "node-c");
    produce(&a, 0, 10).await;
    let mut on_b = Member::join(&b, "orders", "group=billing&from=earliest").await;
    assert_eq!(on_b.take(5).await, range(0, 4));
    on_b.ack(4).await;
    // C campaigns for the group's lock in vain (B serves the group), and says it waits.
    let mut on_c = Member::join(&c, "orders", "group=billing").await;
    on_c.nothing_for(Duration::from_millis(1500)).await;
    let (status, body) = delete_group(&a).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("node-c")),
        "the standbys' node is named: {body}"
    );
    group_until(&b, |g| g["committed_offset"] == 4).await;
    on_b.close().await;
    // B gives the lock up and C takes it: deletions through A are refused all along.
    for _ in 0..15 {
        let (status, body) = delete_group(&a).await;
        assert_eq!(status, 409, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_c.take(5).await, range(5, 9), "C's member took over");
    on_c.ack(9).await;
    group_until(&c, |g| g["committed_offset"] == 9).await;
    on_c.close().await;
    // No member anywhere: C gives the lock up and stops waiting, and the group goes.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = delete_group(&a).await;
        if status == 204 {
            break;
        }
        assert_eq!(status, 409, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
