//! [`ValueCache`]: the values of recently read keys, by the revision of their put, least
//! recently used out first, bounded in bytes. A revision's value never changes, so nothing is
//! ever invalidated: an overwrite is a new revision, and the old entry ages out. Pure (no
//! I/O): [`kv_values`](crate::kv_values) consults it before reading the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// A bounded cache of values by revision. Cheap to share behind the node's state.
#[derive(Debug)]
pub(crate) struct ValueCache {
    max_bytes: usize,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    /// By revision: the key it is a put of, the value, and its last use.
    entries: HashMap<u64, Entry>,
    /// Revisions by last use, oldest first.
    by_use: BTreeMap<u64, u64>,
    /// Bytes of the values held.
    bytes: usize,
    /// The clock of uses.
    tick: u64,
}

#[derive(Debug)]
struct Entry {
    key: Box<str>,
    value: Bytes,
    used: u64,
}

impl ValueCache {
    /// A cache of at most `max_bytes` of values (0: caches nothing). A value over a sixteenth
    /// of that is not kept, so one large value cannot push out every small one.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of the put of `key` at `revision`, if held (and marks it used). An entry
    /// of another key at that revision is not returned.
    pub(crate) fn get(&self, revision: u64, key: &str) -> Option<Bytes> {
        if self.max_bytes == 0 {
            return None;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let entry = lru.entries.get_mut(&revision).filter(|e| &*e.key == key)?;
        let (before, value) = (entry.used, entry.value.clone());
        entry.used = tick;
        lru.by_use.remove(&before);
        lru.by_use.insert(tick, revision);
        Some(value)
    }

    /// Keeps `value`, the put of `key` at `revision`, letting the least recently used go
    /// until the cache is within its bound.
    pub(crate) fn insert(&self, revision: u64, key: &str, value: Bytes) {
        if value.len() > self.max_bytes / 16 {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let len = value.len();
        let entry = Entry {
            key: key.into(),
            value,
            used: tick,
        };
        if let Some(old) = lru.entries.insert(revision, entry) {
            lru.by_use.remove(&old.used);
            lru.bytes -= old.value.len();
        }
        lru.by_use.insert(tick, revision);
        lru.bytes += len;
        while lru.bytes > self.max_bytes {
            let Some((_, oldest)) = lru.by_use.pop_first() else {
                break;
            };
            if let Some(gone) = lru.entries.remove(&oldest) {
                lru.bytes -= gone.value.len();
            }
        }
    }

    /// Bytes of the values held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(len: usize) -> Bytes {
        Bytes::from(vec![7; len])
    }

    #[test]
    fn keeps_the_recently_used_within_its_bytes() {
        let cache = ValueCache::new(1600);
        for revision in 0..10 {
            cache.insert(revision, "k", value(100));
        }
        assert_eq!(cache.bytes(), 1000);
        // Use 0, then fill past the bound: 1, 2, ... go first, 0 stays.
        assert!(cache.get(0, "k").is_some());
        for revision in 10..17 {
            cache.insert(revision, "k", value(100));
        }
        assert_eq!(cache.bytes(), 1600);
        assert!(cache.get(0, "k").is_some(), "used recently");
        assert!(cache.get(1, "k").is_none(), "least recently used: gone");
        assert!(cache.get(16, "k").is_some());
        let lru = cache.lock();
        assert_eq!(lru.entries.len(), lru.by_use.len(), "one use per entry");
    }

    #[test]
    fn a_revision_of_another_key_or_a_large_value_is_not_served() {
        let cache = ValueCache::new(1600);
        cache.insert(3, "a", value(10));
        assert!(cache.get(3, "b").is_none(), "another key's put");
        assert_eq!(cache.get(3, "a").as_deref(), Some(&[7u8; 10][..]));
        cache.insert(4, "big", value(101));
        assert!(cache.get(4, "big").is_none(), "over a sixteenth");
        cache.insert(3, "a", value(20));
        assert_eq!(cache.bytes(), 20, "replaced, counted once");
        let none = ValueCache::new(0);
        none.insert(1, "a", Bytes::new());
        assert!(none.get(1, "a").is_none(), "0 caches nothing");
    }
}
