//! The reserved partition `_groups`, through the [`LogBackend`] only: every change is
//! appended as one small record (`record.rs`); every [`SNAPSHOT_EVERY`] records a snapshot of
//! every group is appended and everything before it trimmed (`LogBackend::trim_before`), so
//! the partition holds one full snapshot and at most that many records after it, however long
//! the node runs. At open the records are folded from the first one kept.
//!
//! **On a shared log** (other nodes append to `_groups` too), the store also follows the
//! partition ([`Store::follow`]) and hands back the other nodes' records, and what must be
//! decided against everything stored (a group's creation, a snapshot) is appended with
//! compare-and-set: a snapshot that missed another node's record would trim it away.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use draft_log::{LogBackend, NewRecord, Offset, PartitionName};

use super::record::{self, GroupRecord, Keyed, StoredGroup, StoredKey};

/// The reserved partition that holds the groups.
pub(crate) const GROUPS_PARTITION: &str = "_groups";
/// Records appended after a snapshot before the next one is taken.
pub(crate) const SNAPSHOT_EVERY: u64 = 1000;
/// Records read at a time at open.
const READ_CHUNK: usize = 1024;

/// The groups' partition.
pub(crate) struct Store {
    log: Arc<dyn LogBackend>,
    partition: PartitionName,
    /// Records appended since the last snapshot (or since the first record kept).
    since_snapshot: AtomicU64,
    /// Whether other nodes append to the partition too.
    shared: bool,
    /// Where following the partition goes on, and the offsets of this node's own records
    /// not yet passed (a shared store's only).
    followed: Mutex<Followed>,
}

#[derive(Default)]
struct Followed {
    next: Offset,
    own: HashSet<u64>,
}

/// Decodes one stored record of `_groups`.
fn decode(stored: &draft_log::Record) -> draft_log::Result<GroupRecord> {
    GroupRecord::decode(&stored.payload).map_err(|reason| draft_log::Error::Corrupt {
        partition: GROUPS_PARTITION.to_owned(),
        offset: stored.offset,
        reason: format!("not a consumer group record: {reason}"),
    })
}

impl Store {
    /// Opens `_groups` on `log` and folds what it holds into every stored group; `shared`
    /// if other nodes append to it too.
    ///
    /// # Errors
    /// A log error, or [`draft_log::Error::Corrupt`] for a record that is not a group record.
    pub(crate) async fn open(
        log: Arc<dyn LogBackend>,
        shared: bool,
    ) -> draft_log::Result<(Self, BTreeMap<StoredKey, StoredGroup>)> {
        let partition = PartitionName::new(GROUPS_PARTITION)?;
        let mut groups = BTreeMap::new();
        let mut since_snapshot = 0;
        let mut next = Offset(0);
        loop {
            let records = log.read(&partition, next, READ_CHUNK).await?;
            let Some(last) = records.last().map(|r| r.offset) else {
                break;
            };
            for stored in &records {
                let record = decode(stored)?;
                since_snapshot = if matches!(record, GroupRecord::Snapshot { .. }) {
                    0
                } else {
                    since_snapshot + 1
                };
                record::apply(&mut groups, record);
            }
            next = last.next();
        }
        let store = Self {
            log,
            partition,
            since_snapshot: AtomicU64::new(since_snapshot),
            shared,
            followed: Mutex::new(Followed {
                next,
                own: HashSet::new(),
            }),
        };
        Ok((store, groups))
    }

    fn followed(&self) -> std::sync::MutexGuard<'_, Followed> {
        self.followed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The records other nodes appended since the last call (a shared store's; none
    /// otherwise), in order. This node's own are passed over: they are applied already.
    ///
    /// # Errors
    /// A log error, or [`draft_log::Error::Corrupt`] for a record that is not a group record.
    pub(crate) async fn follow(&self) -> draft_log::Result<Vec<GroupRecord>> {
        let mut foreign = Vec::new();
        if !self.shared {
            return Ok(foreign);
        }
        loop {
            let from = self.followed().next;
            let records = self.log.read(&self.partition, from, READ_CHUNK).await?;
            let Some(last) = records.last().map(|r| r.offset) else {
                return Ok(foreign);
            };
            for stored in &records {
                if self.followed().own.remove(&stored.offset.0) {
                    continue;
                }
                let record = decode(stored)?;
                if matches!(record, GroupRecord::Snapshot { .. }) {
                    self.since_snapshot.store(0, Ordering::Relaxed);
                } else {
                    self.since_snapshot.fetch_add(1, Ordering::Relaxed);
                }
                foreign.push(record);
            }
            let mut followed = self.followed();
            followed.next = last.next();
            // A trim may have passed over some of this node's records: they are gone.
            let next = followed.next.0;
            followed.own.retain(|o| *o >= next);
        }
    }

    /// Appends `record` only if nothing was appended since the last [`follow`](Self::follow)
    /// (always, on a store that is not shared); resolves once it is durable.
    ///
    /// # Errors
    /// [`draft_log::Error::Conflict`] if another node appended meanwhile (follow, decide
    /// again, retry); other log errors.
    pub(crate) async fn append_if_followed(
        &self,
        record: &GroupRecord,
    ) -> draft_log::Result<Offset> {
        if !self.shared {
            return self.append(record).await;
        }
        let expected = self.followed().next;
        let ack = self
            .log
            .append_expecting(
                &self.partition,
                expected,
                vec![NewRecord::new(Bytes::from(record.encode()))],
            )
            .await?;
        self.appended(ack.first);
        Ok(ack.first)
    }

    fn appended(&self, at: Offset) {
        self.since_snapshot.fetch_add(1, Ordering::Relaxed);
        if self.shared {
            self.followed().own.insert(at.0);
        }
    }

    /// Whether the log still takes writes (it is read-only after a storage failure).
    pub(crate) fn is_writable(&self) -> bool {
        self.log.is_healthy()
    }

    /// Appends one record; resolves once it is durable.
    pub(crate) async fn append(&self, record: &GroupRecord) -> draft_log::Result<Offset> {
        let ack = self
            .log
            .append(
                &self.partition,
                vec![NewRecord::new(Bytes::from(record.encode()))],
            )
            .await?;
        self.appended(ack.first);
        Ok(ack.first)
    }

    /// Whether enough records were appended since the last snapshot to take another.
    pub(crate) fn snapshot_due(&self) -> bool {
        self.since_snapshot.load(Ordering::Relaxed) >= SNAPSHOT_EVERY
    }

    /// Appends a snapshot of `groups`, then removes every record before it. A failed trim is
    /// retried with the next snapshot (the partition is correct meanwhile, only longer). On
    /// a shared store, `groups` must be what was followed: another node's record appended
    /// since fails it with [`draft_log::Error::Conflict`] (the next tick tries again).
    pub(crate) async fn snapshot(&self, groups: Vec<Keyed>) -> draft_log::Result<()> {
        let at = self
            .append_if_followed(&GroupRecord::Snapshot { groups })
            .await?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        self.log.trim_before(&self.partition, at).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Commit, Settings};
    use super::*;
    use draft_log::{Log, LogConfig};

    fn keyed(group: &str) -> Keyed {
        Keyed {
            channel: "orders".into(),
            group: group.into(),
            state: StoredGroup {
                settings: Settings {
                    types: vec![],
                    sources: vec![],
                    timeout_ms: 30_000,
                },
                start: 0,
                committed: None,
                created_nanos: 1,
                revision: None,
                last_ack_nanos: None,
            },
        }
    }

    async fn open_log(dir: &std::path::Path) -> Arc<dyn LogBackend> {
        let config = LogConfig::new(dir);
        let log = tokio::task::spawn_blocking(move || Log::open(config))
            .await
            .expect("task")
            .expect("log");
        Arc::new(log)
    }

    /// However many acknowledgements are stored, the partition holds one snapshot and at
    /// most `SNAPSHOT_EVERY` records after it, and folds back into the same groups.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_partition_stays_bounded_and_reopens_to_the_same_groups() {
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path()).await;
        let (store, mut model) = Store::open(Arc::clone(&log), false).await.expect("open");
        assert!(model.is_empty());
        for name in ["a", "b"] {
            let created = GroupRecord::Created(keyed(name));
            store.append(&created).await.expect("append");
            record::apply(&mut model, created);
        }
        let partition = PartitionName::new(GROUPS_PARTITION).expect("name");
        for offset in 0..2_500u64 {
            let commit = GroupRecord::Committed {
                acks: vec![Commit {
                    channel: "orders".into(),
                    group: if offset % 2 == 0 { "a" } else { "b" }.into(),
                    offset,
                    time: offset,
                }],
            };
            store.append(&commit).await.expect("append");
            record::apply(&mut model, commit);
            if store.snapshot_due() {
                store
                    .snapshot(record::snapshot_of(&model))
                    .await
                    .expect("snapshot");
            }
            let head = log.head(&partition).await.expect("head").expect("exists");
            assert!(head.count() <= SNAPSHOT_EVERY + 1, "{head:?}");
        }
        let first = log.read(&partition, Offset(0), 1).await.expect("read");
        let first = GroupRecord::decode(&first[0].payload).expect("a record");
        assert!(matches!(first, GroupRecord::Snapshot { .. }), "{first:?}");
        drop(store);
        let (store, reopened) = Store::open(Arc::clone(&log), false).await.expect("reopen");
        assert_eq!(reopened, model);
        assert_eq!(
            reopened[&("orders".into(), "a".into())].committed,
            Some(2_498)
        );
        assert!(
            !store.snapshot_due(),
            "the count since the snapshot is rebuilt"
        );
    }

    /// Two nodes on one log: each hears only the other's records, and a snapshot that did
    /// not follow the other's last record is refused, so a trim never loses it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_store_hears_the_other_node_and_never_snapshots_past_it() {
        let dir = tempfile::tempdir().expect("dir");
        let log = open_log(dir.path()).await;
        let (a, _) = Store::open(Arc::clone(&log), true).await.expect("open a");
        let (b, _) = Store::open(Arc::clone(&log), true).await.expect("open b");
        let created = GroupRecord::Created(keyed("g"));
        a.append_if_followed(&created).await.expect("a creates");
        assert_eq!(a.follow().await.expect("follow"), vec![], "its own record");
        assert_eq!(b.follow().await.expect("follow"), vec![created.clone()]);
        let commit = GroupRecord::Committed {
            acks: vec![Commit {
                channel: "orders".into(),
                group: "g".into(),
                offset: 7,
                time: 1,
            }],
        };
        b.append(&commit).await.expect("b commits");
        let refused = a.snapshot(vec![keyed("g")]).await;
        assert!(
            matches!(refused, Err(draft_log::Error::Conflict { .. })),
            "{refused:?}"
        );
        assert_eq!(a.follow().await.expect("follow"), vec![commit.clone()]);
        a.snapshot(vec![keyed("g")]).await.expect("now it may");
        assert!(matches!(
            b.follow().await.expect("follow").as_slice(),
            [GroupRecord::Snapshot { .. }]
        ));
        // A node's own commit, not followed yet, stands in the way of its snapshot too
        // (so a tick follows again before snapshotting); following passes over it.
        b.append(&commit).await.expect("b commits again");
        let refused = b.snapshot(vec![keyed("g")]).await;
        assert!(
            matches!(refused, Err(draft_log::Error::Conflict { .. })),
            "{refused:?}"
        );
        assert_eq!(b.follow().await.expect("follow"), vec![], "its own record");
        b.snapshot(vec![keyed("g")]).await.expect("after following");
        let unshared = Store::open(Arc::clone(&log), false).await.expect("open");
        assert_eq!(unshared.0.follow().await.expect("follow"), vec![]);
    }
}
