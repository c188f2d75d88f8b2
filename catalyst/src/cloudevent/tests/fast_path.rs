//! The fast path against cloudevents-sdk: property tests on generated events and batches,
//! and the common shapes that must take the fast path.

use super::*;

/// Attribute values for the fast-path property test: mostly the first (valid) one, so that
/// most events are valid but for one or two attributes; sometimes any other, or none.
fn attribute(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        16 => Just(Some(values[0])),
        2 => proptest::sample::select(values).prop_map(Some),
        1 => Just(None),
    ]
}

/// Like [`attribute`], but usually absent (for `data_base64`, which `data` excludes).
fn rare_attribute(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        1 => proptest::sample::select(values).prop_map(Some),
        4 => Just(None),
    ]
}

/// Up to two extension attributes: names valid and not, values the SDK takes and not.
fn generated_extensions() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(
                &[
                    "ext",
                    "ext",
                    "a1",
                    "a1",
                    "Ext",
                    "draftoffset",
                    "draftactor",
                    "x_y",
                    "\\u0065xt",
                ][..],
            ),
            proptest::sample::select(
                &[
                    r#""v""#,
                    r#""v""#,
                    r#""v""#,
                    "true",
                    "true",
                    "5",
                    "null",
                    "5",
                    "-7",
                    "9223372036854775807",
                    "9223372036854775808",
                    "-9223372036854775808",
                    "1.5",
                    "1e3",
                    "-0",
                    "{}",
                    "[]",
                ][..],
            ),
        ),
        0..3,
    )
}

/// A JSON object of generated attributes (in any order, sometimes with a duplicate).
fn generated_event() -> impl Strategy<Value = String> {
    let core = (
        attribute(&[r#""1.0""#, r#""0.3""#, r#""1.1""#, "null", "1"]),
        attribute(&[
            r#""id-1""#,
            r#""""#,
            r#""a\u0000b""#,
            r#""es\"c""#,
            "null",
            "5",
        ]),
        attribute(&[r#""/src""#, r#""""#, r#""\/s""#, "null", "true"]),
        attribute(&[r#""t.created""#, r#""""#, "null", "[]"]),
        attribute(&[
            r#""2026-11-28T12:00:00Z""#,
            r#""2026-11-28T12:00:00.123+02:00""#,
            r#""yesterday""#,
            r#""2026-13-01T00:00:00Z""#,
            "null",
            "5",
        ]),
        attribute(&[
            r#""application/json""#,
            r#""text/plain""#,
            r#""application/vnd.x+json""#,
            r#""""#,
            "null",
            "5",
        ]),
        attribute(&[
            r#""https://x.example/s""#,
            r#""urn:a:b""#,
            r#""relative/path""#,
            r#""""#,
            "null",
        ]),
        attribute(&[r#""subject""#, "null", "[1]"]),
        attribute(&[r#"{"a":1}"#, r#""text""#, "null", "[1,2]", "5"]),
        rare_attribute(&[r#""aGk=""#, r#""!!""#, r#""""#, "null", "5"]),
    );
    let names = [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "dataschema",
        "subject",
        "data",
        "data_base64",
    ];
    let extensions = generated_extensions();
    (core, extensions, prop::bool::weighted(0.1)).prop_flat_map(
        move |(core, extensions, duplicate)| {
            let (specversion, id, source, ty, time, content_type, schema, subject, data, base64) =
                core;
            let values = [
                specversion,
                id,
                source,
                ty,
                time,
                content_type,
                schema,
                subject,
                data,
                base64,
            ];
            let mut members: Vec<String> = values
                .into_iter()
                .zip(names)
                .filter_map(|(value, name)| value.map(|v| format!(r#""{name}":{v}"#)))
                .collect();
            members.extend(extensions.iter().map(|(n, v)| format!(r#""{n}":{v}"#)));
            if duplicate {
                members.push(r#""id":"id-2""#.to_owned());
            }
            Just(members)
                .prop_shuffle()
                .prop_map(|members| format!("{{{}}}", members.join(",")))
        },
    )
}

#[test]
fn common_events_take_the_fast_path() {
    for body in [
        MINIMAL.to_owned(),
        format!(
            r#"{{"specversion":"1.0","id":"7","source":"/bench","type":"bench.event","time":"2026-11-28T12:00:00Z","datacontenttype":"application/json","subject":"s","dataschema":"https://x.example/s","ext":"v","n":5,"ok":true,"data":{{"pad":"{}"}}}}"#,
            "x".repeat(190)
        ),
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"aGk="}"#.to_owned(),
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}"#.to_owned(),
    ] {
        let fast = fast::parse(&bytes_of(&body)).expect(&body);
        assert_eq!(Ok(fast), parse_with_sdk(bytes_of(&body)), "{body}");
    }
}

#[test]
fn common_batches_take_the_fast_path_and_odd_ones_the_slow_one() {
    let second = r#"{"specversion":"1.0","id":"2","source":"/s","type":"u","subject":"a\"b"}"#;
    let body = bytes_of(&format!(" [ {MINIMAL} ,\n{second}\t] "));
    let fast = fast::parse_batch(&body, 10).expect("fast");
    assert_eq!(fast.len(), 2);
    assert_eq!(&fast[0].json[..], MINIMAL.as_bytes());
    assert_eq!(&fast[1].json[..], second.as_bytes());
    assert_eq!(Ok(fast), parse_batch_slowly(&body, 10));
    for odd in [
        "[]".to_owned(),
        format!("[{MINIMAL}"),
        format!("[{MINIMAL},]"),
        format!("[{MINIMAL}] x"),
        format!("[{MINIMAL} {MINIMAL}]"),
        format!("[{MINIMAL},1]"),
        format!("{{\"a\":[{MINIMAL}]}}"),
        format!("\x0c[{MINIMAL}]"),
        format!("[\x0c{MINIMAL}]"),
        format!("[{MINIMAL}\x0c]"),
    ] {
        assert!(fast::parse_batch(&bytes_of(&odd), 10).is_none(), "{odd}");
        assert!(parse_batch(&bytes_of(&odd), 10, DEPTH).is_err(), "{odd}");
    }
    let three = bytes_of(&format!("[{MINIMAL},{MINIMAL},{MINIMAL}]"));
    assert!(fast::parse_batch(&three, 2).is_none(), "over the limit");
    assert_eq!(fast::parse_batch(&three, 3).map(|e| e.len()), Some(3));
}

/// A batch read element by element, each by the SDK: what the fast batch path must agree with.
fn parse_batch_slowly(body: &Bytes, max_events: usize) -> Result<Vec<ParsedEvent>, EventError> {
    let items: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| EventError::new(None, e.to_string()))?;
    if items.is_empty() || items.len() > max_events {
        return Err(EventError::new(None, "size"));
    }
    items
        .iter()
        .map(|raw| parse_with_sdk(body.slice_ref(raw.get().as_bytes())))
        .collect()
}

/// A batch of generated events, with whitespace of any kind between its tokens.
fn generated_batch() -> impl Strategy<Value = String> {
    let space = prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n", "\x0c"]);
    (
        prop::collection::vec((generated_event(), space.clone()), 1..4),
        space.clone(),
        space,
    )
        .prop_map(|(events, before, after)| {
            let inner: Vec<String> = events
                .into_iter()
                .map(|(event, space)| format!("{space}{event}{space}"))
                .collect();
            format!("{before}[{}]{after}", inner.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// A batch the fast path reads is read the same way, event by event, by the SDK.
    #[test]
    fn the_fast_batch_path_agrees_with_the_sdk(body in generated_batch()) {
        let body = bytes_of(&body);
        if let Some(fast) = fast::parse_batch(&body, 4) {
            prop_assert_eq!(Ok(fast), parse_batch_slowly(&body, 4), "{:?}", body);
        }
    }

    /// The fast path never accepts what cloudevents-sdk (with Draft's own rules) refuses, and
    /// reads what it accepts the same way.
    #[test]
    fn the_fast_path_agrees_with_the_sdk(body in generated_event()) {
        if let Some(fast) = fast::parse(&bytes_of(&body)) {
            prop_assert_eq!(Ok(fast), parse_with_sdk(bytes_of(&body)), "{}", body);
        }
    }
}
