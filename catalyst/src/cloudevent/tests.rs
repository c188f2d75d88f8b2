use bytes::Bytes;
use proptest::prelude::*;
use serde_json::value::RawValue;

use super::parse::{base64_encode, parse_with_sdk};
use super::*;

mod fast_path;

fn bytes_of(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// The default limit, which every event here is well within.
const DEPTH: MaxDepth = MaxDepth::DEFAULT;

const MINIMAL: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t.created"}"#;

#[test]
fn structured_events_are_stored_as_sent() {
    let body = format!("  {MINIMAL}\n");
    let event = parse_structured(&bytes_of(&body), DEPTH).expect("valid");
    assert_eq!(
        (event.id(), event.source(), event.ty()),
        ("1", "/s", "t.created")
    );
    assert_eq!(&event.record_key()[..], b"t.created\x00/s\x001");
    assert_eq!(event.source_and_id(), b"/s\x001");
    assert_eq!(
        &event.json[..],
        MINIMAL.as_bytes(),
        "bytes kept, whitespace trimmed"
    );
}

#[test]
fn invalid_utf8_is_refused_by_both_paths() {
    let event = b"{\"specversion\":\"1.0\",\"id\":\"\xff\",\"source\":\"/s\",\"type\":\"t\"}";
    let body = Bytes::from_static(event);
    assert!(
        fast::parse(&body).is_none(),
        "the fast path does not vouch for it"
    );
    assert!(parse_structured(&body, DEPTH).is_err());
    let batch = Bytes::from([&b"["[..], MINIMAL.as_bytes(), b",", event, b"]"].concat());
    assert!(fast::parse_batch(&batch, 4).is_none());
    assert!(parse_batch(&batch, 4, DEPTH).is_err());
}

#[test]
fn form_feed_is_not_json_whitespace() {
    for body in [format!("\x0c{MINIMAL}"), format!("{MINIMAL}\x0c")] {
        assert!(
            parse_structured(&bytes_of(&body), DEPTH).is_err(),
            "{body:?}"
        );
    }
}

#[test]
fn missing_and_invalid_attributes_are_named() {
    for (body, attribute) in [
        (r#"{"specversion":"1.0","source":"/s","type":"t"}"#, "id"),
        (r#"{"specversion":"1.0","id":"1","type":"t"}"#, "source"),
        (r#"{"specversion":"1.0","id":"1","source":"/s"}"#, "type"),
        (
            r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
            "id",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}"#,
            "time",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad":"x"}"#,
            "Bad",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","draftoffset":1}"#,
            "draftoffset",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","draftactor":"admin"}"#,
            "draftactor",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"no url"}"#,
            "dataschema",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":5}"#,
            "subject",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"!!"}"#,
            "data_base64",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":""}"#,
            "data",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":{"a":1}}"#,
            "data",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","ratio":1.5}"#,
            "ratio",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","tags":["a"]}"#,
            "tags",
        ),
        (
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","big":18446744073709551615}"#,
            "big",
        ),
    ] {
        let err = parse_structured(&bytes_of(body), DEPTH).expect_err(body);
        assert!(
            err.message.contains(attribute),
            "{body}: {err:?} should name {attribute}"
        );
    }
    assert!(parse_structured(&Bytes::from_static(b"not json"), DEPTH).is_err());
    // What the SDK accepts is accepted: null is absent, integer and boolean extensions, text
    // data with a text content type, JSON data of any kind with a JSON one.
    for body in [
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"n":-5,"ok":true}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/vnd.x+json","data":[1]}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"urn:x:y","data_base64":"aGk="}"#,
    ] {
        parse_structured(&bytes_of(body), DEPTH).expect(body);
    }
    assert!(
        parse_structured(
            &Bytes::from_static(br#"{"specversion":"0.1","id":"1","source":"/s","type":"t"}"#),
            DEPTH
        )
        .is_err()
    );
}

#[test]
fn batches_keep_each_event_and_name_the_bad_one() {
    let body = format!(
        "[{MINIMAL}, {{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"u\"}}]"
    );
    let events = parse_batch(&bytes_of(&body), 10, DEPTH).expect("valid");
    assert_eq!(events.len(), 2);
    assert_eq!(&events[0].json[..], MINIMAL.as_bytes());
    let bad = format!("[{MINIMAL}, {{\"specversion\":\"1.0\",\"id\":\"2\"}}]");
    let err = parse_batch(&bytes_of(&bad), 10, DEPTH).expect_err("second is invalid");
    assert!(err.message.starts_with("event 1 of the batch"), "{err:?}");
    assert!(parse_batch(&Bytes::from_static(b"[]"), 10, DEPTH).is_err());
    assert!(
        parse_batch(&bytes_of(&format!("[{MINIMAL},{MINIMAL}]")), 1, DEPTH).is_err(),
        "too many"
    );
}

fn headers(pairs: &[(&'static str, &str)]) -> axum::http::HeaderMap {
    let mut map = axum::http::HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, v.parse().expect("header value"));
    }
    map
}

#[test]
fn binary_mode_keeps_json_data_byte_for_byte_and_binary_as_base64() {
    let base = [
        ("ce-specversion", "1.0"),
        ("ce-id", "9"),
        ("ce-source", "/b"),
        ("ce-type", "b.t"),
        ("ce-color", "red"),
    ];
    let mut json = base.to_vec();
    json.push(("content-type", "application/json"));
    let event = parse_binary(&headers(&json), br#"{"b": 1,  "a": [2]}"#, DEPTH).expect("valid");
    let stored: serde_json::Value = serde_json::from_slice(&event.json).expect("json");
    assert_eq!(stored["color"], "red");
    assert_eq!(stored["type"], "b.t");
    assert!(
        std::str::from_utf8(&event.json)
            .expect("utf8")
            .contains(r#""data":{"b": 1,  "a": [2]}"#)
    );

    let mut bin = base.to_vec();
    bin.push(("content-type", "application/octet-stream"));
    let event = parse_binary(&headers(&bin), &[0, 1, 2, 255], DEPTH).expect("valid");
    let stored: serde_json::Value = serde_json::from_slice(&event.json).expect("json");
    assert_eq!(stored["data_base64"], "AAEC/w==");

    let mut text = base.to_vec();
    text.push(("content-type", "text/plain"));
    let event = parse_binary(&headers(&text), "héllo \"x\"".as_bytes(), DEPTH).expect("valid");
    let stored: serde_json::Value = serde_json::from_slice(&event.json).expect("json");
    assert_eq!(stored["data"], "héllo \"x\"");

    let err = parse_binary(
        &headers(&[("ce-specversion", "1.0"), ("ce-id", "1")]),
        b"",
        DEPTH,
    )
    .expect_err("no type");
    assert!(!err.message.is_empty());
}

#[test]
fn delivered_events_carry_channel_and_offset() {
    let text = delivered("orders", 42, MINIMAL.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(value["draftchannel"], "orders");
    assert_eq!(value["draftoffset"], 42);
    assert_eq!(value["id"], "1");
    assert_eq!(
        text,
        format!(
            "{{\"draftchannel\":\"orders\",\"draftoffset\":42,{}",
            &MINIMAL[1..]
        )
    );
    let damaged = delivered("c", 0, b"{\"a\":\"\xff\"}");
    assert_eq!(
        damaged,
        "{\"draftchannel\":\"c\",\"draftoffset\":0,\"a\":\"\u{fffd}\"}"
    );
}

#[test]
fn filters_match_exact_and_prefix() {
    let filter = Filter {
        types: vec![Pattern::parse("order.*"), Pattern::parse("user.created")],
        sources: vec![],
    };
    assert!(filter.matches("order.paid", "/x"));
    assert!(filter.matches("user.created", "/x"));
    assert!(!filter.matches("user.deleted", "/x"));
    let key = ParsedEvent::new("order.paid", "/shop", "1", Bytes::new()).record_key();
    assert!(filter.matches_key(Some(&key)));
    let by_source = Filter {
        types: vec![],
        sources: vec![Pattern::parse("/other")],
    };
    assert!(!by_source.matches_key(Some(&key)));
    assert!(Filter::default().matches_key(None));
}

proptest! {
    #[test]
    fn base64_matches_the_sdk(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        use cloudevents::EventBuilder as _;
        let mut event = cloudevents::EventBuilderV10::new().id("1").source("/s").ty("t");
        event = event.data("application/octet-stream", bytes.clone());
        let event = cloudevents::EventBuilder::build(event).expect("event");
        let value = serde_json::to_value(&event).expect("json");
        prop_assert_eq!(value["data_base64"].as_str().unwrap_or(""), base64_encode(&bytes));
    }

    #[test]
    fn record_keys_round_trip(ty in "[a-z.]{1,20}", source in "/[a-z/]{0,20}", id in "[a-z0-9-]{1,20}") {
        let event = ParsedEvent::new(&ty, &source, &id, Bytes::new());
        let key = event.record_key();
        prop_assert_eq!(split_record_key(&key), Some((ty.as_str(), source.as_str(), id.as_str())));
        prop_assert_eq!((event.ty(), event.source(), event.id()), (ty.as_str(), source.as_str(), id.as_str()));
    }
}
