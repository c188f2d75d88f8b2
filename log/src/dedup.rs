//! The duplicate window of idempotent appends: which dedup ids a partition holds lately, and
//! at what offsets. A pure table, owned by the writer thread.
//!
//! A record appended with a dedup id ([`NewRecord::with_dedup_id`]) is remembered here for
//! [`WINDOW`] (the same two minutes as JetStream's default duplicate window), at most
//! [`MAX_IDS`] ids per partition. An append whose records were all appended before (a retry
//! of an append whose acknowledgement was lost) is answered with the first append's offsets
//! and stores nothing; the window is in memory, so it covers retries made while the log stays
//! open (for the embedded log, the only ones: its caller is in the same process).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::record::{AppendAck, NewRecord, Offset, Timestamp};

/// How long an id is remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(120);

/// The most ids remembered per partition (the oldest go first).
pub(crate) const MAX_IDS: usize = 65_536;

/// What the window says about an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// None of its records carries an id the partition holds: append it.
    New,
    /// Every record was appended before, in this order at consecutive offsets: this is the
    /// earlier append's acknowledgement.
    Duplicate(AppendAck),
    /// Some of its records were appended before and others not, or not together: the
    /// offset of the first one that was.
    Mixed(Offset),
}

/// One partition's remembered ids.
#[derive(Debug, Default)]
pub(crate) struct DedupWindow {
    ids: HashMap<Bytes, (Offset, Timestamp)>,
    order: VecDeque<(Bytes, Timestamp)>,
}

impl DedupWindow {
    /// Looks `records` up (those without an id never match).
    pub(crate) fn check(&self, records: &[NewRecord]) -> Seen {
        let found: Vec<Option<(Offset, Timestamp)>> = records
            .iter()
            .map(|r| r.dedup_id.as_ref().and_then(|id| self.ids.get(id).copied()))
            .collect();
        let Some(&Some((first, time))) = found.first() else {
            return match found.iter().flatten().next() {
                Some((offset, _)) => Seen::Mixed(*offset),
                None => Seen::New,
            };
        };
        let together = found
            .iter()
            .enumerate()
            .all(|(i, f)| f.is_some_and(|(o, _)| o.0 == first.0 + i as u64));
        if together {
            Seen::Duplicate(AppendAck {
                first,
                count: records.len() as u64,
                time,
            })
        } else {
            Seen::Mixed(first)
        }
    }

    /// Remembers the ids of `records`, appended from `first` on at `time`, and forgets ids
    /// older than [`WINDOW`] or past [`MAX_IDS`].
    pub(crate) fn remember(&mut self, records: &[NewRecord], first: Offset, time: Timestamp) {
        for (i, record) in records.iter().enumerate() {
            if let Some(id) = &record.dedup_id {
                self.insert(id.clone(), Offset(first.0 + i as u64), time);
            }
        }
        self.forget_before(time);
    }

    /// Takes in every id of `newer` (the ids of appends that followed this window's).
    pub(crate) fn absorb(&mut self, newer: DedupWindow) {
        let mut newest = None;
        for (id, at) in newer.order {
            if let Some(&(offset, time)) = newer.ids.get(&id).filter(|(_, t)| *t == at) {
                self.insert(id, offset, time);
                newest = Some(time);
            }
        }
        if let Some(time) = newest {
            self.forget_before(time);
        }
    }

    fn insert(&mut self, id: Bytes, offset: Offset, time: Timestamp) {
        self.ids.insert(id.clone(), (offset, time));
        self.order.push_back((id, time));
    }

    fn forget_before(&mut self, now: Timestamp) {
        let oldest = now.saturating_sub(WINDOW);
        while let Some((id, at)) = self.order.front() {
            if self.order.len() <= MAX_IDS && *at >= oldest {
                break;
            }
            // An id appended again later (a new record after its window) keeps the newer entry.
            if self.ids.get(id).is_some_and(|(_, t)| t == at) {
                self.ids.remove(id);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ids(ids: &[&str]) -> Vec<NewRecord> {
        ids.iter()
            .map(|id| NewRecord::new("x").with_dedup_id(id.to_string()))
            .collect()
    }

    #[test]
    fn a_repeated_append_is_answered_with_the_first_offsets() {
        let mut window = DedupWindow::default();
        let batch = with_ids(&["a", "b", "c"]);
        assert_eq!(window.check(&batch), Seen::New);
        let time = Timestamp::from_unix_nanos(1_000);
        window.remember(&batch, Offset(7), time);
        assert_eq!(
            window.check(&batch),
            Seen::Duplicate(AppendAck {
                first: Offset(7),
                count: 3,
                time
            })
        );
        let tail = Seen::Duplicate(AppendAck {
            first: Offset(8),
            count: 2,
            time,
        });
        assert_eq!(window.check(&with_ids(&["b", "c"])), tail);
        assert_eq!(window.check(&with_ids(&["c", "z"])), Seen::Mixed(Offset(9)));
        assert_eq!(window.check(&with_ids(&["z", "a"])), Seen::Mixed(Offset(7)));
        assert_eq!(window.check(&with_ids(&["c", "b"])), Seen::Mixed(Offset(9)));
        assert_eq!(window.check(&[NewRecord::new("no id")]), Seen::New);
    }

    #[test]
    fn ids_are_forgotten_after_the_window_or_past_the_bound() {
        let mut window = DedupWindow::default();
        let start = Timestamp::from_unix_nanos(1);
        window.remember(&with_ids(&["old"]), Offset(0), start);
        let later = Timestamp::from_unix_nanos(1 + WINDOW.as_nanos() as u64 + 1);
        window.remember(&with_ids(&["new"]), Offset(1), later);
        assert_eq!(window.check(&with_ids(&["old"])), Seen::New);
        assert!(matches!(
            window.check(&with_ids(&["new"])),
            Seen::Duplicate(_)
        ));
        let many: Vec<String> = (0..MAX_IDS + 10).map(|i| format!("id{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        window.remember(&with_ids(&refs), Offset(2), later);
        assert_eq!(window.ids.len(), MAX_IDS);
        assert_eq!(window.check(&with_ids(&["id0"])), Seen::New);
        assert!(matches!(
            window.check(&with_ids(&[refs[MAX_IDS + 9]])),
            Seen::Duplicate(_)
        ));
    }
}
