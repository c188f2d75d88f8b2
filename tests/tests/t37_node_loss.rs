//! The node-loss matrix as one scenario: two Draft nodes on a real three-server JetStream
//! cluster, with single events, batches and If-Match KV puts written on both nodes all the
//! time, and a live consumer on each, while:
//!
//! 1. the `_draft` stream's leader, then the channel's leader, is killed (kill -9);
//! 2. the channel's leader is stopped (SIGTERM), then a server that leads neither is killed;
//! 3. two of the three servers are killed, then started again;
//! 4. one Draft node (the lease keeper) is killed with its writes in flight.
//!
//! Writes stall through 1 and 2, never fail; in 3 they are refused with 503
//! `log_unavailable`, nothing else. At the end every acknowledged write is stored exactly
//! once where it was acknowledged, offsets are dense, every batch is all there or not at
//! all, the consumers saw every offset in order, the keeper failed over without expiring an
//! instance that kept heartbeating, and the restarted node serves the same routes and keys
//! at the same revision.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draft_log_jetstream::testing::Cluster;
use draft_tests::load::{Tally, Writer};
use draft_tests::{Node, register, stored};
use serde_json::{Value, json};

/// The keeper lock's TTL (the shortest allowed): the keeper fails over quickly.
const KEEPER_TTL_MS: &str = "2000";
/// The TTL of the instance that keeps heartbeating on node A.
const LIVE_TTL_MS: u64 = 1500;
/// The longest any wait below may take.
const PATIENCE: Duration = Duration::from_secs(60);
/// Events in each batch.
const BATCH: usize = 5;
/// The channel written to.
const CHANNEL: &str = "loss";
/// The channel's stream.
const CHANNEL_STREAM: &str = "DRAFT_loss";
/// The registry's stream.
const DRAFT_STREAM: &str = "DRAFT___draft";

fn start(dir: &std::path::Path, cluster: &Cluster, name: &str) -> Node {
    Node::start_on_jetstream(
        dir,
        &cluster.urls(),
        &["--node-name", name, "--keeper-ttl-ms", KEEPER_TTL_MS],
    )
}

async fn get(url: &str) -> Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Waits until `node` is the lease keeper.
async fn becomes_keeper(node: &Node) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = get(&format!("{}/v1/status", node.url)).await;
        if s["cluster"]["this_node_term"].as_u64().is_some() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never keeper: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until each kind of write has been acknowledged a few more times than in `before`.
async fn progress(tally: &Tally, what: &str) {
    let before = tally.acknowledged();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = tally.acknowledged();
        if now.0 >= before.0 + 3 && now.1 >= before.1 + 3 && now.2 >= before.2 + 3 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress after {what}: {before:?} then {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which server leads `stream`, once it has a leader.
async fn leader(cluster: &Cluster, stream: &str) -> usize {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(i) = cluster.leader(stream).await {
            return i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{stream} has no leader"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops server `i` with `signal`, lets writes run into the gap, and starts it again.
async fn stop_and_restart(cluster: &mut Cluster, i: usize, signal: &str, tally: &Tally) {
    cluster.stop(i, signal);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(i);
    progress(tally, &format!("kill -{signal} of server {i}")).await;
}

/// The writers of one node, and its consumer with the offsets it saw.
struct Load {
    writers: Arc<AtomicBool>,
    consumer: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<u64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn load(node: &Node, name: &str, tally: &Arc<Tally>) -> Load {
    let writer = Writer {
        url: node.url.clone(),
        node: name.to_owned(),
        channel: CHANNEL.to_owned(),
        stop: Arc::new(AtomicBool::new(false)),
        tally: tally.clone(),
    };
    let consumer = Writer {
        stop: Arc::new(AtomicBool::new(false)),
        ..writer.clone()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks = vec![
        tokio::spawn(writer.clone().events()),
        tokio::spawn(writer.clone().batches(BATCH)),
        tokio::spawn(writer.clone().puts(format!("loss/{name}"))),
        tokio::spawn(consumer.clone().follow(seen.clone())),
    ];
    Load {
        writers: writer.stop,
        consumer: consumer.stop,
        seen,
        tasks,
    }
}

impl Load {
    /// Stops the writers and, once it has seen `count` offsets (at most [`PATIENCE`]), the
    /// consumer; returns what the consumer saw.
    async fn stop(self, count: impl AsyncFnOnce() -> u64) -> Vec<u64> {
        self.writers.store(true, Ordering::SeqCst);
        let (writers, consumer) = self.tasks.split_at(3);
        for task in writers {
            while !task.is_finished() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let count = count().await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while (self.seen.lock().expect("seen").len() as u64) < count
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.consumer.store(true, Ordering::SeqCst);
        while !consumer[0].is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for task in self.tasks {
            task.await.expect("a writer does not panic");
        }
        self.seen.lock().expect("seen").clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_every_kind_of_node_loss() {
    let mut cluster = Cluster::start();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // B starts first and keeps the leases; A heartbeats an instance all along.
    let mut b = start(dir_b.path(), &cluster, "b");
    becomes_keeper(&b).await;
    let a = start(dir_a.path(), &cluster, "a");
    let routes = json!([{"prefix": "/loss"}]);
    register(&a, "svc", "live", "127.0.0.1:9", routes, LIVE_TTL_MS).await;
    let beating = Arc::new(AtomicBool::new(true));
    let heartbeats = tokio::spawn(heartbeat(a.url.clone(), beating.clone()));

    let tally = Arc::new(Tally::default());
    let load_a = load(&a, "a", &tally);
    let load_b = load(&b, "b", &tally);
    progress(&tally, "the start").await;

    tally.phase.store(1, Ordering::SeqCst);
    let i = leader(&cluster, DRAFT_STREAM).await;
    stop_and_restart(&mut cluster, i, "KILL", &tally).await;
    let i = leader(&cluster, CHANNEL_STREAM).await;
    stop_and_restart(&mut cluster, i, "KILL", &tally).await;

    tally.phase.store(2, Ordering::SeqCst);
    let i = leader(&cluster, CHANNEL_STREAM).await;
    stop_and_restart(&mut cluster, i, "TERM", &tally).await;
    let (draft, channel) = (
        leader(&cluster, DRAFT_STREAM).await,
        leader(&cluster, CHANNEL_STREAM).await,
    );
    if let Some(follower) = (0..3).find(|i| *i != draft && *i != channel) {
        stop_and_restart(&mut cluster, follower, "KILL", &tally).await;
    }

    tally.phase.store(3, Ordering::SeqCst);
    cluster.stop(0, "KILL");
    cluster.stop(1, "KILL");
    refused_while_a_quorum_is_lost(&tally).await;
    cluster.restart(0);
    cluster.restart(1);
    progress(&tally, "the quorum's return").await;

    tally.phase.store(4, Ordering::SeqCst);
    load_b.writers.store(true, Ordering::SeqCst);
    load_b.consumer.store(true, Ordering::SeqCst);
    b.kill9();
    let seen_b = load_b.stop(async || 0).await;
    becomes_keeper(&a).await;
    progress(&tally, "node B's loss").await;
    // Longer than the instance's TTL under the new keeper.
    tokio::time::sleep(Duration::from_millis(3 * LIVE_TTL_MS)).await;
    let seen_a = load_a
        .stop(async || draft_tests::count(&a, CHANNEL).await)
        .await;

    let stored_events = stored(&a, CHANNEL).await;
    let failures = tally.failures.lock().expect("failures").len();
    eprintln!(
        "acknowledged (events, batches, puts): {:?}; failed attempts: {failures}",
        tally.acknowledged()
    );
    every_acknowledged_event_once_and_batches_whole(&tally, &stored_events);
    assert_eq!(
        seen_a,
        (0..stored_events.len() as u64).collect::<Vec<_>>(),
        "A's consumer saw every offset once, in order"
    );
    assert_eq!(
        seen_b,
        (0..seen_b.len() as u64).collect::<Vec<_>>(),
        "B's consumer saw a gapless prefix until B was killed"
    );
    failures_were_waits_or_refusals(&tally);
    let expiries: Vec<Value> = stored(&a, "_draft")
        .await
        .into_iter()
        .filter(|e| e["type"] == "io.draft.instance.expired" && e["data"]["instance"] == "live")
        .collect();
    assert!(
        expiries.is_empty(),
        "a heartbeating instance expired: {expiries:?}"
    );

    // B, started again on its data, serves what A serves at A's revision.
    let b = start(dir_b.path(), &cluster, "b");
    let revision = get(&format!("{}/v1/status", a.url)).await["revision"]
        .as_u64()
        .expect("a revision");
    let at = format!("at={revision}&min_revision={revision}");
    for path in [
        "/v1/routes".to_owned(),
        "/v1/kv/loss/a/history?limit=1000".to_owned(),
        "/v1/kv/loss/b/history?limit=1000".to_owned(),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (on_a, on_b) = (
            get(&format!("{}{path}{sep}{at}", a.url)).await,
            get(&format!("{}{path}{sep}{at}", b.url)).await,
        );
        assert_eq!(on_a, on_b, "{path} at revision {revision}");
    }
    every_acknowledged_put_once(&a, &tally).await;
    beating.store(false, Ordering::SeqCst);
    heartbeats.await.expect("heartbeats");
}

async fn heartbeat(url: String, beating: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    let beat = format!("{url}/v1/services/svc/instances/live/heartbeat");
    while beating.load(Ordering::SeqCst) {
        // Failures are for the test's checks to find: the instance must not expire.
        let _ = http.post(&beat).send().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until some write is refused while two of three servers are down.
async fn refused_while_a_quorum_is_lost(tally: &Tally) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if tally
            .failures
            .lock()
            .expect("failures")
            .iter()
            .any(|f| f.phase == 3)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no write was refused without a quorum"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Offsets are dense; every acknowledged event is stored once, at its offset; no id is
/// stored twice; every batch is all there, in order and together, or not at all.
fn every_acknowledged_event_once_and_batches_whole(tally: &Tally, stored: &[Value]) {
    let mut at: HashMap<String, u64> = HashMap::new();
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e["draftoffset"], i as u64, "dense offsets");
        let id = e["id"].as_str().expect("an id").to_owned();
        assert!(
            at.insert(id.clone(), i as u64).is_none(),
            "{id} stored twice"
        );
    }
    for (id, offset) in tally.events.lock().expect("events").iter() {
        assert_eq!(at.get(id), Some(offset), "acknowledged event {id}");
    }
    for (ids, acked) in tally.batches.lock().expect("batches").iter() {
        let found: Vec<Option<u64>> = ids.iter().map(|id| at.get(id).copied()).collect();
        if found.iter().all(Option::is_none) {
            assert!(acked.is_none(), "acknowledged batch {ids:?} is missing");
            continue;
        }
        let first = found[0].unwrap_or_else(|| panic!("batch {ids:?} in part: {found:?}"));
        let expected: Vec<Option<u64>> = (0..ids.len() as u64).map(|i| Some(first + i)).collect();
        assert_eq!(found, expected, "batch {ids:?} whole and in order");
        if let Some(acked) = acked {
            assert_eq!(*acked, first, "batch {ids:?} where acknowledged");
        }
    }
}

/// A write in flight while the quorum was lost (sent by phase 3, failed from phase 3 on)
/// fails only with 503 `log_unavailable`; one on B fails only by a lost connection once B
/// is killed (phase 4); no other write fails.
fn failures_were_waits_or_refusals(tally: &Tally) {
    for f in tally.failures.lock().expect("failures").iter() {
        if f.node == "b" && f.status.is_none() {
            assert_eq!(f.ended, 4, "B's writes end with B: {f:?}");
        } else if f.phase <= 3 && f.ended >= 3 {
            assert!(
                f.status == Some(503) && f.what == "log_unavailable",
                "without a quorum, only 503 log_unavailable: {f:?}"
            );
        } else {
            panic!("a write failed while a quorum was up: {f:?}");
        }
    }
}

/// Every acknowledged put is in its key's history once, at its revision.
async fn every_acknowledged_put_once(a: &Node, tally: &Tally) {
    let mut history: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for key in ["loss/a", "loss/b"] {
        let mut after = String::new();
        loop {
            let page = get(&format!("{}/v1/kv/{key}/history?limit=1000{after}", a.url)).await;
            for change in page["changes"].as_array().expect("changes") {
                let value = draft_blueprint::wire::base64_decode(
                    change["value_base64"].as_str().unwrap_or(""),
                )
                .expect("base64 values");
                history.entry(key.to_owned()).or_default().push((
                    change["revision"].as_u64().expect("revision"),
                    String::from_utf8(value).expect("text"),
                ));
            }
            match page["next_after"].as_u64() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
    }
    for (key, value, revision) in tally.puts.lock().expect("puts").iter() {
        let changes = &history[key];
        let found: Vec<u64> = changes
            .iter()
            .filter(|(_, v)| v == value)
            .map(|(r, _)| *r)
            .collect();
        assert_eq!(
            found,
            vec![*revision],
            "{key} = {value} once, where acknowledged"
        );
    }
}
