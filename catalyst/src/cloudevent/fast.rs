//! The fast path for structured-mode events: one pass over the JSON object that borrows from
//! the request body, instead of cloudevents-sdk's route through a `serde_json::Value` map
//! (measured: ~70% of the time to validate an event; see `benches/parse.rs`). A batch is
//! read in the same single pass, element by element, and each event's stored bytes are a
//! slice of the request body, not a copy.
//!
//! It accepts an event only when cloudevents-sdk 0.9 would (the rules of its
//! `event/v10/format.rs`, with the same primitives: chrono for `time`, the SDK's `TryIntoUrl`
//! for `dataschema`, standard base64 for `data_base64`) and Draft's own rules pass too. Anything
//! unusual (another `specversion`, a duplicate or escaped attribute name, `data` and
//! `data_base64` together, a float or object extension, any invalid attribute) gets `None`:
//! the SDK itself then decides, and names the attribute at fault. A property test checks the
//! fast path against the SDK on generated events (`tests.rs`).

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::event::ParsedEvent;
use super::validate::{check_extension_name, is_base64, sdk_reads_as_json};
use super::whitespace::{JSON_WHITESPACE, trim_json_whitespace_str};

/// One attribute value, borrowed from the body.
type Raw<'a> = &'a RawValue;

/// A JSON string's text: borrowed from the body when it has no escapes. Anything but a string
/// fails to deserialize (and the event goes the slow way).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The attributes of one event, as found. String attributes are `None` when absent or `null`
/// (as the SDK reads them); `data` and `data_base64` are kept raw, `null` included.
#[derive(Default)]
struct Found<'a> {
    /// One bit per core attribute seen, to catch duplicates (the SDK keeps the last of them:
    /// the slow path decides those).
    seen: u16,
    specversion: Option<Text<'a>>,
    id: Option<Text<'a>>,
    source: Option<Text<'a>>,
    ty: Option<Text<'a>>,
    datacontenttype: Option<Text<'a>>,
    dataschema: Option<Text<'a>>,
    subject: Option<Text<'a>>,
    time: Option<Text<'a>>,
    data: Option<Raw<'a>>,
    data_base64: Option<Raw<'a>>,
    extensions: Vec<(&'a str, Raw<'a>)>,
}

impl<'de> Deserialize<'de> for Found<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CloudEvent object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        let mut found = Found::default();
        // `&str` keys: a name with an escape in it fails here, and goes the slow way.
        while let Some(name) = map.next_key::<&'de str>()? {
            let bit: u16 = match name {
                "specversion" => {
                    found.specversion = map.next_value()?;
                    1
                }
                "id" => {
                    found.id = map.next_value()?;
                    1 << 1
                }
                "source" => {
                    found.source = map.next_value()?;
                    1 << 2
                }
                "type" => {
                    found.ty = map.next_value()?;
                    1 << 3
                }
                "datacontenttype" => {
                    found.datacontenttype = map.next_value()?;
                    1 << 4
                }
                "dataschema" => {
                    found.dataschema = map.next_value()?;
                    1 << 5
                }
                "subject" => {
                    found.subject = map.next_value()?;
                    1 << 6
                }
                "time" => {
                    found.time = map.next_value()?;
                    1 << 7
                }
                "data" => {
                    found.data = Some(map.next_value()?);
                    1 << 8
                }
                "data_base64" => {
                    found.data_base64 = Some(map.next_value()?);
                    1 << 9
                }
                _ => {
                    if found.extensions.iter().any(|(n, _)| *n == name) {
                        return Err(A::Error::custom("duplicate attribute"));
                    }
                    found.extensions.push((name, map.next_value()?));
                    0
                }
            };
            if found.seen & bit != 0 {
                return Err(A::Error::custom("duplicate attribute"));
            }
            found.seen |= bit;
        }
        Ok(found)
    }
}

/// A JSON string's text, borrowed when it has no escapes; `None` for anything else.
fn string(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// A required attribute that Draft also wants non-empty and without NUL.
fn required<'a>(text: Option<&'a Text<'_>>) -> Option<&'a str> {
    let value = text?.0.as_ref();
    (!value.is_empty() && !value.contains('\0')).then_some(value)
}

/// An extension value the SDK takes: a string, a boolean, an integer that fits `i64`, or null
/// (ignored).
fn extension_value_ok(raw: Raw<'_>) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => string(raw).is_some(),
        Some(b't' | b'f' | b'n') => true,
        Some(b'-' | b'0'..=b'9') => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            let canonical = digits == "0" || !digits.starts_with('0');
            text != "-0"
                && canonical
                && digits.bytes().all(|b| b.is_ascii_digit())
                && text.parse::<i64>().is_ok()
        }
        _ => false,
    }
}

/// `data` and `data_base64` as the SDK takes them.
fn data_ok(found: &Found<'_>, content_type: Option<&str>) -> bool {
    match (found.data, found.data_base64) {
        (None, None) => true,
        (Some(data), None) => {
            sdk_reads_as_json(content_type.unwrap_or("application/json")) || string(data).is_some()
        }
        (None, Some(encoded)) => string(encoded).is_some_and(|s| is_base64(&s)),
        (Some(_), Some(_)) => false,
    }
}

/// The event whose attributes are `found` and whose stored bytes are `json`, when the fast
/// path can vouch for it.
fn vouch(found: &Found<'_>, json: Bytes) -> Option<ParsedEvent> {
    if found.specversion.as_ref()?.0 != "1.0" {
        return None;
    }
    let id = required(found.id.as_ref())?;
    let source = required(found.source.as_ref())?;
    let ty = required(found.ty.as_ref())?;
    if let Some(time) = &found.time {
        chrono::DateTime::parse_from_rfc3339(&time.0).ok()?;
    }
    if let Some(schema) = &found.dataschema {
        cloudevents::event::TryIntoUrl::into_url(schema.0.as_ref()).ok()?;
    }
    let content_type = found.datacontenttype.as_ref().map(|t| t.0.as_ref());
    if !data_ok(found, content_type) {
        return None;
    }
    for (name, value) in &found.extensions {
        if check_extension_name(name).is_err() || !extension_value_ok(value) {
            return None;
        }
    }
    Some(ParsedEvent::new(ty, source, id, json))
}

/// The event in `object` (a trimmed JSON object, a slice of the request body), when the fast
/// path can vouch for it.
///
/// The object's UTF-8 is checked once, up front: `serde_json` then reads its strings without
/// checking each again (measured: the per-string checks were ~2% of the node's time under
/// pipelined produce). Invalid UTF-8 goes the slow way, which says where it is.
pub(super) fn parse(object: &Bytes) -> Option<ParsedEvent> {
    let text = std::str::from_utf8(object).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Found::deserialize(&mut de).ok()?;
    de.end().ok()?;
    vouch(&found, object.clone())
}

/// Every event of a batch body (a JSON array of 1 to `max_events` objects), when the fast path
/// can vouch for all of them; `None` sends the whole batch the slow way, which also says what
/// is wrong with it.
/// (Its UTF-8 is checked once, as in [`parse`].)
pub(super) fn parse_batch(body: &Bytes, max_events: usize) -> Option<Vec<ParsedEvent>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut rest = trim_json_whitespace_str(text).strip_prefix('[')?;
    let mut events = Vec::new();
    loop {
        rest = rest.trim_start_matches(JSON_WHITESPACE);
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Found>();
        let found = stream.next()?.ok()?;
        // The offset is just past a JSON value, so on a character boundary.
        let (object, tail) = rest.split_at_checked(stream.byte_offset())?;
        if events.len() == max_events {
            return None;
        }
        events.push(vouch(&found, body.slice_ref(object.as_bytes()))?);
        let tail = tail.trim_start_matches(JSON_WHITESPACE);
        if let Some(after) = tail.strip_prefix(',') {
            rest = after;
        } else if tail == "]" {
            return Some(events);
        } else {
            return None;
        }
    }
}
