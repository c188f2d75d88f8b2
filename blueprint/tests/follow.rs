//! Two Blueprints on one log, as two nodes on a clustered log are: each follows what the
//! other appends, compare-and-set decides between their writers, a read waits for a
//! revision it has not applied yet, and a write that meets a corrupt record while catching
//! up fails at once.

use std::sync::Arc;
use std::time::Duration;

use draft_blueprint::{
    Blueprint, BlueprintConfig, Condition, Key, Outcome, Reached, Revision, WriteError,
};
use draft_log::testing::hooked::{Hooked, Hooks};
use draft_log::{Log, LogBackend, LogConfig, Offset, PartitionName, Record, RecordStream};
use futures::StreamExt as _;
use futures::future::BoxFuture;

async fn two_nodes(dir: &tempfile::TempDir) -> (Blueprint, Blueprint) {
    let path = dir.path().join("log");
    let log = tokio::task::spawn_blocking(move || Log::open(LogConfig::new(path)))
        .await
        .expect("task")
        .expect("log");
    let log: Arc<dyn draft_log::LogBackend> = Arc::new(log);
    let open = |name: &str| {
        let mut config = BlueprintConfig::new(name, dir.path().join(name));
        config.follow_log = true;
        Blueprint::open(Arc::clone(&log), config)
    };
    (
        open("a").await.expect("node a"),
        open("b").await.expect("node b"),
    )
}

fn key(k: &str) -> Key {
    Key::parse(k).expect("key")
}

async fn put(bp: &Blueprint, k: &str, v: &str, condition: Condition) -> Option<Revision> {
    match bp
        .put(&key(k), v.as_bytes().to_vec(), condition, "test")
        .await
    {
        Ok(Outcome::Appended(r)) => Some(r),
        Ok(Outcome::Unchanged) => panic!("a put always appends"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_applies_what_the_other_appends() {
    let dir = tempfile::tempdir().expect("dir");
    let (a, b) = two_nodes(&dir).await;
    let written = put(&a, "colour", "blue", Condition::None)
        .await
        .expect("put");
    assert_eq!(
        b.reach(written, Duration::from_secs(10))
            .await
            .expect("reach"),
        Reached::Yes
    );
    assert_eq!(b.revision(), Some(written));
    let meta = b.read(|s| s.get("colour").cloned()).expect("on b");
    assert_eq!(meta.revision, written.get());
    // A revision the log does not hold is answered at once.
    assert_eq!(
        b.reach(Revision::new(written.get() + 5), Duration::from_secs(10))
            .await
            .expect("reach"),
        Reached::Future {
            next: written.get() + 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_writing_at_one_revision_exactly_one_wins_each_round() {
    let dir = tempfile::tempdir().expect("dir");
    let (a, b) = two_nodes(&dir).await;
    let mut current = put(&a, "counter", "0", Condition::None).await.expect("put");
    for round in 0..20 {
        let (va, vb) = (format!("a{round}"), format!("b{round}"));
        let (ra, rb) = tokio::join!(
            put(&a, "counter", &va, Condition::IfMatch(current.get())),
            put(&b, "counter", &vb, Condition::IfMatch(current.get())),
        );
        assert!(
            ra.is_some() != rb.is_some(),
            "round {round}: exactly one wins ({ra:?}, {rb:?})"
        );
        current = ra.or(rb).expect("a winner");
        for node in [&a, &b] {
            node.reach(current, Duration::from_secs(10))
                .await
                .expect("reach");
            let meta = node.read(|s| s.get("counter").cloned()).expect("key");
            assert_eq!(meta.revision, current.get(), "round {round}");
        }
    }
    // Both projections are the same fold of the same log.
    a.reach(current, Duration::from_secs(10))
        .await
        .expect("reach");
    assert_eq!(a.read(Clone::clone), b.read(Clone::clone));
}

/// Node B's view of the log: its tail delivers nothing (so it learns of A's writes only by
/// catching up), and a read of `_draft` from `corrupt_from` on reports a corrupt record.
struct CorruptBehind {
    corrupt_from: u64,
}

impl Hooks for CorruptBehind {
    fn tail(&self, _log: &Log, _partition: &PartitionName, _from: Offset) -> RecordStream {
        futures::stream::pending().boxed()
    }

    fn read<'a>(
        &'a self,
        log: &'a Log,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, draft_log::Result<Vec<Record>>> {
        let corrupt_from = self.corrupt_from;
        Box::pin(async move {
            let records = LogBackend::read(log, partition, from, limit).await?;
            match records.iter().find(|r| r.offset.0 >= corrupt_from) {
                Some(r) if partition.as_str() == "_draft" => Err(draft_log::Error::Corrupt {
                    partition: partition.to_string(),
                    offset: r.offset,
                    reason: "injected: the checksum does not match".into(),
                }),
                _ => Ok(records),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_met_while_catching_up_fails_the_write_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("log");
    let log = tokio::task::spawn_blocking(move || Log::open(LogConfig::new(path)))
        .await
        .expect("task")
        .expect("log");
    let shared: Arc<dyn LogBackend> = Arc::new(log.clone());
    let open = |name: &str, log: Arc<dyn LogBackend>| {
        let mut config = BlueprintConfig::new(name, dir.path().join(name));
        config.follow_log = true;
        Blueprint::open(log, config)
    };
    let b_view: Arc<dyn LogBackend> = Arc::new(Hooked {
        log,
        hooks: CorruptBehind { corrupt_from: 0 },
    });
    let b = open("b", b_view).await.expect("node b");
    let a = open("a", shared).await.expect("node a");
    put(&a, "colour", "blue", Condition::None)
        .await
        .expect("a's put");
    // B's put conflicts with A's record, which B cannot read: it fails with the corruption,
    // not after the wait for a head that cannot be read yet.
    let started = tokio::time::Instant::now();
    let result = b
        .put(&key("colour"), b"red".to_vec(), Condition::None, "test")
        .await;
    let took = started.elapsed();
    assert!(
        matches!(
            result,
            Err(WriteError::Log(draft_log::Error::Corrupt { .. }))
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}
