//! The writer thread: the only code that writes to fjall.
//!
//! It takes the first queued command, drains everything else already queued (up to a bound,
//! waiting briefly for appenders it just acknowledged: see [`Writer::run`]), and commits all of
//! it as **one** fjall batch with **one** fsync: group commit. While that fsync runs, new
//! appends queue up and form the next group. Offsets are assigned here, in
//! queue order, so they are dense by construction; in-memory heads are published only after
//! the commit returns, so no reader sees an unacknowledged record.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjall::PersistMode;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, Stats};
use crate::dedup::{DedupWindow, Seen};
use crate::error::{Error, Result};
use crate::failure::StorageFailure;
use crate::frame;
use crate::partition::PartState;
use crate::record::{AppendAck, NewRecord, Offset, PartitionName, Timestamp};
use crate::store::Store;

/// The most payload bytes one group commit gathers before it writes.
const MAX_GROUP_BYTES: u64 = 16 * 1024 * 1024;
/// The most commands one group commit gathers before it writes.
const MAX_GROUP_COMMANDS: usize = 4096;

/// A request to the writer thread.
pub(crate) enum Command {
    /// Append `records` atomically (creating the partition if needed; an empty append only
    /// creates it), only if the partition's next offset is `expected` when one is given.
    Append {
        partition: PartitionName,
        records: Vec<NewRecord>,
        expected: Option<Offset>,
        reply: oneshot::Sender<Result<AppendAck>>,
    },
    /// Remove records from the front of `partition`: those before `before`, then more while it
    /// holds over `max_bytes`; at most `limit` items (records or frames) and about
    /// [`MAX_TRIM_BYTES`] in one command, so appends never wait long behind retention.
    Trim {
        partition: PartitionName,
        before: Offset,
        max_bytes: Option<u64>,
        limit: usize,
        reply: oneshot::Sender<Result<Trimmed>>,
    },
}

impl Command {
    fn payload_bytes(&self) -> u64 {
        match self {
            Self::Append { records, .. } => records.iter().map(record_bytes).sum(),
            Self::Trim { .. } => 0,
        }
    }
}

fn record_bytes(r: &NewRecord) -> u64 {
    (r.payload.len() + r.key.as_ref().map_or(0, bytes::Bytes::len)) as u64
}

/// An append taken from the queue, waiting for its group's commit.
pub(crate) struct Pending {
    partition: PartitionName,
    records: Vec<NewRecord>,
    expected: Option<Offset>,
    reply: oneshot::Sender<Result<AppendAck>>,
}

/// What one [`Command::Trim`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trimmed {
    /// How many records it removed.
    pub(crate) records: u64,
    /// Whether it stopped at its own limits rather than because retention was satisfied.
    pub(crate) more: bool,
}

/// About the most bytes of records one trim command reads and removes (each item removed is
/// read for its length).
pub(crate) const MAX_TRIM_BYTES: u64 = 16 * 1024 * 1024;

/// The longest a group waits for the appenders the previous group acknowledged to append
/// again (see [`Writer::run`]). It also never waits more than half as long as the previous
/// group took to commit, so it only waits where an fsync is slow enough to be worth filling.
const MAX_LINGER: Duration = Duration::from_micros(150);
/// The writer's own state: the authoritative copy of every partition's head.
pub(crate) struct Writer {
    store: Arc<Store>,
    parts: HashMap<PartitionName, PartState>,
    /// The dedup ids appended lately, per partition (only partitions appended with ids).
    dedup: HashMap<PartitionName, DedupWindow>,
    next_pid: u32,
    sync: bool,
    max_append_bytes: u64,
    /// Reused to encode each record's value (fjall copies it into the batch).
    value_buf: Vec<u8>,
    /// The frame being built (reused).
    frame_buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(store: Arc<Store>, sync: bool, max_append_bytes: u64) -> Self {
        let parts = store.snapshot_heads();
        let next_pid = parts.values().map(|s| s.pid + 1).max().unwrap_or(0);
        Self {
            store,
            parts,
            dedup: HashMap::new(),
            next_pid,
            sync,
            max_append_bytes,
            value_buf: Vec::new(),
            frame_buf: Vec::new(),
        }
    }

    /// Runs until every sender is gone, then marks the store closed.
    ///
    /// Each group takes the first queued command and everything queued behind it. With
    /// appenders that append again as soon as they are acknowledged (a producer sending one
    /// event after another), that alone splits them into two half-size groups that alternate:
    /// those acknowledged by one commit re-queue while the next commit, holding the others,
    /// runs. So a group that has fewer commands than the previous one acknowledged waits a
    /// little (at most [`MAX_LINGER`], and at most half the previous commit's duration) for
    /// them; appenders unpark this thread after each send. Measured here with 64 appenders:
    /// average group 32 → 62 commands, +15-40% appends per second.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut expected = 1;
        let mut last_commit = Duration::ZERO;
        while let Some(first) = rx.blocking_recv() {
            let started = Instant::now();
            let linger = MAX_LINGER.min(last_commit / 2);
            let mut bytes = first.payload_bytes();
            let mut group = vec![first];
            while bytes < MAX_GROUP_BYTES && group.len() < MAX_GROUP_COMMANDS {
                match rx.try_recv() {
                    Ok(cmd) => {
                        bytes += cmd.payload_bytes();
                        group.push(cmd);
                    }
                    Err(TryRecvError::Empty) if group.len() < expected => {
                        match linger.checked_sub(started.elapsed()) {
                            Some(left) if !left.is_zero() => std::thread::park_timeout(left),
                            _ => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            expected = group.len();
            let committing = Instant::now();
            self.handle_group(group);
            last_commit = committing.elapsed();
        }
        self.store.close();
    }

    fn handle_group(&mut self, group: Vec<Command>) {
        let mut appends = Vec::with_capacity(group.len());
        for cmd in group {
            match cmd {
                Command::Append {
                    partition,
                    records,
                    expected,
                    reply,
                } => {
                    let bytes: u64 = records.iter().map(record_bytes).sum();
                    if bytes > self.max_append_bytes {
                        let limit = self.max_append_bytes;
                        let _ = reply.send(Err(Error::TooLarge { bytes, limit }));
                    } else {
                        appends.push(Pending {
                            partition,
                            records,
                            expected,
                            reply,
                        });
                    }
                }
                Command::Trim {
                    partition,
                    before,
                    max_bytes,
                    limit,
                    reply,
                } => {
                    let _ = reply.send(self.trim(&partition, before, max_bytes, limit));
                }
            }
        }
        if appends.is_empty() {
            return;
        }
        // Once a write failed the log is read-only (see `crate::failure`): every append gets
        // the first failure, without asking fjall, which would only say "poisoned".
        if let Err(e) = self.store.check_writable() {
            for append in appends {
                let _ = append.reply.send(Err(e.clone()));
            }
            return;
        }
        self.append_group(appends);
    }

    /// `Sync`: `SyncAll` (fsync). `SyncData` (fdatasync) would be as durable on Linux for this
    /// preallocated journal, but measured no faster here: nearly every group commit allocates
    /// journal blocks, which fdatasync must write as well.
    ///
    /// `Buffered`: `Buffer`, the journal's in-process buffer handed to the OS at every commit
    /// (fjall otherwise keeps up to 8 KiB of it until the periodic fsync), so a crash of the
    /// process loses nothing acknowledged; only a power cut or an OS crash may lose up to the
    /// flush interval.
    fn durability(&self) -> PersistMode {
        if self.sync {
            PersistMode::SyncAll
        } else {
            PersistMode::Buffer
        }
    }

    /// Writes every append of the group in one batch with one fsync, then acknowledges each.
    ///
    /// Each append is first checked against the partition as the group leaves it so far: its
    /// dedup ids (a retry is acknowledged with the earlier offsets, and stores nothing) and
    /// its expected next offset (compare-and-set). Both checks see the appends before it in
    /// the same group, so they are exact.
    fn append_group(&mut self, appends: Vec<Pending>) {
        let now = Timestamp::now();
        let items = appends.iter().map(|a| a.records.len() + 1).sum();
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.store.db.clone(), items)
            .durability(Some(self.durability()));
        let mut touched: HashMap<PartitionName, PartState> = HashMap::new();
        // The dedup ids this group appends, remembered once it has committed.
        let mut fresh: HashMap<PartitionName, DedupWindow> = HashMap::new();
        let mut next_pid = self.next_pid;
        let mut acks = Vec::with_capacity(appends.len());
        for Pending {
            partition,
            records,
            expected,
            reply,
        } in appends
        {
            let current = touched
                .get(&partition)
                .or_else(|| self.parts.get(&partition))
                .map_or(Offset(0), PartState::next);
            match self.admit(&partition, &records, expected, current, &fresh) {
                Ok(None) => {}
                Ok(Some(ack)) => {
                    acks.push((reply, ack));
                    continue;
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    continue;
                }
            }
            let with_ids = records.iter().any(|r| r.dedup_id.is_some());
            // `entry` takes the name by value: no clone per append (but one for the ids).
            let name = with_ids.then(|| partition.clone());
            let state = match touched.entry(partition) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let state = self.parts.get(e.key()).copied().unwrap_or_else(|| {
                        batch.insert(
                            &self.store.meta,
                            codec::name_key(e.key()),
                            next_pid.to_be_bytes(),
                        );
                        next_pid += 1;
                        PartState::new(next_pid - 1)
                    });
                    e.insert(state)
                }
            };
            // Append times never go backwards within a partition (time lookups rely on it),
            // even if the machine's clock does.
            let time = now.max(Timestamp::from_unix_nanos(state.stats.last_time));
            let first = state.next();
            self.stage_records(&mut batch, &mut state.stats, state.pid, time, &records);
            if !records.is_empty() {
                state.stats.last_time = time.as_unix_nanos();
            }
            if let Some(name) = name {
                fresh
                    .entry(name)
                    .or_default()
                    .remember(&records, first, time);
            }
            acks.push((
                reply,
                AppendAck {
                    first,
                    count: records.len() as u64,
                    time,
                },
            ));
        }
        for state in touched.values() {
            batch.insert(
                &self.store.meta,
                codec::stats_key(state.pid),
                state.stats.encode(),
            );
        }
        match batch.commit() {
            Ok(()) => {
                self.next_pid = next_pid;
                for (partition, ids) in fresh {
                    self.dedup.entry(partition).or_default().absorb(ids);
                }
                self.parts
                    .extend(touched.iter().map(|(p, s)| (p.clone(), *s)));
                self.store.publish(touched);
                for (reply, ack) in acks {
                    let _ = reply.send(Ok(ack));
                }
            }
            Err(e) => {
                // Nothing is published: readers never see the records of this group, and the
                // next open finds (at most) a torn journal tail that fjall cuts off. `fail`
                // logs the first failure.
                let err = self.store.fail(StorageFailure::new("append", &e));
                for (reply, _) in acks {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Decides whether one append goes ahead (`Ok(None)`), is a retry of an earlier one (its
    /// acknowledgement), or is refused: a mix of seen and unseen dedup ids, or a next offset
    /// other than `expected`. `current` is the partition's next offset as the group leaves it,
    /// `fresh` the ids the group appends before this append.
    fn admit(
        &self,
        partition: &PartitionName,
        records: &[NewRecord],
        expected: Option<Offset>,
        current: Offset,
        fresh: &HashMap<PartitionName, DedupWindow>,
    ) -> Result<Option<AppendAck>> {
        if records.iter().any(|r| r.dedup_id.is_some()) {
            let windows = [self.dedup.get(partition), fresh.get(partition)];
            for window in windows.into_iter().flatten() {
                match window.check(records) {
                    Seen::New => {}
                    Seen::Duplicate(ack) => return Ok(Some(ack)),
                    Seen::Mixed(offset) => {
                        return Err(Error::DuplicateMismatch {
                            partition: partition.to_string(),
                            offset,
                        });
                    }
                }
            }
        }
        match expected {
            Some(expected) if expected != current => Err(Error::Conflict {
                partition: partition.to_string(),
                expected,
                next: current,
            }),
            _ => Ok(None),
        }
    }

    /// Adds the records of one append to `batch` at the partition's next offsets: one record
    /// as itself, several as frames of up to [`frame::MAX_FRAME_BYTES`] (see [`frame`]).
    fn stage_records(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
        stats: &mut Stats,
        pid: u32,
        time: Timestamp,
        records: &[NewRecord],
    ) {
        let mut rest = records;
        while !rest.is_empty() {
            let first = Offset(stats.next);
            let mut taken = 0;
            self.frame_buf.clear();
            for record in rest {
                let offset = Offset(stats.next);
                codec::encode_record_into(
                    &mut self.value_buf,
                    pid,
                    offset,
                    time,
                    record.key.as_deref(),
                    &record.payload,
                );
                let full = self.frame_buf.len() + self.value_buf.len() > frame::MAX_FRAME_BYTES;
                if taken > 0 && full {
                    break;
                }
                frame::push_record(&mut self.frame_buf, &self.value_buf);
                stats.next += 1;
                taken += 1;
            }
            rest = &rest[taken..];
            if taken == 1 {
                // A record alone is stored as itself: its value, without the frame's prefix.
                let value = &self.frame_buf[frame::LEN_PREFIX..];
                stats.bytes += value.len() as u64;
                batch.insert(&self.store.records, codec::record_key(pid, first), value);
            } else {
                stats.bytes += self.frame_buf.len() as u64;
                let last = Offset(stats.next - 1);
                batch.insert(
                    &self.store.records,
                    frame::frame_key(pid, first, last),
                    &self.frame_buf[..],
                );
            }
        }
    }

    /// Removes records from the front of a partition (see [`Command::Trim`]).
    fn trim(
        &mut self,
        partition: &PartitionName,
        before: Offset,
        max_bytes: Option<u64>,
        limit: usize,
    ) -> Result<Trimmed> {
        let mut done = Trimmed {
            records: 0,
            more: false,
        };
        self.store.check_writable()?;
        let Some(old) = self.parts.get(partition).copied() else {
            return Ok(done);
        };
        let mut state = old;
        let range =
            codec::record_key(state.pid, state.first())..codec::record_key(state.pid, state.next());
        let mut batch = self.store.db.batch().durability(Some(self.durability()));
        let (mut items, mut freed) = (0, 0u64);
        // Whole items only: a frame goes once all its records are before `before` (time-based
        // retention never splits one: its records share their append time) or while the
        // partition is over `max_bytes`.
        for guard in self.store.records.range(range) {
            if items == limit || freed >= MAX_TRIM_BYTES {
                done.more = true;
                break;
            }
            let (raw_key, value) = guard.into_inner().map_err(|e| Error::storage("trim", e))?;
            let key = frame::parse_item_key(&raw_key)
                .filter(|k| k.pid == state.pid && k.first == state.first())
                .ok_or_else(|| Error::Corrupt {
                    partition: partition.to_string(),
                    offset: state.first(),
                    reason: "malformed or misplaced record key".to_owned(),
                })?;
            let over_bytes = max_bytes.is_some_and(|max| state.stats.bytes > max);
            if key.last >= before && !over_bytes {
                break;
            }
            batch.remove(&self.store.records, raw_key);
            state.stats.bytes = state.stats.bytes.saturating_sub(value.len() as u64);
            state.stats.first = key.last.next().0;
            done.records += key.count();
            items += 1;
            freed += value.len() as u64;
        }
        if done.records == 0 {
            return Ok(done);
        }
        batch.insert(
            &self.store.meta,
            codec::stats_key(state.pid),
            state.stats.encode(),
        );
        // Readers stop at the new first offset before the records go, so none finds a record
        // missing in between; if the commit fails, the old head comes back.
        self.store.publish([(partition.clone(), state)]);
        if let Err(e) = batch.commit() {
            self.store.publish([(partition.clone(), old)]);
            return Err(self.store.fail(StorageFailure::new("trim", &e)));
        }
        self.parts.insert(partition.clone(), state);
        Ok(done)
    }
}
