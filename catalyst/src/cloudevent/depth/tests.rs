use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cloudevent::parse::{parse_batch, parse_binary, parse_structured};
use crate::cloudevent::{EventError, fast};

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

const MOST: usize = MaxDepth::MOST;

#[test]
fn counts_brackets_outside_strings() {
    assert!(!deeper_than(b"{}", 1));
    assert!(deeper_than(b"{\"a\":[]}", 1));
    assert!(!deeper_than(br#"{"a":"[[[[{{{{"}"#, 1));
    assert!(!deeper_than(br#"{"a":"\"[[[["}"#, 1));
    assert!(deeper_than(br#"{"a":"\\",  "b":[[]]}"#, 2));
    assert!(!deeper_than(nested(127).as_bytes(), MOST));
    assert!(deeper_than(nested(128).as_bytes(), MOST));
    assert!(deeper_than(nested(100_000).as_bytes(), MOST));
}

#[test]
fn a_limit_is_1_to_127_levels() {
    assert_eq!(MaxDepth::default(), MaxDepth::DEFAULT);
    assert_eq!(MaxDepth::DEFAULT.get(), 127);
    assert_eq!(MaxDepth::new(1).map(MaxDepth::get), Ok(1));
    assert_eq!(MaxDepth::try_from(127).map(MaxDepth::get), Ok(127));
    for levels in [0, 128, 100_000] {
        let e = MaxDepth::new(levels).expect_err("out of range");
        assert_eq!(e.levels(), levels);
        let message = e.to_string();
        assert!(
            message.contains("1 to 127") && message.contains(&levels.to_string()),
            "{message}"
        );
    }
    assert_eq!(MaxDepth::DEFAULT.to_string(), "127 levels");
}

/// `data` nested `kinds.len()` deep (objects where `true`, arrays where `false`), with
/// brackets inside its strings that must not count.
fn nested_data(kinds: &[bool]) -> String {
    let mut data = String::from(r#""]}[{""#);
    for &object in kinds.iter().rev() {
        data = if object {
            format!(r#"{{"k{{":{data}}}"#)
        } else {
            format!(r#"["[",{data}]"#)
        };
    }
    data
}

/// An event with `data`; the escaped attribute name sends it down the SDK's path instead of
/// the fast one.
fn event(id: &str, data: &str, escaped: bool) -> String {
    let ty = if escaped {
        r#""typ\u0065""#
    } else {
        r#""type""#
    };
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/deep",{ty}:"t","data":{data}}}"#)
}

fn binary_headers() -> axum::http::HeaderMap {
    binary_headers_of("application/json")
}

fn binary_headers_of(content_type: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "b"),
        ("ce-source", "/deep"),
        ("ce-type", "t"),
        ("content-type", content_type),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    headers
}

/// Regression: a binary-mode body that is not JSON was counted as if it were, so a file whose
/// bytes hold more `[` and `{` than `]` and `}` was refused as nested, though it is stored as
/// one string (`data_base64`, or `data` for text).
#[test]
fn a_binary_body_that_is_not_json_does_not_nest() {
    let max = MaxDepth::new(8).expect("in range");
    let brackets = "[{".repeat(50);
    for (content_type, stored_as) in [
        ("application/octet-stream", "data_base64"),
        ("image/png", "data_base64"),
        ("text/plain", "data"),
    ] {
        let event = parse_binary(&binary_headers_of(content_type), brackets.as_bytes(), max)
            .expect(content_type);
        let stored: serde_json::Value = serde_json::from_slice(&event.json).expect("JSON");
        assert!(stored[stored_as].is_string(), "{content_type}: {stored}");
    }
    for content_type in ["application/json", "application/vnd.x+json", "text/json"] {
        let e = parse_binary(&binary_headers_of(content_type), nested(8).as_bytes(), max)
            .expect_err(content_type);
        assert_eq!(e.attribute.as_deref(), Some("data"), "{content_type}");
    }
    let mut untyped = binary_headers();
    untyped.remove("content-type");
    let e = parse_binary(&untyped, nested(8).as_bytes(), max).expect_err("JSON by default");
    assert_eq!(e.attribute.as_deref(), Some("data"));
}

/// The verdict on one event: `Ok` if stored, else the attribute named and the message.
fn verdict<T>(result: Result<T, EventError>) -> Result<(), (Option<String>, String)> {
    result.map(|_| ()).map_err(|e| (e.attribute, e.message))
}

proptest! {
    /// The scan agrees with `serde_json`'s own limit on every depth around it.
    #[test]
    fn agrees_with_serde_json(depth in 1usize..300, object in any::<bool>()) {
        let text = if object {
            let mut t = String::new();
            for _ in 0..depth { t.push_str("{\"k\":"); }
            t.push('1');
            for _ in 0..depth { t.push('}'); }
            t
        } else {
            nested(depth)
        };
        let serde_ok = serde_json::from_str::<serde_json::Value>(&text).is_ok();
        prop_assert_eq!(!deeper_than(text.as_bytes(), MOST), serde_ok, "depth {}", depth);
    }

    /// A configured limit is honoured the same way by every path an event can take: the fast
    /// path and the SDK's for one structured event (a WebSocket frame is one), a batch read in
    /// one pass and one read event by event, and binary mode. An event fits when it nests no
    /// deeper than the limit, itself counting as one; one that does not is refused naming
    /// `data`.
    #[test]
    fn a_configured_limit_is_the_same_on_every_path(
        limit in 1usize..=MOST,
        around in 0usize..4,
        kinds in prop::collection::vec(any::<bool>(), MOST + 2),
    ) {
        let max = MaxDepth::new(limit).expect("in range");
        // From data two levels shallower than the limit allows to one level deeper than it.
        let depth = (limit + around).saturating_sub(3);
        let data = nested_data(&kinds[..depth]);
        // The event itself is one level: data `depth` deep makes `depth + 1`.
        let fits = depth < limit;
        let refused = format!("data is nested deeper than {limit} levels");
        let fast_body = Bytes::from(event("f", &data, false));
        let sdk_body = Bytes::from(event("s", &data, true));
        prop_assert!(fast::parse(&sdk_body).is_none(), "the escaped one goes the SDK's way");
        if fits {
            prop_assert!(fast::parse(&fast_body).is_some(), "the other one goes the fast way");
        }
        let fast = verdict(parse_structured(&fast_body, max));
        let sdk = verdict(parse_structured(&sdk_body, max));
        prop_assert_eq!(&fast, &sdk, "limit {}, depth {}", limit, depth);
        prop_assert_eq!(fast.is_ok(), fits, "limit {}, depth {}: {:?}", limit, depth, fast);
        if let Err((attribute, message)) = &fast {
            prop_assert_eq!(attribute.as_deref(), Some("data"));
            prop_assert!(message.contains(&refused), "{}", message);
        }
        let batches = [
            Bytes::from(format!("[{}]", event("f", &data, false))),
            Bytes::from(format!("[{},{}]", event("a", "1", true), event("s", &data, true))),
        ];
        for batch in &batches {
            let verdict = verdict(parse_batch(batch, 10, max));
            prop_assert_eq!(verdict.is_ok(), fits, "batch, limit {}, depth {}", limit, depth);
            if let Err((attribute, message)) = verdict {
                prop_assert_eq!(attribute.as_deref(), Some("data"));
                prop_assert!(message.contains(&refused), "{}", message);
                prop_assert!(message.starts_with("event "), "names the event: {}", message);
            }
        }
        let binary = verdict(parse_binary(&binary_headers(), data.as_bytes(), max));
        prop_assert_eq!(binary.is_ok(), fits, "binary, limit {}, depth {}", limit, depth);
        if let Err((attribute, message)) = binary {
            prop_assert_eq!(attribute.as_deref(), Some("data"));
            prop_assert!(message.contains(&refused), "{}", message);
        }
    }
}

/// The plain byte-by-byte scan: what `deeper_than` must agree with on any input.
fn reference_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

proptest! {
    #[test]
    fn skipping_strings_and_counting_openers_agree_with_the_plain_scan(
        text in proptest::collection::vec(
            prop_oneof![Just(b'['), Just(b'{'), Just(b']'), Just(b'}'), Just(b'"'), Just(b'\\'), Just(b'a')],
            0..64,
        ),
        limit in 0usize..8,
    ) {
        prop_assert_eq!(deeper_than(&text, limit), reference_deeper_than(&text, limit));
    }
}
