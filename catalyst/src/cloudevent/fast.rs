//! The fast path for structured-mode events: one pass over the JSON object that borrows from
//! the request body, instead of cloudevents-sdk's route through a `serde_json::Value` map
//! (measured: ~70% of the time to validate an event; see `benches/parse.rs`).
//!
//! It accepts an event only when cloudevents-sdk 0.9 would (the rules of its
//! `event/v10/format.rs`, with the same primitives: chrono for `time`, the SDK's `TryIntoUrl`
//! for `dataschema`, standard base64 for `data_base64`) and Draft's own rules pass too. Anything
//! unusual (another `specversion`, a duplicate or escaped attribute name, `data` and
//! `data_base64` together, a float or object extension, any invalid attribute) gets `None`:
//! the SDK itself then decides, and names the attribute at fault. A property test checks the
//! fast path against the SDK on generated events (`tests.rs`).

use std::borrow::Cow;

use serde::Deserializer as _;
use serde::de::{Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ParsedEvent, check_extension_name, is_base64, sdk_reads_as_json};

/// One attribute value, borrowed from the body.
type Raw<'a> = &'a RawValue;

/// The attributes of one event, as found.
#[derive(Default)]
struct Found<'a> {
    specversion: Option<Raw<'a>>,
    id: Option<Raw<'a>>,
    source: Option<Raw<'a>>,
    ty: Option<Raw<'a>>,
    datacontenttype: Option<Raw<'a>>,
    dataschema: Option<Raw<'a>>,
    subject: Option<Raw<'a>>,
    time: Option<Raw<'a>>,
    data: Option<Raw<'a>>,
    data_base64: Option<Raw<'a>>,
    extensions: Vec<(&'a str, Raw<'a>)>,
}

impl<'a> Found<'a> {
    /// Records `name`; `false` if it was already there (the SDK keeps the last of duplicates:
    /// the slow path decides those).
    fn set(&mut self, name: &'a str, value: Raw<'a>) -> bool {
        let slot = match name {
            "specversion" => &mut self.specversion,
            "id" => &mut self.id,
            "source" => &mut self.source,
            "type" => &mut self.ty,
            "datacontenttype" => &mut self.datacontenttype,
            "dataschema" => &mut self.dataschema,
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "data" => &mut self.data,
            "data_base64" => &mut self.data_base64,
            _ => {
                if self.extensions.iter().any(|(n, _)| *n == name) {
                    return false;
                }
                self.extensions.push((name, value));
                return true;
            }
        };
        slot.replace(value).is_none()
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
            let value: Raw<'de> = map.next_value()?;
            if !found.set(name, value) {
                return Err(A::Error::custom("duplicate attribute"));
            }
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

fn is_null(raw: Option<Raw<'_>>) -> bool {
    raw.is_none_or(|r| r.get() == "null")
}

/// An optional attribute that is there but not a string.
struct NotAString;

/// An optional string attribute: absent or null is `Ok(None)`.
fn optional_string(raw: Option<Raw<'_>>) -> Result<Option<Cow<'_, str>>, NotAString> {
    if is_null(raw) {
        return Ok(None);
    }
    raw.and_then(string).map(Some).ok_or(NotAString)
}

/// A required attribute that Draft also wants non-empty and without NUL.
fn required(raw: Option<Raw<'_>>) -> Option<String> {
    let value = raw.and_then(string)?;
    (!value.is_empty() && !value.contains('\0')).then(|| value.into_owned())
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

/// The event in `object` (a trimmed JSON object), when the fast path can vouch for it.
pub(super) fn parse(object: &[u8]) -> Option<ParsedEvent> {
    let mut de = serde_json::Deserializer::from_slice(object);
    let found = de.deserialize_map(ObjectVisitor).ok()?;
    de.end().ok()?;
    if string(found.specversion?)?.as_ref() != "1.0" {
        return None;
    }
    let id = required(found.id)?;
    let source = required(found.source)?;
    let ty = required(found.ty)?;
    let content_type = optional_string(found.datacontenttype).ok()?;
    optional_string(found.subject).ok()?;
    if let Some(time) = optional_string(found.time).ok()? {
        chrono::DateTime::parse_from_rfc3339(&time).ok()?;
    }
    if let Some(schema) = optional_string(found.dataschema).ok()? {
        cloudevents::event::TryIntoUrl::into_url(schema.as_ref()).ok()?;
    }
    if !data_ok(&found, content_type.as_deref()) {
        return None;
    }
    for (name, value) in &found.extensions {
        if check_extension_name(name).is_err() || !extension_value_ok(value) {
            return None;
        }
    }
    Some(ParsedEvent {
        id,
        source,
        ty,
        json: bytes::Bytes::copy_from_slice(object),
    })
}
