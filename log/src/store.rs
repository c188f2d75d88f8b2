//! The state shared by the writer thread, the readers and the background threads: the fjall
//! database, its two keyspaces and the in-memory heads of every partition.
//!
//! Only the writer thread changes `heads`. It raises `next` only after a batch is committed
//! (and, in `Sync` mode, fsync'ed), so a reader clamped to `heads` never sees an
//! unacknowledged record; it raises `first` (retention) just before the records go, so a
//! reader never looks for records that are being removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::watch;
use tracing::error;

use crate::codec::{self, Stats};
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::failure::StorageFailure;
use crate::frame::{self, ItemKey};
use crate::partition::PartState;
use crate::record::{Offset, PartitionHead, PartitionName, Record, Timestamp};

/// The most journal bytes kept before memtables are flushed (fjall's minimum is 64 MiB).
const JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// The log's shared state.
pub(crate) struct Store {
    pub(crate) db: Database,
    pub(crate) records: Keyspace,
    pub(crate) meta: Keyspace,
    heads: RwLock<HashMap<PartitionName, PartState>>,
    /// Bumped after every commit and when the log closes; tails wait on it.
    pub(crate) committed: watch::Sender<u64>,
    closed: AtomicBool,
    /// The first write that failed: fjall refuses every later write until the log is
    /// reopened, and so does the log (see [`crate::failure`]).
    failure: OnceLock<StorageFailure>,
}

impl Store {
    /// Opens (or creates) the database and rebuilds every partition's head from the meta
    /// keyspace, checking each against its records. Costs O(partitions), not O(records).
    pub(crate) fn open(config: &LogConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| Error::storage("create the data directory", fjall::Error::Io(e)))?;
        // fjall's recovery has assertions of its own (in debug builds, a garbled journal
        // entry length trips one): a damaged data directory must be an error, not a crash.
        let (db, records, meta) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_database(config)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    error!(dir = %config.dir.display(), panic = message,
                        "the storage engine panicked while recovering the data directory");
                    Err(Error::storage(
                        "recover the database (the storage engine panicked on its files)",
                        fjall::Error::Unrecoverable,
                    ))
                })?;
        check_format(&db, &meta)?;
        let heads = load_heads(&records, &meta)?;
        Ok(Self {
            db,
            records,
            meta,
            heads: RwLock::new(heads),
            committed: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            failure: OnceLock::new(),
        })
    }

    /// A copy of every partition's state (the writer's starting point).
    pub(crate) fn snapshot_heads(&self) -> HashMap<PartitionName, PartState> {
        self.heads_read().clone()
    }

    /// Publishes states the writer just committed, then wakes every tail.
    pub(crate) fn publish(&self, changed: impl IntoIterator<Item = (PartitionName, PartState)>) {
        {
            // Short critical section: map inserts only, no I/O.
            let mut heads = self
                .heads
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            heads.extend(changed);
        }
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Marks the log closed and wakes every tail so it can end.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records that a write failed (the log refuses writes from now on) and returns the
    /// error every write now gets: the *first* failure, whichever this one is.
    pub(crate) fn fail(&self, failure: StorageFailure) -> Error {
        let first = self.failure.get_or_init(|| {
            error!(failure = %failure, "a write to disk failed; the log is read-only until reopened");
            failure
        });
        Error::ReadOnly(first.clone())
    }

    /// The first write that failed since the log was opened, if one did.
    pub(crate) fn failure(&self) -> Option<&StorageFailure> {
        self.failure.get()
    }

    /// `Err(ReadOnly)` once a write has failed: what a write must check before it starts.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.failure()
            .map_or(Ok(()), |f| Err(Error::ReadOnly(f.clone())))
    }

    fn heads_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PartitionName, PartState>> {
        // A panic while holding the lock cannot leave the map half-updated (extend of Copy
        // values), so a poisoned lock is still consistent.
        self.heads
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn state(&self, partition: &PartitionName) -> Option<PartState> {
        self.heads_read().get(partition).copied()
    }

    pub(crate) fn head(&self, partition: &PartitionName) -> Option<PartitionHead> {
        self.state(partition).map(|s| s.head(partition))
    }

    pub(crate) fn heads(&self) -> Vec<PartitionHead> {
        let mut heads: Vec<_> = self.heads_read().iter().map(|(p, s)| s.head(p)).collect();
        heads.sort_by(|a, b| a.partition.cmp(&b.partition));
        heads
    }

    /// Reads up to `limit` acknowledged records of `partition` from `from` on. Reading below
    /// the first stored offset (removed by retention) starts at the first stored one.
    pub(crate) fn read(
        &self,
        partition: &PartitionName,
        from: Offset,
        limit: usize,
    ) -> Result<Vec<Record>> {
        let Some(state) = self.state(partition) else {
            return Ok(Vec::new());
        };
        let start = from.max(state.first());
        let end = state.next().0.min(start.0.saturating_add(limit as u64));
        if start.0 >= end {
            return Ok(Vec::new());
        }
        // Begin at the item that holds `start` (a frame may begin before it): a 12-byte key
        // sorts before every item that begins at its offset.
        let begin = self
            .item_holding(partition, state.pid, start)?
            .map_or(start, |(key, _)| key.first);
        let range = codec::record_key(state.pid, begin)..codec::record_key(state.pid, Offset(end));
        let mut out = Vec::with_capacity((end - start.0) as usize);
        let mut expected: Option<Offset> = None;
        for guard in self.records.range(range) {
            let (raw_key, value) = guard
                .into_inner()
                .map_err(|e| Error::storage("read records", e))?;
            let key = parse_key(partition, state.pid, &raw_key, expected.unwrap_or(start))?;
            // Dense offsets: each item must follow the previous one, and the first must hold
            // `start`. A gap is retention at work only if the partition now begins at or after
            // the item found (fjall's iterator sees a trim committed while it runs): the read
            // then ends before the gap, and the caller goes on from the new first offset.
            let in_place = match expected {
                Some(next) => key.first == next,
                None => key.holds(start),
            };
            if !in_place {
                let gap_at = expected.unwrap_or(start);
                let trimmed = key.first > gap_at
                    && self
                        .state(partition)
                        .is_some_and(|s| s.first() >= key.first);
                if !trimmed {
                    return Err(missing(partition, gap_at));
                }
                if expected.is_some() {
                    return Ok(out);
                }
            }
            frame::decode_item(partition, key, &value, start.0..end, &mut out)?;
            expected = Some(key.last.next());
        }
        // The items must reach `end` too (unless retention removed them meanwhile).
        let reached = expected.unwrap_or(start);
        if reached.0 < end && self.state(partition).is_none_or(|s| s.first() <= reached) {
            return Err(missing(partition, reached));
        }
        Ok(out)
    }

    /// The item (single record or frame) of partition `pid` that holds `offset`, if one does.
    fn item_holding(
        &self,
        partition: &PartitionName,
        pid: u32,
        offset: Offset,
    ) -> Result<Option<(ItemKey, fjall::Slice)>> {
        let range = codec::record_key(pid, Offset(0)).to_vec()
            ..=frame::covering_bound(pid, offset).to_vec();
        let Some(guard) = self.records.range(range).next_back() else {
            return Ok(None);
        };
        let (raw_key, value) = guard
            .into_inner()
            .map_err(|e| Error::storage("read a record", e))?;
        let key = parse_key(partition, pid, &raw_key, offset)?;
        Ok(key.holds(offset).then_some((key, value)))
    }

    /// The append time of the record at `offset`, if it is stored.
    fn time_at(
        &self,
        partition: &PartitionName,
        pid: u32,
        offset: Offset,
    ) -> Result<Option<Timestamp>> {
        self.item_holding(partition, pid, offset)?
            .map(|(key, value)| frame::decode_time(partition, key, &value, offset))
            .transpose()
    }

    /// The first stored offset whose append time is at or after `time`, or `None` if every
    /// record is older. Append times never decrease within a partition, so this is a binary
    /// search of O(log n) point reads.
    pub(crate) fn offset_at_time(
        &self,
        partition: &PartitionName,
        time: Timestamp,
    ) -> Result<Option<Offset>> {
        let Some(state) = self.state(partition) else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (state.first().0, state.next().0);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.time_at(partition, state.pid, Offset(mid))? {
                Some(t) if t >= time => hi = mid,
                // Older, or removed by retention since we read the head (so older than
                // anything left): the answer is further on.
                Some(_) | None => lo = mid + 1,
            }
        }
        Ok((lo < state.next().0).then_some(Offset(lo)))
    }
}

/// Reads the key of an item of partition `pid` found while looking for `near`.
fn parse_key(partition: &PartitionName, pid: u32, raw: &[u8], near: Offset) -> Result<ItemKey> {
    frame::parse_item_key(raw)
        .filter(|key| key.pid == pid)
        .ok_or_else(|| Error::Corrupt {
            partition: partition.to_string(),
            offset: near,
            reason: "malformed record key".to_owned(),
        })
}

fn missing(partition: &PartitionName, offset: Offset) -> Error {
    Error::Corrupt {
        partition: partition.to_string(),
        offset,
        reason: "record missing: offsets must be dense".to_owned(),
    }
}

/// Opens (recovering if needed) the fjall database and the log's two keyspaces.
fn open_database(config: &LogConfig) -> Result<(Database, Keyspace, Keyspace)> {
    let db = Database::builder(&config.dir)
        .cache_size(config.cache_bytes)
        // After a crash fjall replays every journal not yet flushed to tables; 128 MiB
        // (instead of 512) bounds that replay, so reopen time does not grow with the log.
        .max_journaling_size(JOURNAL_BYTES)
        .open()
        .map_err(|e| match e {
            fjall::Error::Locked => Error::Locked {
                path: config.dir.clone(),
            },
            e => Error::storage("open the database", e),
        })?;
    let records = db
        // Every table of records is LZ4-compressed. fjall's default leaves levels 0 and 1
        // uncompressed, so each flush wrote the events again at full size (742 MB for 8 s of
        // 64 producers, against 74 MB of compressed journal) and copying them into the page
        // cache took a sixth of the node's core. Measured with the node on one core, 30 s of
        // 64 producers: 185-194k → 213-215k events/s; replay unchanged (0.95-0.99M → 0.98-1.0M
        // events/s). A keyspace keeps the options it was created with, so this applies to
        // data directories created from now on.
        .keyspace("records", || {
            KeyspaceCreateOptions::default().data_block_compression_policy(
                fjall::config::CompressionPolicy::all(fjall::CompressionType::Lz4),
            )
        })
        .map_err(|e| Error::storage("open the records keyspace", e))?;
    let meta = db
        .keyspace("meta", KeyspaceCreateOptions::default)
        .map_err(|e| Error::storage("open the meta keyspace", e))?;
    Ok((db, records, meta))
}

/// Refuses a data directory in a newer storage format, and marks an older or new one as
/// holding this version's format (it may write frames from now on).
fn check_format(db: &Database, meta: &Keyspace) -> Result<()> {
    let stored = meta
        .get(codec::FORMAT_KEY)
        .map_err(|e| Error::storage("read metadata", e))?;
    let found = match stored {
        None => 1,
        Some(value) => <[u8; 4]>::try_from(&value[..])
            .map(u32::from_be_bytes)
            .map_err(|_| Error::Inconsistent {
                partition: "(the whole log)".to_owned(),
                reason: "the stored storage format is malformed".to_owned(),
            })?,
    };
    if found > codec::FORMAT {
        return Err(Error::UnsupportedFormat {
            found,
            supported: codec::FORMAT,
        });
    }
    if found < codec::FORMAT {
        meta.insert(codec::FORMAT_KEY, codec::FORMAT.to_be_bytes())
            .map_err(|e| Error::storage("write metadata", e))?;
        db.persist(fjall::PersistMode::SyncAll)
            .map_err(|e| Error::storage("write metadata", e))?;
    }
    Ok(())
}

/// Rebuilds every partition's state from the meta keyspace and checks that the records agree.
fn load_heads(records: &Keyspace, meta: &Keyspace) -> Result<HashMap<PartitionName, PartState>> {
    let mut heads = HashMap::new();
    for guard in meta.prefix(b"n") {
        let (key, value) = guard
            .into_inner()
            .map_err(|e| Error::storage("read metadata", e))?;
        let raw_name = String::from_utf8_lossy(&key[1..]).into_owned();
        let inconsistent = |reason: &str| Error::Inconsistent {
            partition: raw_name.clone(),
            reason: reason.to_owned(),
        };
        let name = PartitionName::new(raw_name.clone())
            .map_err(|_| inconsistent("stored partition name is invalid"))?;
        let pid = <[u8; 4]>::try_from(&value[..])
            .map(u32::from_be_bytes)
            .map_err(|_| inconsistent("stored partition id is malformed"))?;
        let stats = meta
            .get(codec::stats_key(pid))
            .map_err(|e| Error::storage("read metadata", e))?
            .and_then(|v| Stats::decode(&v))
            .ok_or_else(|| inconsistent("partition statistics are missing or malformed"))?;
        check_bounds(records, &name, pid, stats)?;
        heads.insert(name, PartState { pid, stats });
    }
    Ok(heads)
}

/// Checks that the first and last stored records of a partition are where its stats say.
fn check_bounds(records: &Keyspace, name: &PartitionName, pid: u32, stats: Stats) -> Result<()> {
    let range = codec::record_key(pid, Offset(0)).to_vec()
        ..=frame::covering_bound(pid, Offset(u64::MAX)).to_vec();
    let mut keys = records.range(range);
    let key_of = |guard: Option<fjall::Guard>| -> Result<Option<ItemKey>> {
        guard
            .map(|g| {
                let key = g.key().map_err(|e| Error::storage("read records", e))?;
                frame::parse_item_key(&key).ok_or_else(|| Error::Inconsistent {
                    partition: name.to_string(),
                    reason: format!("malformed record key {:02x?}", &key[..]),
                })
            })
            .transpose()
    };
    let first = key_of(keys.next())?;
    // With one item, the iterator is empty once its front is taken: the last is the first.
    let last = key_of(keys.next_back())?.or(first);
    let held = first.zip(last).map(|(f, l)| (f.first, l.last));
    let expected =
        (stats.next > stats.first).then(|| (Offset(stats.first), Offset(stats.next - 1)));
    if held != expected {
        return Err(Error::Inconsistent {
            partition: name.to_string(),
            reason: format!(
                "metadata says offsets {}..{}, records hold {held:?}",
                stats.first, stats.next
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
