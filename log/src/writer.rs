//! The writer thread: the only code that writes to fjall.
//!
//! It takes the first queued command, drains everything else already queued (up to a bound),
//! and commits all of it as **one** fjall batch with **one** fsync: group commit. While that
//! fsync runs, new appends queue up and form the next group. Offsets are assigned here, in
//! queue order, so they are dense by construction; in-memory heads are published only after
//! the commit returns, so no reader sees an unacknowledged record.

use std::collections::HashMap;
use std::sync::Arc;

use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::codec;
use crate::error::{Error, Result};
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
    /// creates it).
    Append {
        partition: PartitionName,
        records: Vec<NewRecord>,
        reply: oneshot::Sender<Result<AppendAck>>,
    },
    /// Remove records from the front of `partition`: those before `before`, then more while it
    /// holds over `max_bytes`; at most `limit` records in one command, so appends never wait
    /// long behind retention. Replies with how many were removed.
    Trim {
        partition: PartitionName,
        before: Offset,
        max_bytes: Option<u64>,
        limit: usize,
        reply: oneshot::Sender<Result<u64>>,
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

/// The writer's own state: the authoritative copy of every partition's head.
pub(crate) struct Writer {
    store: Arc<Store>,
    parts: HashMap<PartitionName, PartState>,
    next_pid: u32,
    sync: bool,
    max_append_bytes: u64,
}

impl Writer {
    pub(crate) fn new(store: Arc<Store>, sync: bool, max_append_bytes: u64) -> Self {
        let parts = store.snapshot_heads();
        let next_pid = parts.values().map(|s| s.pid + 1).max().unwrap_or(0);
        Self {
            store,
            parts,
            next_pid,
            sync,
            max_append_bytes,
        }
    }

    /// Runs until every sender is gone, then marks the store closed.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = first.payload_bytes();
            let mut group = vec![first];
            while bytes < MAX_GROUP_BYTES && group.len() < MAX_GROUP_COMMANDS {
                let Ok(cmd) = rx.try_recv() else { break };
                bytes += cmd.payload_bytes();
                group.push(cmd);
            }
            self.handle_group(group);
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
                    reply,
                } => {
                    let bytes: u64 = records.iter().map(record_bytes).sum();
                    if bytes > self.max_append_bytes {
                        let limit = self.max_append_bytes;
                        let _ = reply.send(Err(Error::TooLarge { bytes, limit }));
                    } else {
                        appends.push((partition, records, reply));
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
        if !appends.is_empty() {
            self.append_group(appends);
        }
    }

    fn durability(&self) -> Option<PersistMode> {
        self.sync.then_some(PersistMode::SyncAll)
    }

    /// Writes every append of the group in one batch with one fsync, then acknowledges each.
    #[allow(clippy::type_complexity)]
    fn append_group(
        &mut self,
        appends: Vec<(
            PartitionName,
            Vec<NewRecord>,
            oneshot::Sender<Result<AppendAck>>,
        )>,
    ) {
        let now = Timestamp::now();
        let mut batch = self.store.db.batch().durability(self.durability());
        let mut touched: HashMap<PartitionName, PartState> = HashMap::new();
        let mut next_pid = self.next_pid;
        let mut acks = Vec::with_capacity(appends.len());
        for (partition, records, reply) in appends {
            let state = touched.entry(partition.clone()).or_insert_with(|| {
                self.parts.get(&partition).copied().unwrap_or_else(|| {
                    let state = PartState::new(next_pid);
                    batch.insert(
                        &self.store.meta,
                        codec::name_key(&partition),
                        next_pid.to_be_bytes(),
                    );
                    next_pid += 1;
                    state
                })
            });
            // Append times never go backwards within a partition (time lookups rely on it),
            // even if the machine's clock does.
            let time = now.max(Timestamp::from_unix_nanos(state.stats.last_time));
            let first = state.next();
            for record in &records {
                let offset = Offset(state.stats.next);
                let value = codec::encode_record(
                    state.pid,
                    offset,
                    time,
                    record.key.as_deref(),
                    &record.payload,
                );
                state.stats.bytes += value.len() as u64;
                batch.insert(
                    &self.store.records,
                    codec::record_key(state.pid, offset),
                    value,
                );
                state.stats.next += 1;
            }
            if !records.is_empty() {
                state.stats.last_time = time.as_unix_nanos();
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
                self.parts
                    .extend(touched.iter().map(|(p, s)| (p.clone(), *s)));
                self.store.publish(touched);
                for (reply, ack) in acks {
                    let _ = reply.send(Ok(ack));
                }
            }
            Err(e) => {
                error!(error = ?e, "group commit failed; the log refuses writes until reopened");
                let err = Error::storage("append", e);
                for (reply, _) in acks {
                    let _ = reply.send(Err(err.clone()));
                }
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
    ) -> Result<u64> {
        let Some(mut state) = self.parts.get(partition).copied() else {
            return Ok(0);
        };
        let range =
            codec::record_key(state.pid, state.first())..codec::record_key(state.pid, state.next());
        let mut batch = self.store.db.batch().durability(self.durability());
        let mut removed = 0u64;
        for guard in self.store.records.range(range).take(limit) {
            let over_bytes = max_bytes.is_some_and(|max| state.stats.bytes > max);
            if state.first() >= before && !over_bytes {
                break;
            }
            let (key, value) = guard.into_inner().map_err(|e| Error::storage("trim", e))?;
            batch.remove(&self.store.records, key);
            state.stats.bytes = state.stats.bytes.saturating_sub(value.len() as u64);
            state.stats.first += 1;
            removed += 1;
        }
        if removed == 0 {
            return Ok(0);
        }
        batch.insert(
            &self.store.meta,
            codec::stats_key(state.pid),
            state.stats.encode(),
        );
        batch.commit().map_err(|e| Error::storage("trim", e))?;
        self.parts.insert(partition.clone(), state);
        self.store.publish([(partition.clone(), state)]);
        Ok(removed)
    }
}
