//! The items of the records keyspace: a single record, or a frame of consecutive records.
//!
//! An append of several records to one partition (a batch of CloudEvents) is stored as frames
//! of up to [`MAX_FRAME_BYTES`]: one fjall entry for many records, so fjall journals, indexes
//! and compacts one entry instead of a hundred (measured on batch produce, 100 events a request:
//! 378k -> 660k events/s, node CPU per event 3.6 -> 2.0 us). An append of one record is stored
//! as before, so logs written by earlier versions read unchanged.
//!
//! - A single record: key [`codec::record_key`] (`pid ++ offset`, 12 bytes), value one record
//!   (see [`codec`]).
//! - A frame: key `pid ++ first ++ last` (20 bytes, big-endian), value the records' values
//!   one after another, each preceded by its length (`u32`, little-endian). Every record keeps
//!   its own offset and checksum, so corruption is still reported at the record's offset.
//!
//! Both kinds sort by (partition, first offset), and items never overlap: the item holding
//! an offset is the last one whose key is at most [`covering_bound`].

use std::ops::Range;

use crate::codec::{self, RECORD_KEY_LEN};
use crate::error::{Error, Result};
use crate::record::{Offset, PartitionName, Record, Timestamp};

/// The length of a frame's key.
pub(crate) const FRAME_KEY_LEN: usize = 20;

/// Records of one append are cut into frames of at most this many bytes of values (a record
/// larger than that is a frame of its own): large enough that a frame's fixed costs vanish,
/// small enough that reading one offset never decodes much more than it needs.
pub(crate) const MAX_FRAME_BYTES: usize = 256 * 1024;

/// The length prefix of each record in a frame.
pub(crate) const LEN_PREFIX: usize = 4;

/// Where an item sits: its partition id and the offsets of its first and last records (the
/// same offset for a single record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemKey {
    pub(crate) pid: u32,
    pub(crate) first: Offset,
    pub(crate) last: Offset,
}

impl ItemKey {
    /// How many records the item holds.
    pub(crate) fn count(self) -> u64 {
        self.last.0 - self.first.0 + 1
    }

    /// Whether the item holds the record at `offset`.
    pub(crate) fn holds(self, offset: Offset) -> bool {
        self.first <= offset && offset <= self.last
    }
}

/// A frame's key: partition id, first offset, last offset, all big-endian.
pub(crate) fn frame_key(pid: u32, first: Offset, last: Offset) -> [u8; FRAME_KEY_LEN] {
    let mut key = [0u8; FRAME_KEY_LEN];
    key[..RECORD_KEY_LEN].copy_from_slice(&codec::record_key(pid, first));
    key[RECORD_KEY_LEN..].copy_from_slice(&last.0.to_be_bytes());
    key
}

/// The greatest key an item starting at or before `offset` of partition `pid` can have.
pub(crate) fn covering_bound(pid: u32, offset: Offset) -> [u8; FRAME_KEY_LEN] {
    frame_key(pid, offset, Offset(u64::MAX))
}

/// Reads an item's key, or `None` if it is not one.
pub(crate) fn parse_item_key(key: &[u8]) -> Option<ItemKey> {
    let (pid, first) = codec::parse_record_key(key.get(..RECORD_KEY_LEN)?)?;
    let last = match key.len() {
        RECORD_KEY_LEN => first,
        FRAME_KEY_LEN => {
            let last = Offset(u64::from_be_bytes(key[RECORD_KEY_LEN..].try_into().ok()?));
            // A frame holds at least two records (one record is stored as a single record).
            if last <= first {
                return None;
            }
            last
        }
        _ => return None,
    };
    // No stored offset is `u64::MAX`: the partition's next offset (`last + 1`) must fit.
    (last.0 < u64::MAX).then_some(ItemKey { pid, first, last })
}

/// Adds one encoded record (see [`codec::encode_record_into`]) to a frame's value.
pub(crate) fn push_record(frame: &mut Vec<u8>, record: &[u8]) {
    // `LogConfig::max_append_bytes` is at most 1 GiB, so every record's length fits.
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(record);
}

/// The records of a frame's value, in order; `Err` with the reason where it stops making sense.
fn frame_records(value: &[u8]) -> impl Iterator<Item = std::result::Result<&[u8], String>> {
    let mut rest = value;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some((len, after)) = rest.split_first_chunk::<LEN_PREFIX>() else {
            rest = &[];
            return Some(Err("frame cut inside a record's length".to_owned()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some((record, after)) = after.split_at_checked(len) else {
            rest = &[];
            return Some(Err(format!(
                "frame cut inside a record ({len} bytes announced, {} left)",
                after.len()
            )));
        };
        rest = after;
        Some(Ok(record))
    })
}

/// Decodes the records of the item at `key` whose offsets are in `wanted`, validating each
/// (layout, offset, checksum) and the frame around them, and appends them to `out`.
pub(crate) fn decode_item(
    partition: &PartitionName,
    key: ItemKey,
    value: &[u8],
    wanted: Range<u64>,
    out: &mut Vec<Record>,
) -> Result<()> {
    if key.first == key.last {
        if wanted.contains(&key.first.0) {
            out.push(codec::decode_record(partition, key.pid, key.first, value)?);
        }
        return Ok(());
    }
    let mut offset = key.first;
    for record in frame_records(value) {
        let corrupt = |reason: String| Error::Corrupt {
            partition: partition.to_string(),
            offset,
            reason,
        };
        if offset.0 >= wanted.end {
            return Ok(());
        }
        let record = record.map_err(corrupt)?;
        if offset > key.last {
            return Err(corrupt(format!(
                "frame holds more records than its key says ({}..={})",
                key.first, key.last
            )));
        }
        if wanted.contains(&offset.0) {
            out.push(codec::decode_record(partition, key.pid, offset, record)?);
        }
        offset = offset.next();
    }
    if offset <= key.last {
        return Err(Error::Corrupt {
            partition: partition.to_string(),
            offset,
            reason: format!(
                "record missing: the frame ends before its key's last offset {}",
                key.last
            ),
        });
    }
    Ok(())
}

/// The append time of the record at `offset` in the item at `key` (which holds it), validated
/// like [`decode_item`].
pub(crate) fn decode_time(
    partition: &PartitionName,
    key: ItemKey,
    value: &[u8],
    offset: Offset,
) -> Result<Timestamp> {
    let mut one = Vec::with_capacity(1);
    decode_item(partition, key, value, offset.0..offset.0 + 1, &mut one)?;
    one.pop().map(|r| r.time).ok_or_else(|| Error::Corrupt {
        partition: partition.to_string(),
        offset,
        reason: "record missing from its frame".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_record;
    use proptest::prelude::*;

    fn partition() -> PartitionName {
        PartitionName::new("p").expect("valid")
    }

    /// A frame of records `first..first + n` of partition 7, payload `"r{offset}"`.
    fn frame(first: u64, n: u64) -> (ItemKey, Vec<u8>) {
        let mut value = Vec::new();
        for offset in first..first + n {
            let record = encode_record(
                7,
                Offset(offset),
                Timestamp::from_unix_nanos(5),
                Some(b"k"),
                format!("r{offset}").as_bytes(),
            );
            push_record(&mut value, &record);
        }
        let key = ItemKey {
            pid: 7,
            first: Offset(first),
            last: Offset(first + n - 1),
        };
        (key, value)
    }

    fn payloads(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
            .collect()
    }

    #[test]
    fn a_frame_gives_the_records_asked_for() {
        let (key, value) = frame(10, 5);
        let mut out = Vec::new();
        decode_item(&partition(), key, &value, 11..14, &mut out).expect("valid");
        assert_eq!(payloads(&out), ["r11", "r12", "r13"]);
        assert_eq!(out[0].offset, Offset(11));
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
        let time = decode_time(&partition(), key, &value, Offset(14)).expect("time");
        assert_eq!(time, Timestamp::from_unix_nanos(5));
    }

    #[test]
    fn a_frame_that_disagrees_with_its_key_is_corrupt_at_the_first_missing_offset() {
        let (key, value) = frame(10, 5);
        let short = ItemKey {
            last: Offset(20),
            ..key
        };
        let missing = decode_item(&partition(), short, &value, 10..21, &mut Vec::new());
        assert!(
            matches!(&missing, Err(Error::Corrupt { offset: Offset(15), reason, .. }) if reason.contains("missing")),
            "{missing:?}"
        );
        let long = ItemKey {
            last: Offset(12),
            ..key
        };
        let extra = decode_item(&partition(), long, &value, 10..13, &mut Vec::new());
        assert!(
            extra.is_ok(),
            "records past the range asked for are not read"
        );
        let extra = decode_item(&partition(), long, &value, 10..20, &mut Vec::new());
        assert!(
            matches!(
                &extra,
                Err(Error::Corrupt {
                    offset: Offset(13),
                    ..
                })
            ),
            "{extra:?}"
        );
        let cut = decode_item(
            &partition(),
            key,
            &value[..value.len() - 3],
            10..15,
            &mut Vec::new(),
        );
        assert!(
            matches!(&cut, Err(Error::Corrupt { offset: Offset(14), reason, .. }) if reason.contains("cut")),
            "{cut:?}"
        );
    }

    #[test]
    fn a_record_stored_in_another_place_of_its_frame_is_corrupt() {
        let (key, value) = frame(10, 3);
        let shifted = ItemKey {
            first: Offset(11),
            last: Offset(13),
            ..key
        };
        let error = decode_item(&partition(), shifted, &value, 11..14, &mut Vec::new());
        assert!(
            matches!(&error, Err(Error::Corrupt { offset: Offset(11), reason, .. }) if reason.contains("claims offset 10")),
            "{error:?}"
        );
    }

    proptest! {
        #[test]
        fn item_keys_round_trip_and_sort_by_first_offset(
            pid in 0u32..3,
            a in (0u64..1000, 0u64..5),
            b in (0u64..1000, 0u64..5),
        ) {
            let key_of = |(first, extra): (u64, u64)| -> Vec<u8> {
                if extra == 0 {
                    codec::record_key(pid, Offset(first)).to_vec()
                } else {
                    frame_key(pid, Offset(first), Offset(first + extra)).to_vec()
                }
            };
            let (ka, kb) = (key_of(a), key_of(b));
            let parsed = parse_item_key(&ka).expect("an item key");
            prop_assert_eq!((parsed.pid, parsed.first, parsed.last), (pid, Offset(a.0), Offset(a.0 + a.1)));
            if a.0 != b.0 {
                prop_assert_eq!(ka.cmp(&kb), a.0.cmp(&b.0));
            }
            prop_assert!(ka.as_slice() <= covering_bound(pid, Offset(a.0)).as_slice());
            prop_assert!(kb.as_slice() > covering_bound(pid, Offset(b.0.saturating_sub(1))).as_slice() || b.0 == 0);
        }

        #[test]
        fn any_flipped_bit_in_a_frame_is_caught_or_harmless(
            n in 2u64..6,
            bit in any::<proptest::sample::Index>(),
        ) {
            let (key, mut value) = frame(0, n);
            let i = bit.index(value.len() * 8);
            value[i / 8] ^= 1 << (i % 8);
            let mut out = Vec::new();
            if decode_item(&partition(), key, &value, 0..n, &mut out).is_ok() {
                let expected: Vec<String> = (0..n).map(|o| format!("r{o}")).collect();
                prop_assert_eq!(payloads(&out), expected);
            }
        }
    }

    #[test]
    fn keys_of_other_lengths_or_backwards_are_not_items() {
        assert_eq!(parse_item_key(&[0; 11]), None);
        assert_eq!(parse_item_key(&[0; 16]), None);
        assert_eq!(parse_item_key(&frame_key(1, Offset(5), Offset(4))), None);
        assert_eq!(parse_item_key(&frame_key(1, Offset(5), Offset(5))), None);
        assert_eq!(
            parse_item_key(&frame_key(1, Offset(0), Offset(u64::MAX))),
            None
        );
        assert_eq!(
            parse_item_key(&codec::record_key(1, Offset(u64::MAX))),
            None
        );
    }
}
