//! The duplicate window: an event whose `source` + `id` was appended to the same channel
//! within the window is answered with its first offset and not stored again (as JetStream
//! does with message ids).
//!
//! Keys are a 128-bit hash (XXH3) of `source` and `id` (about 90 bytes an entry with the
//! queue, not the ~320 of two strings twice); a collision would need ~2^64 events. The maps keyed
//! by them do not hash them again (see [`KeyHasher`]). Appended events are kept apart from
//! reserved ones: the large map holds just an offset per key, and the requests in flight touch
//! only a small one. Each channel keeps at
//! most [`MAX_ENTRIES`]: under a higher rate the window is the last `MAX_ENTRIES` events rather
//! than the whole duration, so memory stays bounded. Idle channels are swept periodically.
//!
//! A producer first *reserves* its keys under one lock (one for all channels: its critical
//! sections are a few map operations); a second producer of the same key
//! waits for the first to finish, then sees its offset (or, if the first failed, reserves the
//! key itself). Reservations of one request are taken atomically, so waits follow reservation
//! order and cannot form a cycle.

mod expiry;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use draft_log::{LogBackend, PartitionName, Timestamp, event_key_source_and_id};
use tokio::sync::Notify;
use tokio::time::Instant;

use expiry::BlockQueue;

/// A 128-bit hash of `(source, id)`, low half first. Kept as two `u64`s rather than a `u128`,
/// which is 16-byte aligned: a map entry with its offset takes 24 bytes instead of 32, an
/// expiry queue entry 40 instead of 48 (a million remembered events: ~25 MB less).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DedupKey([u64; 2]);

impl DedupKey {
    fn from_u128(hash: u128) -> Self {
        // Truncation on purpose: the two halves of the hash.
        #[allow(clippy::cast_possible_truncation)]
        Self([hash as u64, (hash >> 64) as u64])
    }
}

impl std::hash::Hash for DedupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The low half of a 128-bit hash is a 64-bit hash (see `KeyHasher`).
        state.write_u64(self.0[0]);
    }
}

/// The most remembered events per channel.
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

/// How many maps a channel's appended keys are spread over (see [`Done`]); a power of two.
const SHARDS: usize = 16;

/// How often idle channels' windows are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The dedup key of an event: XXH3-128 of `source`, NUL, `id` (NUL is refused in both, so the
/// pair is unambiguous), which is how the record key ends. The hash is seeded with a random
/// value per process, so no client can choose ids that collide in the maps (keys are only
/// compared within a process: the window is rebuilt from the log at start).
pub(crate) fn key(source_and_id: &[u8]) -> DedupKey {
    DedupKey::from_u128(xxhash_rust::xxh3::xxh3_128_with_seed(source_and_id, seed()))
}

/// This process's random hash seed (from the standard library's per-process random keys).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u8))
}

/// A `Hasher` for [`DedupKey`]s, which are already uniformly distributed hashes: it keeps 64 of
/// their bits instead of running `SipHash` over them again (measured: `SipHash` and the double
/// hash were ~10% of the node's CPU under batch produce).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for types other than `DedupKey`, which a `KeyMap` never holds; fold them
        // in anyway so the hasher is correct for any input.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).rotate_left(29);
        }
    }

    fn write_u64(&mut self, half: u64) {
        self.0 = (self.0 ^ half).rotate_left(29);
    }
}

/// A map keyed by [`DedupKey`] that does not re-hash its keys.
type KeyMap<V> = HashMap<DedupKey, V, BuildHasherDefault<KeyHasher>>;

/// Expires old entries of every channel every [`SWEEP_EVERY`], until the window is dropped.
pub(crate) async fn sweep(dedup: std::sync::Weak<Dedup>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(dedup) = dedup.upgrade() else { return };
        let mut channels = dedup.lock();
        for window in channels.values_mut() {
            expire(window, dedup.window, dedup.max_entries);
        }
        channels.retain(|_, w| !w.done.is_empty() || !w.pending.is_empty());
    }
}

/// A key reserved by a request that is appending it.
struct Pending {
    /// Fires when that request is done.
    notify: Arc<Notify>,
    /// The key's first index in that request.
    index: usize,
}

/// Appended events, key to offset, spread over [`SHARDS`] maps by the key's high bits. Each map
/// grows (moving its entries) on its own, so a window growing to a million entries never stops
/// its producers for more than a sixteenth of that: one map of a million entries stalled batch
/// produce for tens of milliseconds at its last doubling.
struct Done {
    shards: Vec<KeyMap<u64>>,
    len: usize,
}

impl Default for Done {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| KeyMap::default()).collect(),
            len: 0,
        }
    }
}

impl Done {
    fn shard(key: DedupKey) -> usize {
        // The maps hash the low half (see `KeyHasher`): pick the shard from the top bits of
        // the high half (the shift leaves a number below `SHARDS`, on any pointer width).
        usize::try_from(key.0[1] >> (64 - SHARDS.trailing_zeros())).unwrap_or(0)
    }

    fn get(&self, key: DedupKey) -> Option<u64> {
        self.shards[Self::shard(key)].get(&key).copied()
    }

    fn insert(&mut self, key: DedupKey, offset: u64) {
        if self.shards[Self::shard(key)].insert(key, offset).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, key: DedupKey) {
        if self.shards[Self::shard(key)].remove(&key).is_some() {
            self.len -= 1;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Default)]
struct ChannelWindow {
    /// Appended events: key to offset.
    done: Done,
    /// Keys being appended by requests in flight.
    pending: KeyMap<Pending>,
    /// Appended events in time order, for expiry: when, key, offset.
    order: BlockQueue<(Instant, DedupKey, u64)>,
}

/// What to do with each event of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Append it (its key is now reserved by this request).
    Append,
    /// Already stored at this offset.
    Duplicate(u64),
    /// Same key as event `i` of this same request.
    SameAs(usize),
}

/// The duplicate windows of every channel.
pub(crate) struct Dedup {
    window: Duration,
    max_entries: usize,
    channels: Mutex<HashMap<String, ChannelWindow>>,
}

/// Keys reserved by one request; released (and waiters woken) on drop if not completed.
pub(crate) struct Reservation<'a> {
    dedup: &'a Dedup,
    channel: String,
    keys: Vec<DedupKey>,
    notify: Arc<Notify>,
}

impl Dedup {
    /// A window with the default cap ([`MAX_ENTRIES`] events per channel).
    #[cfg(test)]
    pub(crate) fn new(window: Duration) -> Self {
        Self::with_cap(window, MAX_ENTRIES)
    }

    /// A window that remembers at most `max_entries` events per channel.
    pub(crate) fn with_cap(window: Duration, max_entries: usize) -> Self {
        Self {
            window,
            max_entries,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ChannelWindow>> {
        // Critical sections only touch maps; a panic cannot leave them inconsistent.
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The window as `log` holds it: the events of the last `window`, so a restart does not
    /// forget it.
    ///
    /// # Errors
    /// A log error while reading those events.
    pub(crate) async fn rebuild(log: &dyn LogBackend, window: Duration) -> draft_log::Result<Self> {
        Self::rebuild_with_cap(log, window, MAX_ENTRIES).await
    }

    /// [`Dedup::rebuild`] with a cap of `max_entries` per channel, which the rebuilt window
    /// keeps too (the newest events).
    pub(crate) async fn rebuild_with_cap(
        log: &dyn LogBackend,
        window: Duration,
        max_entries: usize,
    ) -> draft_log::Result<Self> {
        let dedup = Self::with_cap(window, max_entries);
        let since = Timestamp::now().saturating_sub(window);
        let now = Instant::now();
        for head in log.partitions().await? {
            if !head.partition.is_reserved() {
                dedup
                    .remember_since(log, &head.partition, since, now)
                    .await?;
            }
        }
        Ok(dedup)
    }

    /// Remembers the events appended to `channel` since `since`, each at the instant it was
    /// appended (`now` being the time now).
    async fn remember_since(
        &self,
        log: &dyn LogBackend,
        channel: &PartitionName,
        since: Timestamp,
        now: Instant,
    ) -> draft_log::Result<()> {
        let Some(mut next) = log.offset_at_time(channel, since).await? else {
            return Ok(());
        };
        loop {
            let records = log.read(channel, next, 4096).await?;
            let Some(last) = records.last().map(|r| r.offset) else {
                return Ok(());
            };
            for record in &records {
                if let Some(source_and_id) = record.key.as_deref().and_then(event_key_source_and_id)
                {
                    let age = Timestamp::now()
                        .as_unix_nanos()
                        .saturating_sub(record.time.as_unix_nanos());
                    let at = now.checked_sub(Duration::from_nanos(age)).unwrap_or(now);
                    self.remember(channel.as_str(), key(source_and_id), record.offset.0, at);
                }
            }
            next = last.next();
        }
    }

    /// Records an event that is already in the log (used to rebuild the window at start).
    fn remember(&self, channel: &str, key: DedupKey, offset: u64, at: Instant) {
        let mut channels = self.lock();
        let window = channels.entry(channel.to_owned()).or_default();
        window.order.push_back((at, key, offset));
        window.done.insert(key, offset);
        expire(window, self.window, self.max_entries);
    }

    /// Decides for each key whether to append it, waiting while another request holds one.
    pub(crate) async fn reserve(
        &self,
        channel: &str,
        keys: &[DedupKey],
    ) -> (Vec<Decision>, Reservation<'_>) {
        let notify = Arc::new(Notify::new());
        loop {
            let (pending_key, wait) = {
                let mut channels = self.lock();
                let window = channels.entry(channel.to_owned()).or_default();
                expire(window, self.window, self.max_entries);
                match decide(window, keys, &notify) {
                    Ok(decisions) => {
                        let reserved = keys
                            .iter()
                            .zip(&decisions)
                            .filter(|(_, d)| **d == Decision::Append)
                            .map(|(k, _)| *k)
                            .collect();
                        let reservation = Reservation {
                            dedup: self,
                            channel: channel.to_owned(),
                            keys: reserved,
                            notify: Arc::clone(&notify),
                        };
                        return (decisions, reservation);
                    }
                    Err(pending) => pending,
                }
            };
            let notified = wait.notified();
            tokio::pin!(notified);
            // Register before re-checking, so a completion in between is not missed.
            notified.as_mut().enable();
            if self.is_still_pending(channel, pending_key, &wait) {
                notified.await;
            }
        }
    }

    /// Whether `key` is still reserved by the request that `notify` belongs to.
    fn is_still_pending(&self, channel: &str, key: DedupKey, notify: &Arc<Notify>) -> bool {
        self.lock().get(channel).is_some_and(|w| {
            w.pending
                .get(&key)
                .is_some_and(|p| Arc::ptr_eq(&p.notify, notify))
        })
    }
}

/// Either every key's decision (reserving the new ones), or a key another request has reserved
/// with that request's `Notify` (and nothing reserved).
fn decide(
    window: &mut ChannelWindow,
    keys: &[DedupKey],
    notify: &Arc<Notify>,
) -> Result<Vec<Decision>, (DedupKey, Arc<Notify>)> {
    let mut decisions = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let decision = if let Some(pending) = window.pending.get(key) {
            if !Arc::ptr_eq(&pending.notify, notify) {
                let other = (*key, Arc::clone(&pending.notify));
                release(window, keys, &decisions);
                return Err(other);
            }
            // Repeated within this request.
            Decision::SameAs(pending.index)
        } else if let Some(offset) = window.done.get(*key) {
            Decision::Duplicate(offset)
        } else {
            let notify = Arc::clone(notify);
            window.pending.insert(*key, Pending { notify, index });
            Decision::Append
        };
        decisions.push(decision);
    }
    Ok(decisions)
}

/// Releases the keys this request reserved (those decided `Append`).
fn release(window: &mut ChannelWindow, keys: &[DedupKey], decisions: &[Decision]) {
    for (key, decision) in keys.iter().zip(decisions) {
        if *decision == Decision::Append {
            window.pending.remove(key);
        }
    }
}

fn expire(window: &mut ChannelWindow, ttl: Duration, max_entries: usize) {
    let now = Instant::now();
    while let Some((at, _, _)) = window.order.front() {
        if now.duration_since(*at) < ttl && window.order.len() <= max_entries {
            break;
        }
        let Some((_, key, offset)) = window.order.pop_front() else {
            break;
        };
        // The same key may be in the queue twice (remembered at start from a log that holds
        // it twice): only its latest offset removes it.
        if window.done.get(key) == Some(offset) {
            window.done.remove(key);
        }
    }
}

impl Reservation<'_> {
    /// Marks the reserved keys as stored at `offsets` (same order as reserved).
    pub(crate) fn complete(mut self, offsets: &[u64]) {
        let at = Instant::now();
        {
            let mut channels = self.dedup.lock();
            let window = channels.entry(self.channel.clone()).or_default();
            for (key, &offset) in std::mem::take(&mut self.keys).into_iter().zip(offsets) {
                window.pending.remove(&key);
                window.order.push_back((at, key, offset));
                window.done.insert(key, offset);
            }
            expire(window, self.dedup.window, self.dedup.max_entries);
        }
        self.notify.notify_waiters();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        {
            let mut channels = self.dedup.lock();
            if let Some(window) = channels.get_mut(&self.channel) {
                for key in &self.keys {
                    window.pending.remove(key);
                }
            }
        }
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> DedupKey {
        super::key(format!("/src\0{id}").as_bytes())
    }

    #[tokio::test]
    async fn second_sight_of_a_key_is_a_duplicate_until_the_window_ends() {
        tokio::time::pause();
        let dedup = Dedup::new(Duration::from_secs(120));
        let (d, r) = dedup.reserve("c", &[key("a"), key("b"), key("a")]).await;
        assert_eq!(
            d,
            vec![Decision::Append, Decision::Append, Decision::SameAs(0)]
        );
        r.complete(&[7, 8]);
        let (d, _r) = dedup.reserve("c", &[key("b"), key("z")]).await;
        assert_eq!(d, vec![Decision::Duplicate(8), Decision::Append]);
        let (d, _r) = dedup.reserve("other", &[key("b")]).await;
        assert_eq!(d, vec![Decision::Append], "windows are per channel");
        tokio::time::advance(Duration::from_secs(121)).await;
        let (d, _r) = dedup.reserve("c", &[key("a")]).await;
        assert_eq!(d, vec![Decision::Append], "expired after the window");
    }

    #[tokio::test]
    async fn the_window_is_rebuilt_from_the_events_in_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = draft_log::Log::open(draft_log::LogConfig::new(dir.path())).expect("log");
        let event = |id: &str| {
            draft_log::NewRecord::new(bytes::Bytes::from_static(b"{}"))
                .with_key(draft_log::event_key("t", "/src", id))
        };
        let channel = PartitionName::new("c").expect("name");
        let records = vec![event("a"), draft_log::NewRecord::new("no key"), event("b")];
        log.append(&channel, records).await.expect("append");
        let reserved = PartitionName::new("_draft").expect("name");
        log.append(&reserved, vec![event("a")])
            .await
            .expect("append");
        let dedup = Dedup::rebuild(&log, Duration::from_secs(120))
            .await
            .expect("rebuild");
        let (d, _r) = dedup.reserve("c", &[key("a"), key("b"), key("z")]).await;
        assert_eq!(
            d,
            vec![
                Decision::Duplicate(0),
                Decision::Duplicate(2),
                Decision::Append
            ]
        );
        let (d, _r) = dedup.reserve("_draft", &[key("a")]).await;
        assert_eq!(
            d,
            vec![Decision::Append],
            "reserved partitions are not events"
        );
    }

    #[test]
    fn keys_are_seeded_and_spread_over_every_shard() {
        let pair = b"/src\0a";
        assert_eq!(
            super::key(pair),
            super::key(pair),
            "stable within a process"
        );
        assert_ne!(
            super::key(pair),
            DedupKey::from_u128(xxhash_rust::xxh3::xxh3_128(pair)),
            "a client must not be able to compute the keys"
        );
        let mut used = [false; SHARDS];
        for i in 0..1000 {
            used[Done::shard(key(&i.to_string()))] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
        assert_eq!(Done::shard(DedupKey::from_u128(u128::MAX)), SHARDS - 1);
        assert_eq!(
            (
                std::mem::size_of::<(DedupKey, u64)>(),
                std::mem::size_of::<(Instant, DedupKey, u64)>()
            ),
            (24, 40),
            "map and queue entries stay small"
        );
    }

    #[tokio::test]
    async fn a_rebuilt_window_keeps_its_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let log = draft_log::Log::open(draft_log::LogConfig::new(dir.path())).expect("open");
        let channel = PartitionName::new("c").expect("name");
        let records: Vec<_> = (0..300u64)
            .map(|i| {
                draft_log::NewRecord::new(bytes::Bytes::from_static(b"{}"))
                    .with_key(draft_log::event_key("t", "/src", &i.to_string()))
            })
            .collect();
        log.append(&channel, records).await.expect("append");
        let dedup = Dedup::rebuild_with_cap(&log, Duration::from_secs(120), 100)
            .await
            .expect("rebuild");
        let remembered = dedup.lock().get("c").map_or(0, |w| w.order.len());
        assert_eq!(
            remembered, 100,
            "the rebuilt window is capped as a live one is"
        );
    }

    #[tokio::test]
    async fn the_window_holds_at_most_its_cap() {
        let dedup = Dedup::with_cap(Duration::from_secs(120), 100);
        for i in 0..250u64 {
            let (d, r) = dedup.reserve("c", &[key(&i.to_string())]).await;
            assert_eq!(d, vec![Decision::Append]);
            r.complete(&[i]);
        }
        let remembered = dedup.lock().get("c").map_or(0, |w| w.done.len());
        assert_eq!(remembered, 100, "bounded");
        let (d, _r) = dedup.reserve("c", &[key("249")]).await;
        assert_eq!(
            d,
            vec![Decision::Duplicate(249)],
            "the newest are remembered"
        );
        let (d, _r) = dedup.reserve("c", &[key("0")]).await;
        assert_eq!(d, vec![Decision::Append], "the oldest were let go");
    }

    #[tokio::test]
    async fn a_concurrent_duplicate_waits_for_the_first_and_a_failure_releases_the_key() {
        let dedup = Arc::new(Dedup::new(Duration::from_secs(120)));
        let (d, first) = dedup.reserve("c", &[key("a")]).await;
        assert_eq!(d, vec![Decision::Append]);
        let waiter = {
            let dedup = Arc::clone(&dedup);
            tokio::spawn(async move { dedup.reserve("c", &[key("a")]).await.0 })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the first is pending");
        first.complete(&[3]);
        assert_eq!(waiter.await.expect("task"), vec![Decision::Duplicate(3)]);

        let (_, failed) = dedup.reserve("c", &[key("x")]).await;
        drop(failed); // the append failed
        let (d, _r) = dedup.reserve("c", &[key("x")]).await;
        assert_eq!(d, vec![Decision::Append], "a failed append does not count");
    }

    #[tokio::test]
    async fn a_request_that_waits_holds_none_of_its_keys() {
        let dedup = Arc::new(Dedup::new(Duration::from_secs(120)));
        let (_, first) = dedup.reserve("c", &[key("a")]).await;
        let waiter = {
            let dedup = Arc::clone(&dedup);
            tokio::spawn(async move { dedup.reserve("c", &[key("b"), key("a")]).await.0 })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits for `a`");
        let (d, other) =
            tokio::time::timeout(Duration::from_secs(5), dedup.reserve("c", &[key("b")]))
                .await
                .expect("`b` is not held by the waiting request");
        assert_eq!(d, vec![Decision::Append]);
        other.complete(&[1]);
        first.complete(&[2]);
        assert_eq!(
            waiter.await.expect("task"),
            vec![Decision::Duplicate(1), Decision::Duplicate(2)]
        );
    }
}
