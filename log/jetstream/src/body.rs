//! The body of a message: a record's key and payload, its place in its append, and a CRC32 of
//! it all, so a damaged message is reported as corruption and never returned as data.
//!
//! Layout (big-endian): `version: u8 = 1`, `flags: u8` (bit 0: has a key), `index: u32` (the
//! record's position in its append, 0 for the first), then `key_len: u32` and the key if it
//! has one, the payload, and `crc32: u32` of every byte before it. The append time and the
//! offset are JetStream's own (the message's timestamp and sequence).

use bytes::{BufMut, Bytes, BytesMut};

const VERSION: u8 = 1;
const HAS_KEY: u8 = 1;
const HEADER: usize = 6;
const CRC: usize = 4;

/// The bytes a body adds to a record's key and payload, at most.
pub const OVERHEAD: usize = HEADER + 4 + CRC;

/// A body read back: the record's key, payload and index in its append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The record's key.
    pub key: Option<Bytes>,
    /// The record's payload.
    pub payload: Bytes,
    /// Its position in the append it came with (0 for the first).
    pub index: u32,
}

/// Encodes one record, the `index`-th of its append.
#[must_use]
pub fn encode(key: Option<&[u8]>, payload: &[u8], index: u32) -> Bytes {
    let mut buf = BytesMut::with_capacity(OVERHEAD + key.map_or(0, <[u8]>::len) + payload.len());
    buf.put_u8(VERSION);
    buf.put_u8(if key.is_some() { HAS_KEY } else { 0 });
    buf.put_u32(index);
    if let Some(key) = key {
        buf.put_u32(key.len() as u32);
        buf.put_slice(key);
    }
    buf.put_slice(payload);
    let crc = crc32fast::hash(&buf);
    buf.put_u32(crc);
    buf.freeze()
}

/// Decodes a body, checking its CRC and layout.
///
/// # Errors
/// What is wrong with it, when it is not a body this version wrote intact.
pub fn decode(body: &Bytes) -> Result<Decoded, &'static str> {
    if body.len() < HEADER + CRC {
        return Err("message shorter than a record body");
    }
    let (content, crc) = body.split_at(body.len() - CRC);
    let stored = u32::from_be_bytes(crc.try_into().map_err(|_| "bad checksum length")?);
    if crc32fast::hash(content) != stored {
        return Err("checksum mismatch");
    }
    if content[0] != VERSION {
        return Err("unknown record body version");
    }
    let flags = content[1];
    let index = u32::from_be_bytes(content[2..6].try_into().map_err(|_| "bad index")?);
    let mut at = HEADER;
    let key = if flags & HAS_KEY != 0 {
        let len_bytes = content.get(at..at + 4).ok_or("key length missing")?;
        let len = u32::from_be_bytes(len_bytes.try_into().map_err(|_| "bad key length")?) as usize;
        at += 4;
        if content.len() < at + len {
            return Err("key longer than the body");
        }
        let key = body.slice(at..at + len);
        at += len;
        Some(key)
    } else {
        None
    };
    Ok(Decoded {
        key,
        payload: body.slice(at..content.len()),
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_read_back_byte_for_byte() {
        for (key, payload, index) in [
            (None, &b""[..], 0),
            (Some(&b""[..]), &b"x"[..], 3),
            (Some(&b"k\0ey"[..]), &[0u8, 255, 1][..], u32::MAX),
        ] {
            let body = encode(key, payload, index);
            assert!(body.len() <= OVERHEAD + key.map_or(0, <[u8]>::len) + payload.len());
            let back = decode(&body).expect("decodes");
            assert_eq!(back.key.as_deref(), key);
            assert_eq!(&back.payload[..], payload);
            assert_eq!(back.index, index);
        }
    }

    #[test]
    fn every_damaged_byte_and_every_cut_is_reported() {
        let body = encode(Some(b"key"), b"payload", 2);
        for i in 0..body.len() {
            let mut damaged = body.to_vec();
            damaged[i] ^= 0x40;
            assert!(decode(&Bytes::from(damaged)).is_err(), "byte {i}");
        }
        for len in 0..body.len() {
            assert!(decode(&body.slice(..len)).is_err(), "cut at {len}");
        }
    }
}
