//! The record key of a CloudEvent in the log: `type \0 source \0 id`.
//!
//! Catalyst stores every event under this key, so that consumers can filter on `type` and
//! `source` and the broker can rebuild its duplicate window without parsing payloads; the
//! registry reads the same keys. NUL is refused in all three attributes, so a key splits one
//! way only. The format is on disk: every stored event is read back by it.

use bytes::Bytes;

/// The record key of an event with these attributes (each without NUL): `ty`, NUL, `source`,
/// NUL, `id`.
#[must_use]
pub fn event_key(ty: &str, source: &str, id: &str) -> Bytes {
    let mut key = Vec::with_capacity(ty.len() + source.len() + id.len() + 2);
    key.extend_from_slice(ty.as_bytes());
    key.push(0);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    Bytes::from(key)
}

/// Splits a key made by [`event_key`] into `(type, source, id)`; `None` when `key` is not
/// UTF-8 or has fewer than two NULs.
#[must_use]
pub fn split_event_key(key: &[u8]) -> Option<(&str, &str, &str)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.splitn(3, '\0');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// `source \0 id`, the end of a key made by [`event_key`]: what identifies the event for
/// duplicate detection. `None` when `key` is not an event key (as for [`split_event_key`]).
#[must_use]
pub fn event_key_source_and_id(key: &[u8]) -> Option<&[u8]> {
    let (ty, _, _) = split_event_key(key)?;
    key.get(ty.len() + 1..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_format_is_type_source_id_separated_by_nul() {
        let key = event_key("t.created", "/s", "1");
        assert_eq!(&key[..], b"t.created\x00/s\x001");
        assert_eq!(split_event_key(&key), Some(("t.created", "/s", "1")));
        assert_eq!(event_key_source_and_id(&key), Some(&b"/s\x001"[..]));
    }

    #[test]
    fn what_is_not_an_event_key_does_not_split() {
        for key in [&b""[..], b"type", b"type\x00source", b"t\x00\xff\x001"] {
            assert_eq!(split_event_key(key), None, "{key:?}");
            assert_eq!(event_key_source_and_id(key), None, "{key:?}");
        }
        assert_eq!(split_event_key(b"\x00\x00"), Some(("", "", "")));
        assert_eq!(
            split_event_key(b"t\x00s\x00i\x00d"),
            Some(("t", "s", "i\0d")),
            "the id is the rest"
        );
    }

    proptest! {
        #[test]
        fn event_keys_round_trip(ty in "[^\0]{0,20}", source in "[^\0]{0,20}", id in "[^\0]{0,20}") {
            let key = event_key(&ty, &source, &id);
            prop_assert_eq!(
                split_event_key(&key),
                Some((ty.as_str(), source.as_str(), id.as_str()))
            );
            let source_and_id = format!("{source}\0{id}");
            prop_assert_eq!(event_key_source_and_id(&key), Some(source_and_id.as_bytes()));
        }
    }
}
