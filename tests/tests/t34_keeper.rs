//! Leases across two Draft nodes on one real three-server JetStream cluster: heartbeats
//! taken by one node keep an instance registered on the other alive, exactly one node (the
//! elected lease keeper) writes each expiry, stamped with its term, and when the keeper is
//! killed the other node takes over without expiring an instance that kept heartbeating; a
//! keeper that shuts down resigns and the remaining node takes over; a keeper paused past its
//! lease (SIGSTOP) writes nothing when it wakes.

use std::time::Duration;

use draft_log_jetstream::testing::Cluster;
use draft_tests::{Node, register, stored};
use serde_json::{Value, json};

/// The keeper lock's TTL the nodes run with (the shortest is 1 s).
const KEEPER_TTL_MS: &str = "2000";
/// The TTL of the instances that keep heartbeating.
const LIVE_TTL_MS: u64 = 1500;
/// How often they heartbeat: well within their TTL.
const BEAT: Duration = Duration::from_millis(250);
/// The longest any wait below may take.
const PATIENCE: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, cluster: &Cluster, name: &str) -> Node {
    Node::start_on_jetstream(
        dir,
        &cluster.urls(),
        &["--node-name", name, "--keeper-ttl-ms", KEEPER_TTL_MS],
    )
}

async fn status(node: &Node) -> Value {
    reqwest::get(format!("{}/v1/status", node.url))
        .await
        .expect("status")
        .json()
        .await
        .expect("status JSON")
}

/// Waits until `node` says it is the keeper; returns its term.
async fn keeper_term(node: &Node) -> u64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = status(node).await;
        if let Some(term) = s["cluster"]["this_node_term"].as_u64() {
            return term;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never became keeper: {s}",
            node.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` becomes keeper, heartbeating `live` on it meanwhile; returns its term.
async fn take_over(node: &Node) -> u64 {
    let end = tokio::time::Instant::now() + PATIENCE;
    loop {
        heartbeat(node, "svc", "live").await;
        if let Some(term) = status(node).await["cluster"]["this_node_term"].as_u64() {
            return term;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{} never took over",
            node.url
        );
        tokio::time::sleep(BEAT).await;
    }
}

async fn heartbeat(node: &Node, service: &str, instance: &str) {
    let r = reqwest::Client::new()
        .post(format!(
            "{}/v1/services/{service}/instances/{instance}/heartbeat",
            node.url
        ))
        .send()
        .await
        .expect("heartbeat");
    assert_eq!(r.status().as_u16(), 200, "heartbeat {service}/{instance}");
}

/// Heartbeats `instance` of `svc` on `node` for `period`.
async fn beat_for(node: &Node, instance: &str, period: Duration) {
    let end = tokio::time::Instant::now() + period;
    while tokio::time::Instant::now() < end {
        heartbeat(node, "svc", instance).await;
        tokio::time::sleep(BEAT).await;
    }
}

/// The expiries in `_draft` of instance `instance` of `svc`.
async fn expiries(node: &Node, instance: &str) -> Vec<Value> {
    stored(node, "_draft")
        .await
        .into_iter()
        .filter(|e| {
            e["type"] == "io.draft.instance.expired"
                && e["data"]["service"] == "svc"
                && e["data"]["instance"] == instance
        })
        .collect()
}

/// Waits until `instance` has expired, heartbeating `live` on `node` meanwhile; returns its
/// expiries.
async fn await_expiry(node: &Node, instance: &str, live: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = expiries(node, instance).await;
        if !found.is_empty() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{instance} never expired"
        );
        beat_for(node, live, BEAT * 2).await;
    }
}

async fn health(node: &Node, instance: &str) -> String {
    let body: Value = reqwest::get(format!("{}/v1/services/svc", node.url))
        .await
        .expect("service")
        .json()
        .await
        .expect("service JSON");
    body["instances"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["instance"] == instance))
        .map_or_else(|| format!("absent in {body}"), |i| i["health"].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keeper_expires_and_another_takes_over_without_false_expiries() {
    let cluster = Cluster::start();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut a = start(dirs[0].path(), &cluster, "node-a");
    let term_a = keeper_term(&a).await;
    let b = start(dirs[1].path(), &cluster, "node-b");
    let seen_by_b = status(&b).await;
    assert_eq!(
        seen_by_b["cluster"]["keeper"],
        json!({"node": "node-a", "term": term_a}),
        "{seen_by_b}"
    );
    assert!(
        seen_by_b["cluster"]["this_node_term"].is_null(),
        "{seen_by_b}"
    );

    // Registered on A, heartbeated only on B: A keeps the lease, from B's shared beats.
    let routes = json!([{"prefix": "/svc"}]);
    register(
        &a,
        "svc",
        "live",
        "127.0.0.1:9",
        routes.clone(),
        LIVE_TTL_MS,
    )
    .await;
    // Never heartbeated: the keeper expires it, once.
    register(&a, "svc", "gone", "127.0.0.1:9", json!([]), 1000).await;
    beat_for(&b, "live", Duration::from_millis(3 * LIVE_TTL_MS)).await;
    let gone = await_expiry(&b, "gone", "live").await;
    beat_for(&b, "live", Duration::from_secs(1)).await;
    let gone_later = expiries(&a, "gone").await;
    assert_eq!(
        gone_later.len(),
        1,
        "one expiry, by one node: {gone_later:?}"
    );
    assert_eq!(gone, gone_later);
    assert_eq!(gone[0]["data"]["keeper_term"], term_a, "{gone:?}");
    assert!(expiries(&a, "live").await.is_empty(), "live never expired");
    for node in [&a, &b] {
        assert_eq!(health(node, "live").await, "\"passing\"");
    }
    let heard = status(&a).await;
    assert_eq!(
        heard["cluster"]["heard_from"][0]["node"], "node-b",
        "A heard B's heartbeats: {heard}"
    );

    // The keeper is killed: B takes over under a newer term; `live`, heartbeated on B all
    // along, is not expired by the new keeper.
    a.kill9();
    let term_b = take_over(&b).await;
    assert!(term_b > term_a, "terms grow: {term_a} then {term_b}");
    beat_for(&b, "live", Duration::from_millis(3 * LIVE_TTL_MS)).await;
    assert!(expiries(&b, "live").await.is_empty(), "no false expiry");
    assert_eq!(health(&b, "live").await, "\"passing\"");
    let routes_now: Value = reqwest::get(format!("{}/v1/routes", b.url))
        .await
        .expect("routes")
        .json()
        .await
        .expect("routes JSON");
    assert!(routes_now.to_string().contains("/svc"), "{routes_now}");

    // The new keeper expires what stops heartbeating, under its own term.
    register(&b, "svc", "late", "127.0.0.1:9", json!([]), 1000).await;
    let late = await_expiry(&b, "late", "live").await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["data"]["keeper_term"], term_b, "{late:?}");

    // A keeper that shuts down resigns: a third node becomes keeper after it, and `live`,
    // heartbeated on that node while B stops, is not expired by either.
    let c = start(dirs[2].path(), &cluster, "node-c");
    assert!(status(&c).await["cluster"]["this_node_term"].is_null());
    let stopping = tokio::task::spawn_blocking(move || {
        let mut b = b;
        b.terminate()
    });
    while !stopping.is_finished() {
        beat_for(&c, "live", BEAT).await;
    }
    assert!(stopping.await.expect("join").success(), "B stops cleanly");
    let term_c = take_over(&c).await;
    assert!(term_c > term_b, "terms grow: {term_b} then {term_c}");
    beat_for(&c, "live", Duration::from_millis(3 * LIVE_TTL_MS)).await;
    assert!(expiries(&c, "live").await.is_empty(), "no false expiry");
    assert_eq!(health(&c, "live").await, "\"passing\"");
}

/// Sends `signal` (`STOP`, `CONT`) to `node`'s process.
fn signal(node: &Node, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &node.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_paused_past_its_lease_writes_no_expiry_when_it_wakes() {
    let cluster = Cluster::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let a = start(dirs[0].path(), &cluster, "node-a");
    let term_a = keeper_term(&a).await;
    let b = start(dirs[1].path(), &cluster, "node-b");
    register(&a, "svc", "live", "127.0.0.1:9", json!([]), LIVE_TTL_MS).await;
    beat_for(&b, "live", Duration::from_millis(2 * LIVE_TTL_MS)).await;

    // A is stopped: it hears no heartbeat, and its lock lapses. B takes over, and expires an
    // instance nobody heartbeats.
    signal(&a, "STOP");
    let term_b = take_over(&b).await;
    assert!(term_b > term_a, "terms grow: {term_a} then {term_b}");
    register(&b, "svc", "dead", "127.0.0.1:9", json!([]), 1000).await;
    let dead = await_expiry(&b, "dead", "live").await;
    assert_eq!(dead[0]["data"]["keeper_term"], term_b, "{dead:?}");

    // A wakes with every lease in its table lapsed, `live`'s too: it must not expire it.
    signal(&a, "CONT");
    beat_for(&b, "live", Duration::from_millis(3 * LIVE_TTL_MS)).await;
    let s = status(&a).await;
    assert!(
        s["cluster"]["this_node_term"].is_null(),
        "A stepped down: {s}"
    );
    assert_eq!(s["cluster"]["keeper"]["node"], "node-b", "{s}");
    assert!(expiries(&a, "live").await.is_empty(), "no false expiry");
    assert_eq!(
        expiries(&a, "dead").await.len(),
        1,
        "one expiry, by one keeper"
    );

    // One keeper at a time: the terms in the audit trail never go back.
    let terms: Vec<u64> = stored(&a, "_draft")
        .await
        .iter()
        .filter(|e| e["type"] == "io.draft.instance.expired")
        .map(|e| e["data"]["keeper_term"].as_u64().expect("a keeper term"))
        .collect();
    assert!(terms.is_sorted(), "{terms:?}");
    for node in [&a, &b] {
        assert_eq!(health(node, "live").await, "\"passing\"");
    }
}
