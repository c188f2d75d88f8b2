//! Group commit: appends to one partition that arrive while others are being stored go out
//! together as one atomic batch publish, up to [`MAX_BATCH`] records and [`GROUP_BYTES`], as
//! fjall's writer puts concurrent appends into one commit. JetStream's cost is per publish
//! and per batch far more than per byte, so 64 producers of single events pay about one
//! batch per round of them, not one publish each.
//!
//! An append keeps its records together and in order (a batch is stored whole), so each
//! gets its own dense offsets from the group's. A group whose first attempt JetStream
//! refuses because some of its dedup ids are stored already (a retry grouped with new
//! appends) stored nothing, so it is stored again append by append, and each append gets
//! the answer it would have had alone. Any other failure is every append's answer: the
//! group may have landed (an acknowledgement lost), and a record without a dedup id sent
//! again alone would be stored twice. Compare-and-set appends are never grouped: each
//! expects its own head.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use draft_log::{AppendAck, AppendLimits, NewRecord, Offset, PartitionName};
use futures::future::join_all;
use tokio::sync::oneshot;

use crate::append::{self, MAX_BATCH};
use crate::error::{Error, Result};
use crate::stream::Streams;

/// The most groups of one partition being stored at once (JetStream takes 50 batches in
/// flight per stream, from every client).
const IN_FLIGHT: usize = 8;
/// The most bytes one group holds.
pub(crate) const GROUP_BYTES: u64 = 4 * 1024 * 1024;

/// One append waiting for its group.
struct Pending {
    records: Vec<NewRecord>,
    bytes: u64,
    reply: oneshot::Sender<Result<AppendAck>>,
}

/// The appends of one partition waiting, and how many groups of it are being stored.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    storing: usize,
}

/// The group commit of every partition.
pub(crate) struct Grouper {
    streams: Arc<Streams>,
    limits: AppendLimits,
    queues: Mutex<HashMap<PartitionName, Queue>>,
    counts: Counts,
}

/// What group commit has done since the backend connected (see [`GroupCommit`]).
#[derive(Default)]
struct Counts {
    groups: AtomicU64,
    grouped_appends: AtomicU64,
    fallbacks: AtomicU64,
}

/// What group commit has done since the backend connected
/// ([`JetStream::group_commit`](crate::JetStream::group_commit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCommit {
    /// Groups of two or more appends stored as one atomic batch.
    pub groups: u64,
    /// The appends those groups held.
    pub grouped_appends: u64,
    /// Groups stored again append by append, because their first attempt repeated dedup ids
    /// stored already.
    pub fallbacks: u64,
}

fn size(records: &[NewRecord]) -> u64 {
    records
        .iter()
        .map(|r| (r.payload.len() + r.key.as_ref().map_or(0, Bytes::len)) as u64)
        .sum()
}

/// Whether an append is stored alone: nothing to share, or big enough to fill a group.
fn alone(records: &[NewRecord], bytes: u64) -> bool {
    records.is_empty() || records.len() > MAX_BATCH / 2 || bytes > GROUP_BYTES / 2
}

/// Takes the appends at the front of `waiting` that fit in one group (at least one). A group
/// never holds one dedup id twice: JetStream would store it once, and the offsets of what
/// follows it would be off by one.
fn take_group(waiting: &mut VecDeque<Pending>) -> Vec<Pending> {
    let (mut records, mut bytes) = (0, 0);
    let mut ids: HashSet<Bytes> = HashSet::new();
    let mut group = Vec::new();
    while let Some(next) = waiting.front() {
        let fits = records + next.records.len() <= MAX_BATCH && bytes + next.bytes <= GROUP_BYTES;
        let repeats = next
            .records
            .iter()
            .filter_map(|r| r.dedup_id.as_ref())
            .any(|id| ids.contains(id));
        if !group.is_empty() && (!fits || repeats) {
            break;
        }
        records += next.records.len();
        bytes += next.bytes;
        ids.extend(next.records.iter().filter_map(|r| r.dedup_id.clone()));
        group.extend(waiting.pop_front());
    }
    group
}

/// One task storing groups of a partition, counted in its queue's `storing` until it ends,
/// however it ends: a task that panicked fails the appends still waiting rather than leave
/// them to wait for a task that will not come.
struct Storing<'a> {
    grouper: &'a Grouper,
    partition: &'a PartitionName,
}

impl Drop for Storing<'_> {
    fn drop(&mut self) {
        let mut queues = self.grouper.queues();
        let Some(queue) = queues.get_mut(self.partition) else {
            return;
        };
        queue.storing -= 1;
        if std::thread::panicking() {
            for pending in queue.waiting.drain(..) {
                let _ = pending.reply.send(Err(Error::Protocol {
                    op: "append",
                    reason: "the group commit of the partition failed".into(),
                }));
            }
        }
        if queue.storing == 0 && queue.waiting.is_empty() {
            queues.remove(self.partition);
        }
    }
}

/// The acknowledgement of each append of a group stored at `ack`, from the record counts.
fn split(ack: &AppendAck, counts: &[usize]) -> Vec<AppendAck> {
    let mut first = ack.first;
    counts
        .iter()
        .map(|count| {
            let one = AppendAck {
                first,
                count: *count as u64,
                time: ack.time,
            };
            first = Offset(first.0 + *count as u64);
            one
        })
        .collect()
}

impl Grouper {
    /// Group commit for the streams of `streams`, within `limits`.
    pub(crate) fn new(streams: Arc<Streams>, limits: AppendLimits) -> Arc<Self> {
        Arc::new(Self {
            streams,
            limits,
            queues: Mutex::new(HashMap::new()),
            counts: Counts::default(),
        })
    }

    /// What group commit has done so far.
    pub(crate) fn counts(&self) -> GroupCommit {
        GroupCommit {
            groups: self.counts.groups.load(Ordering::Relaxed),
            grouped_appends: self.counts.grouped_appends.load(Ordering::Relaxed),
            fallbacks: self.counts.fallbacks.load(Ordering::Relaxed),
        }
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<PartitionName, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `records` to `partition`, in a group with the appends to it that wait.
    pub(crate) async fn append(
        self: &Arc<Self>,
        partition: &PartitionName,
        records: Vec<NewRecord>,
    ) -> Result<AppendAck> {
        let bytes = size(&records);
        if alone(&records, bytes) {
            return append::append(&self.streams, self.limits, partition, None, records).await;
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queues = self.queues();
            let queue = queues.entry(partition.clone()).or_default();
            queue.waiting.push_back(Pending {
                records,
                bytes,
                reply,
            });
            let start = queue.storing < IN_FLIGHT;
            if start {
                queue.storing += 1;
            }
            start
        };
        if start {
            tokio::spawn(Arc::clone(self).store(partition.clone()));
        }
        answer.await.map_err(|_| Error::Protocol {
            op: "append",
            reason: "the group commit of the partition stopped".into(),
        })?
    }

    /// Stores groups of `partition` until none waits.
    async fn store(self: Arc<Self>, partition: PartitionName) {
        let storing = Storing {
            grouper: &self,
            partition: &partition,
        };
        loop {
            let group = {
                let mut queues = self.queues();
                let Some(queue) = queues.get_mut(&partition) else {
                    return;
                };
                let group = take_group(&mut queue.waiting);
                if group.is_empty() {
                    return;
                }
                group
            };
            storing.grouper.store_group(&partition, group).await;
        }
    }

    async fn store_group(&self, partition: &PartitionName, mut group: Vec<Pending>) {
        if group.len() == 1 {
            let pending = group.remove(0);
            let alone =
                append::append(&self.streams, self.limits, partition, None, pending.records).await;
            let _ = pending.reply.send(alone);
            return;
        }
        let counts: Vec<usize> = group.iter().map(|p| p.records.len()).collect();
        let records: Vec<NewRecord> = group
            .iter()
            .flat_map(|p| p.records.iter().cloned())
            .collect();
        match append::append_group(&self.streams, self.limits, partition, records).await {
            Ok(Some(ack)) => {
                self.counts.groups.fetch_add(1, Ordering::Relaxed);
                self.counts
                    .grouped_appends
                    .fetch_add(counts.len() as u64, Ordering::Relaxed);
                for (pending, ack) in group.into_iter().zip(split(&ack, &counts)) {
                    let _ = pending.reply.send(Ok(ack));
                }
            }
            Ok(None) => {
                self.counts.fallbacks.fetch_add(1, Ordering::Relaxed);
                join_all(group.into_iter().map(|pending| async move {
                    let alone = append::append(
                        &self.streams,
                        self.limits,
                        partition,
                        None,
                        pending.records,
                    )
                    .await;
                    let _ = pending.reply.send(alone);
                }))
                .await;
            }
            Err(e) => {
                for pending in group {
                    let _ = pending.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(records: usize, bytes_each: usize) -> Pending {
        let records: Vec<NewRecord> = (0..records)
            .map(|_| NewRecord::new(vec![0u8; bytes_each]))
            .collect();
        Pending {
            bytes: size(&records),
            records,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn a_group_takes_whole_appends_in_order_up_to_its_limits() {
        let mut waiting: VecDeque<Pending> = [600, 300, 200, 5]
            .map(|n| pending(n, 10))
            .into_iter()
            .collect();
        let group = take_group(&mut waiting);
        let counts: Vec<usize> = group.iter().map(|p| p.records.len()).collect();
        assert_eq!(counts, [600, 300], "the next whole append would pass 1,000");
        let group = take_group(&mut waiting);
        assert_eq!(group.iter().map(|p| p.records.len()).sum::<usize>(), 205);
        assert!(take_group(&mut waiting).is_empty());

        let mut big: VecDeque<Pending> = [pending(1, 3 * 1024 * 1024), pending(1, 2 * 1024 * 1024)]
            .into_iter()
            .collect();
        assert_eq!(take_group(&mut big).len(), 1, "bytes bound a group too");
        assert_eq!(
            take_group(&mut big).len(),
            1,
            "an append is never left behind"
        );
    }

    #[test]
    fn each_append_gets_its_own_dense_offsets() {
        let ack = AppendAck {
            first: Offset(10),
            count: 6,
            time: draft_log::Timestamp::now(),
        };
        let acks = split(&ack, &[1, 3, 2]);
        let firsts: Vec<(u64, u64)> = acks.iter().map(|a| (a.first.0, a.count)).collect();
        assert_eq!(firsts, [(10, 1), (11, 3), (14, 2)]);
        assert!(acks.iter().all(|a| a.time == ack.time));
    }

    #[test]
    fn big_or_empty_appends_go_alone() {
        assert!(alone(&[], 0));
        let many: Vec<NewRecord> = (0..=MAX_BATCH / 2).map(|_| NewRecord::new("x")).collect();
        assert!(alone(&many, size(&many)));
        assert!(!alone(&many[..10], size(&many[..10])));
        assert!(alone(&many[..1], GROUP_BYTES / 2 + 1));
    }
}
