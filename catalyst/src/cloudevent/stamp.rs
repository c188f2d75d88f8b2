//! What Draft adds to an event it stores: `draftactor`, the name of the token the producer
//! presented, so the log says who produced each event (producers may not send it; see
//! [`RESERVED_EXTENSIONS`](super::RESERVED_EXTENSIONS)).

use bytes::Bytes;

/// `stored` (one event, a JSON object) with `"draftactor":<actor>` as its first member.
#[must_use]
pub fn with_actor(stored: &[u8], actor: &str) -> Bytes {
    let start = stored
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(stored.len());
    // Validated events are objects: past their `{`, the members (or the closing `}`).
    let rest = stored.get(start + 1..).unwrap_or_default();
    let rest = &rest[rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len())..];
    let name = serde_json::to_string(actor).unwrap_or_else(|_| "\"?\"".to_owned());
    let mut out = Vec::with_capacity(stored.len() + name.len() + 16);
    out.extend_from_slice(b"{\"draftactor\":");
    out.extend_from_slice(name.as_bytes());
    if !rest.starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_comes_first_and_the_event_stays_as_sent() {
        let event = br#"  { "id":"1","source":"/s" , "type":"t"}"#;
        let stamped = with_actor(event, "ci");
        assert_eq!(
            &stamped[..],
            br#"{"draftactor":"ci","id":"1","source":"/s" , "type":"t"}"#
        );
        let value: serde_json::Value = serde_json::from_slice(&stamped).expect("JSON");
        assert_eq!(value["draftactor"], "ci");
        assert_eq!(&with_actor(b"{}", "a")[..], br#"{"draftactor":"a"}"#);
        assert_eq!(
            &with_actor(b"{\"a\":1}", "q\"x")[..],
            br#"{"draftactor":"q\"x","a":1}"#
        );
    }
}
