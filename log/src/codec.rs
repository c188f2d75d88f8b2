//! How records and metadata are laid out in fjall.
//!
//! - Record keys are `partition id (u32, big-endian) ++ offset (u64, big-endian)`, so fjall's
//!   byte order is (partition, offset) order and one partition is one contiguous key range.
//!   Several records appended together are stored as frames (see `frame.rs`), whose keys
//!   extend this one with the last offset.
//! - Record values are a [`StoredRecord`] encoded with rkyv and validated (bytecheck) on read,
//!   plus a CRC-32 (IEEE, `crc32fast`) over every field, so a flipped bit in the
//!   payload is caught even where the rkyv layout stays valid.
//! - rkyv is built with its `unaligned` feature (set once, in the workspace manifest): fjall
//!   hands values back at arbitrary addresses, and rkyv's default format needs aligned bytes
//!   (61 of 64 values failed `access` in a test here). The unaligned format reads them in place
//!   instead of copying each value into an `AlignedVec`. It is part of the on-disk format.

use bytes::Bytes;
use rkyv::rancor;

use crate::error::{Error, Result};
use crate::record::{Offset, PartitionName, Record, Timestamp};

/// The length of a record key.
pub(crate) const RECORD_KEY_LEN: usize = 12;

/// Encodes a record key: partition id then offset, both big-endian so that byte order is
/// numeric order.
pub(crate) fn record_key(pid: u32, offset: Offset) -> [u8; RECORD_KEY_LEN] {
    let mut key = [0u8; RECORD_KEY_LEN];
    key[..4].copy_from_slice(&pid.to_be_bytes());
    key[4..].copy_from_slice(&offset.0.to_be_bytes());
    key
}

/// Decodes a record key, or `None` if it is not one.
pub(crate) fn parse_record_key(key: &[u8]) -> Option<(u32, Offset)> {
    let key: &[u8; RECORD_KEY_LEN] = key.try_into().ok()?;
    let (pid, offset) = key.split_at(4);
    let pid = u32::from_be_bytes(pid.try_into().ok()?);
    let offset = u64::from_be_bytes(offset.try_into().ok()?);
    Some((pid, Offset(offset)))
}

/// A record as stored (the partition and the offset are also in the key).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug)]
struct StoredRecord {
    offset: u64,
    time: u64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    checksum: u32,
}

/// The same record, borrowed: what the writer encodes, without copying the key and the payload
/// into vectors first. Its archived layout is [`StoredRecord`]'s, byte for byte (a test checks
/// it); values are always read back as `ArchivedStoredRecord`.
#[derive(rkyv::Archive, rkyv::Serialize)]
struct StoredRecordRef<'a> {
    offset: u64,
    time: u64,
    #[rkyv(with = rkyv::with::Map<SliceAsVec>)]
    key: Option<&'a [u8]>,
    #[rkyv(with = SliceAsVec)]
    payload: &'a [u8],
    checksum: u32,
}

/// Archives a borrowed byte slice as a `Vec<u8>` is archived.
struct SliceAsVec;

impl rkyv::with::ArchiveWith<&[u8]> for SliceAsVec {
    type Archived = rkyv::vec::ArchivedVec<u8>;
    type Resolver = rkyv::vec::VecResolver;

    fn resolve_with(field: &&[u8], resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        rkyv::vec::ArchivedVec::resolve_from_len(field.len(), resolver, out);
    }
}

impl<S> rkyv::with::SerializeWith<&[u8], S> for SliceAsVec
where
    S: rancor::Fallible + rkyv::ser::Allocator + rkyv::ser::Writer + ?Sized,
{
    fn serialize_with(
        field: &&[u8],
        serializer: &mut S,
    ) -> std::result::Result<Self::Resolver, S::Error> {
        rkyv::vec::ArchivedVec::<u8>::serialize_from_slice(field, serializer)
    }
}

fn checksum(pid: u32, offset: u64, time: u64, key: Option<&[u8]>, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&pid.to_le_bytes());
    h.update(&offset.to_le_bytes());
    h.update(&time.to_le_bytes());
    match key {
        Some(key) => {
            h.update(&[1]);
            h.update(&(key.len() as u64).to_le_bytes());
            h.update(key);
        }
        None => h.update(&[0]),
    }
    h.update(payload);
    h.finalize()
}

/// Encodes a record's value (the writer uses [`encode_record_into`] with a reused buffer).
#[cfg(test)]
pub(crate) fn encode_record(
    pid: u32,
    offset: Offset,
    time: Timestamp,
    key: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record_into(&mut out, pid, offset, time, key, payload);
    out
}

/// Encodes a record's value into `out` (cleared first), so a caller encoding many records
/// reuses one buffer. The bytes are those of [`encode_record`].
pub(crate) fn encode_record_into(
    out: &mut Vec<u8>,
    pid: u32,
    offset: Offset,
    time: Timestamp,
    key: Option<&[u8]>,
    payload: &[u8],
) {
    let stored = StoredRecordRef {
        offset: offset.0,
        time: time.as_unix_nanos(),
        key,
        payload,
        checksum: checksum(pid, offset.0, time.as_unix_nanos(), key, payload),
    };
    out.clear();
    // A plain `Vec` is a valid rkyv writer: with the `unaligned` format nothing depends on the
    // buffer's alignment, and the bytes are the same as `rkyv::to_bytes` gives.
    match rkyv::api::high::to_bytes_in::<_, rancor::Error>(&stored, std::mem::take(out)) {
        Ok(bytes) => *out = bytes,
        // Serializing plain integers and byte slices into a growable buffer has no failure
        // mode but allocation failure, which aborts before reaching here.
        Err(e) => unreachable!("rkyv cannot fail to serialize a StoredRecord: {e}"),
    }
}

/// Validates and decodes a record's value read at (`pid`, `offset`) of `partition`.
///
/// # Errors
/// [`Error::Corrupt`] when the bytes are not a valid `StoredRecord`, hold another offset, or
/// fail their checksum.
pub(crate) fn decode_record(
    partition: &PartitionName,
    pid: u32,
    offset: Offset,
    value: &[u8],
) -> Result<Record> {
    let corrupt = |reason: String| Error::Corrupt {
        partition: partition.to_string(),
        offset,
        reason,
    };
    let archived = rkyv::access::<ArchivedStoredRecord, rancor::Error>(value)
        .map_err(|e| corrupt(format!("invalid record layout: {e}")))?;
    let stored_offset = archived.offset.to_native();
    if stored_offset != offset.0 {
        return Err(corrupt(format!("record claims offset {stored_offset}")));
    }
    let time = archived.time.to_native();
    let key = archived.key.as_ref().map(rkyv::vec::ArchivedVec::as_slice);
    let payload = archived.payload.as_slice();
    let expected = checksum(pid, offset.0, time, key, payload);
    if archived.checksum.to_native() != expected {
        return Err(corrupt("checksum mismatch".to_owned()));
    }
    Ok(Record {
        partition: partition.clone(),
        offset,
        time: Timestamp::from_unix_nanos(time),
        key: key.map(Bytes::copy_from_slice),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// Per-partition statistics kept in the meta keyspace and written in the same atomic batch
/// as the records they describe, so that opening the log never scans records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) first: u64,
    pub(crate) next: u64,
    pub(crate) bytes: u64,
    /// Unix nanos of the last append, 0 if none.
    pub(crate) last_time: u64,
}

const STATS_VERSION: u8 = 1;
const STATS_LEN: usize = 1 + 4 * 8;

impl Stats {
    pub(crate) fn encode(&self) -> [u8; STATS_LEN] {
        let mut out = [0u8; STATS_LEN];
        out[0] = STATS_VERSION;
        for (i, v) in [self.first, self.next, self.bytes, self.last_time]
            .into_iter()
            .enumerate()
        {
            out[1 + i * 8..9 + i * 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != STATS_LEN || bytes[0] != STATS_VERSION {
            return None;
        }
        let field = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                bytes.get(1 + i * 8..9 + i * 8)?.try_into().ok()?,
            ))
        };
        Some(Self {
            first: field(0)?,
            next: field(1)?,
            bytes: field(2)?,
            last_time: field(3)?,
        })
    }
}

/// Meta key naming a partition: `n` ++ name, value = partition id (u32 big-endian).
pub(crate) fn name_key(name: &PartitionName) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.as_str().len());
    key.push(b'n');
    key.extend_from_slice(name.as_str().as_bytes());
    key
}

/// The storage format this version writes: 1 was records only, 2 adds frames (`frame.rs`).
/// Every version reads the formats up to its own and refuses newer ones.
pub(crate) const FORMAT: u32 = 2;

/// Meta key holding the storage format of the data directory (`u32`, big-endian). Directories
/// from before it existed hold format 1.
pub(crate) const FORMAT_KEY: &[u8] = b"format";

/// Meta key holding a partition's [`Stats`]: `s` ++ partition id.
pub(crate) fn stats_key(pid: u32) -> [u8; 5] {
    let mut key = [b's'; 5];
    key[1..].copy_from_slice(&pid.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owned layout, encoded the plain way: what `StoredRecordRef` must reproduce.
    fn encode_owned(
        pid: u32,
        offset: u64,
        time: u64,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Vec<u8> {
        let stored = StoredRecord {
            offset,
            time,
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            checksum: checksum(pid, offset, time, key, payload),
        };
        rkyv::to_bytes::<rancor::Error>(&stored)
            .expect("encode")
            .to_vec()
    }

    proptest::proptest! {
        /// The writer's encoding (borrowed, into a reused buffer) is rkyv's encoding of the
        /// owned `StoredRecord`: the on-disk format is unchanged.
        #[test]
        fn encoding_into_a_reused_buffer_gives_rkyvs_bytes(
            pid: u32,
            offset: u64,
            time: u64,
            key in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let mut buf = vec![9; 1000];
            let at = Timestamp::from_unix_nanos(time);
            encode_record_into(&mut buf, pid, Offset(offset), at, key.as_deref(), &payload);
            proptest::prop_assert_eq!(buf, encode_owned(pid, offset, time, key.as_deref(), &payload));
        }
    }
    use proptest::prelude::*;

    fn partition() -> PartitionName {
        PartitionName::new("p").expect("valid")
    }

    proptest! {
        #[test]
        fn record_key_round_trips(pid in any::<u32>(), offset in any::<u64>()) {
            let key = record_key(pid, Offset(offset));
            prop_assert_eq!(parse_record_key(&key), Some((pid, Offset(offset))));
        }

        #[test]
        fn record_key_byte_order_is_numeric_order(
            a in (any::<u32>(), any::<u64>()),
            b in (any::<u32>(), any::<u64>()),
        ) {
            let ka = record_key(a.0, Offset(a.1));
            let kb = record_key(b.0, Offset(b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }

        #[test]
        fn record_value_round_trips(
            pid in any::<u32>(),
            offset in any::<u64>(),
            time in any::<u64>(),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            payload in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let value = encode_record(pid, Offset(offset), Timestamp::from_unix_nanos(time),
                key.as_deref(), &payload);
            let record = decode_record(&partition(), pid, Offset(offset), &value)
                .expect("a fresh record decodes");
            prop_assert_eq!(record.offset, Offset(offset));
            prop_assert_eq!(record.time.as_unix_nanos(), time);
            prop_assert_eq!(record.key.as_deref(), key.as_deref());
            prop_assert_eq!(&record.payload[..], &payload[..]);
        }

        #[test]
        fn any_flipped_bit_is_caught_or_harmless(
            payload in proptest::collection::vec(any::<u8>(), 1..256),
            bit in any::<proptest::sample::Index>(),
        ) {
            let mut value = encode_record(7, Offset(3), Timestamp::from_unix_nanos(9), None, &payload);
            let i = bit.index(value.len() * 8);
            value[i / 8] ^= 1 << (i % 8);
            // A flipped bit must never yield a record that differs from what was written.
            if let Ok(r) = decode_record(&partition(), 7, Offset(3), &value) {
                prop_assert_eq!(&r.payload[..], &payload[..]);
                prop_assert_eq!(r.time.as_unix_nanos(), 9);
            }
        }
    }

    #[test]
    fn a_record_read_at_another_offset_is_corrupt() {
        let value = encode_record(1, Offset(5), Timestamp::from_unix_nanos(1), None, b"x");
        let err = decode_record(&partition(), 1, Offset(6), &value).expect_err("wrong offset");
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    offset: Offset(6),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn stats_round_trip_and_reject_garbage() {
        let s = Stats {
            first: 1,
            next: 10,
            bytes: 300,
            last_time: 42,
        };
        assert_eq!(Stats::decode(&s.encode()), Some(s));
        assert_eq!(Stats::decode(&[9; 33]), None);
        assert_eq!(Stats::decode(&[]), None);
    }
}
