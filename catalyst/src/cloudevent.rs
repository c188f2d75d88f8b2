//! CloudEvents in and out of the log: parsing and validating the three HTTP content modes,
//! the bytes that are stored, and the bytes that consumers receive.
//!
//! What is stored is what was received: a structured-mode event is stored as the exact JSON
//! object the producer sent; a binary-mode event (CloudEvents HTTP binding §3.1) becomes the
//! structured JSON of its attributes, with the body as `data` when it is JSON or text and as
//! `data_base64` otherwise (JSON format §3.1). Every event is validated by cloudevents-sdk's
//! rules: structured events first by a fast path that borrows from the body (`fast.rs`, held to
//! the SDK's verdicts by a property test), and by the SDK itself whenever that path cannot
//! vouch for an event; binary-mode events by the SDK.

use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use serde_json::value::RawValue;

/// Extensions Draft adds to delivered events; producers may not set them.
pub const RESERVED_EXTENSIONS: [&str; 2] = ["draftchannel", "draftoffset"];

/// The core context attributes of CloudEvents 1.0 (everything else is an extension).
const CORE_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// Why an event was refused: the attribute at fault (if one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// The attribute at fault, when one is.
    pub attribute: Option<String>,
    /// What is wrong, for the person who sent it.
    pub message: String,
}

impl EventError {
    fn new(attribute: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            attribute: attribute.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The same error, located at index `i` of a batch.
    #[must_use]
    pub fn in_batch(self, i: usize) -> Self {
        Self {
            message: format!("event {i} of the batch: {}", self.message),
            ..self
        }
    }
}

/// A validated event, ready to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The log record key, `type \0 source \0 id` (see [`ParsedEvent::record_key`]).
    key: Bytes,
    /// Where `source` starts in `key`.
    source_at: usize,
    /// Where `id` starts in `key`.
    id_at: usize,
    /// The structured-mode JSON object to store.
    pub json: Bytes,
}

impl ParsedEvent {
    /// An event with these attributes (non-empty, without NUL) and stored bytes.
    fn new(ty: &str, source: &str, id: &str, json: Bytes) -> Self {
        let mut key = Vec::with_capacity(ty.len() + source.len() + id.len() + 2);
        key.extend_from_slice(ty.as_bytes());
        key.push(0);
        key.extend_from_slice(source.as_bytes());
        key.push(0);
        key.extend_from_slice(id.as_bytes());
        Self {
            key: Bytes::from(key),
            source_at: ty.len() + 1,
            id_at: ty.len() + source.len() + 2,
            json,
        }
    }

    fn part(&self, range: std::ops::Range<usize>) -> &str {
        // Built from three `&str`s split at NULs, which are ASCII: always on char boundaries.
        std::str::from_utf8(&self.key[range]).unwrap_or_default()
    }

    /// `type`.
    #[must_use]
    pub fn ty(&self) -> &str {
        self.part(0..self.source_at - 1)
    }

    /// `source`.
    #[must_use]
    pub fn source(&self) -> &str {
        self.part(self.source_at..self.id_at - 1)
    }

    /// `id`.
    #[must_use]
    pub fn id(&self) -> &str {
        self.part(self.id_at..self.key.len())
    }

    /// The log record key: `type \0 source \0 id`, so consumers can filter and the broker can
    /// rebuild its duplicate window without parsing payloads. (NUL is refused in all three.)
    #[must_use]
    pub fn record_key(&self) -> Bytes {
        self.key.clone()
    }

    /// `source \0 id`: what identifies the event for duplicate detection.
    #[must_use]
    pub fn source_and_id(&self) -> &[u8] {
        &self.key[self.source_at..]
    }
}

/// Splits a record key made by [`ParsedEvent::record_key`] into `(type, source, id)`.
#[must_use]
pub fn split_record_key(key: &[u8]) -> Option<(&str, &str, &str)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.splitn(3, '\0');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// Checks what cloudevents-sdk leaves to us: non-empty `id`/`source`/`type` without NUL,
/// extension names `[a-z0-9]+`, and no reserved extension.
fn check(event: &Event) -> Result<(), EventError> {
    for (name, value) in [
        ("id", event.id()),
        ("source", event.source().as_str()),
        ("type", event.ty()),
    ] {
        if value.is_empty() {
            return Err(EventError::new(
                Some(name),
                format!("attribute `{name}` must not be empty"),
            ));
        }
        if value.contains('\0') {
            return Err(EventError::new(
                Some(name),
                format!("attribute `{name}` contains NUL"),
            ));
        }
    }
    for (name, _) in event.iter_extensions() {
        check_extension_name(name)?;
    }
    Ok(())
}

fn check_extension_name(name: &str) -> Result<(), EventError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(EventError::new(
            Some(name),
            format!("extension attribute name `{name}` must be lowercase letters and digits only"),
        ));
    }
    if RESERVED_EXTENSIONS.contains(&name) {
        return Err(EventError::new(
            Some(name),
            format!("extension attribute `{name}` is set by Draft on delivery; do not send it"),
        ));
    }
    Ok(())
}

fn parsed(event: &Event, json: Bytes) -> ParsedEvent {
    ParsedEvent::new(event.ty(), event.source(), event.id(), json)
}

/// Turns serde's message about a CloudEvent into one that names the attribute.
fn sdk_error(e: &serde_json::Error) -> EventError {
    let text = e.to_string();
    let attribute = text
        .split('`')
        .nth(1)
        .filter(|a| CORE_ATTRIBUTES.contains(a))
        .map(str::to_owned);
    let message = match &attribute {
        Some(a) if text.starts_with("missing field") => {
            format!("required attribute `{a}` is missing")
        }
        Some(a) => format!("attribute `{a}` is invalid: {text}"),
        None => format!("invalid CloudEvent: {text}"),
    };
    EventError { attribute, message }
}

/// On the error path only: finds the attribute at fault when the SDK's message does not say.
/// It checks what cloudevents-sdk 0.9 checks (`event/v10/format.rs`), in the same terms, so
/// every refusal names its attribute: `null` means absent; `dataschema` is an absolute URI;
/// `data` is a string unless `datacontenttype` is JSON; extension values are strings,
/// booleans or integers.
fn diagnose(body: &[u8]) -> Option<EventError> {
    use serde_json::Value;
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    let present = |name: &str| object.get(name).filter(|v| !v.is_null());
    let bad = |name: &str, message: String| Some(EventError::new(Some(name), message));
    match present("specversion").map(|v| v.as_str()) {
        Some(Some("1.0")) => {}
        Some(_) => {
            return bad(
                "specversion",
                format!(
                    "attribute `specversion` must be \"1.0\", not {}",
                    object["specversion"]
                ),
            );
        }
        None => {
            return bad(
                "specversion",
                "required attribute `specversion` is missing".into(),
            );
        }
    }
    for name in ["id", "source", "type"] {
        if !present(name).is_some_and(Value::is_string) {
            return bad(
                name,
                format!("required attribute `{name}` is missing or not a string"),
            );
        }
    }
    for name in ["datacontenttype", "dataschema", "subject", "time"] {
        if present(name).is_some_and(|v| !v.is_string()) {
            return bad(name, format!("attribute `{name}` must be a string"));
        }
    }
    if let Some(Value::String(schema)) = present("dataschema")
        && cloudevents::event::TryIntoUrl::into_url(schema.as_str()).is_err()
    {
        return bad(
            "dataschema",
            format!("attribute `dataschema` must be an absolute URI, not {schema:?}"),
        );
    }
    if let Some(Value::String(time)) = present("time")
        && chrono::DateTime::parse_from_rfc3339(time).is_err()
    {
        return bad(
            "time",
            format!("attribute `time` must be an RFC 3339 timestamp, not {time:?}"),
        );
    }
    if let Some(error) = diagnose_data(&object) {
        return Some(error);
    }
    object
        .iter()
        .filter(|(name, value)| !CORE_ATTRIBUTES.contains(&name.as_str()) && !value.is_null())
        .find(|(_, value)| !(value.is_string() || value.is_boolean() || value.is_i64()))
        .and_then(|(name, value)| {
            bad(
                name,
                format!(
                    "extension attribute `{name}` must be a string, a boolean or a 64-bit \
                     integer, not {value}"
                ),
            )
        })
}

/// `data` and `data_base64`, as the SDK reads them (a `data` member counts even when null).
fn diagnose_data(object: &serde_json::Map<String, serde_json::Value>) -> Option<EventError> {
    let data = object.get("data");
    let base64 = object.get("data_base64").filter(|v| !v.is_null());
    let bad = |name: &str, message: String| Some(EventError::new(Some(name), message));
    if data.is_some() && base64.is_some() {
        return bad(
            "data",
            "an event carries `data` or `data_base64`, not both".into(),
        );
    }
    if let Some(encoded) = base64
        && !encoded.as_str().is_some_and(is_base64)
    {
        return bad(
            "data_base64",
            "attribute `data_base64` must be a base64 string (RFC 4648, with padding)".into(),
        );
    }
    let content_type = object
        .get("datacontenttype")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("application/json");
    if let Some(data) = data
        && !sdk_reads_as_json(content_type)
        && !data.is_string()
    {
        return bad(
            "data",
            format!(
                "attribute `data` must be a string when `datacontenttype` is {content_type:?} \
                 (not JSON): send JSON data with a JSON content type, or bytes as data_base64"
            ),
        );
    }
    None
}

/// Parses one structured-mode event (`application/cloudevents+json`). The stored bytes are
/// the object as sent, trimmed of surrounding whitespace (a slice of `body`, not a copy).
pub fn parse_structured(body: &Bytes) -> Result<ParsedEvent, EventError> {
    let trimmed = body.slice_ref(trim_json_whitespace(body));
    if !trimmed.starts_with(b"{") {
        return Err(EventError::new(
            None,
            "a structured-mode event must be a JSON object",
        ));
    }
    if let Some(event) = fast::parse(&trimmed) {
        return Ok(event);
    }
    parse_with_sdk(trimmed)
}

/// The SDK's own parse of one structured event (`trimmed` starts with `{`): what decides
/// whenever the fast path cannot, and what names the attribute at fault.
fn parse_with_sdk(trimmed: Bytes) -> Result<ParsedEvent, EventError> {
    let event: Event = serde_json::from_slice(&trimmed)
        .map_err(|e| diagnose(&trimmed).unwrap_or_else(|| sdk_error(&e)))?;
    check(&event)?;
    Ok(parsed(&event, trimmed))
}

/// Parses a batch (`application/cloudevents-batch+json`): a JSON array of structured events,
/// each stored exactly as sent (slices of `body`). Common batches are read in one pass by the
/// fast path; any other is read element by element, the SDK deciding where the fast path
/// cannot, so that errors name the event and attribute at fault.
pub fn parse_batch(body: &Bytes, max_events: usize) -> Result<Vec<ParsedEvent>, EventError> {
    if let Some(events) = fast::parse_batch(body, max_events) {
        return Ok(events);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        EventError::new(None, format!("a batch must be a JSON array of events: {e}"))
    })?;
    if items.is_empty() {
        return Err(EventError::new(
            None,
            "a batch must hold at least one event",
        ));
    }
    if items.len() > max_events {
        return Err(EventError::new(
            None,
            format!(
                "a batch holds at most {max_events} events; this one has {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            parse_structured(&body.slice_ref(raw.get().as_bytes())).map_err(|e| e.in_batch(i))
        })
        .collect()
}

/// Whether `byte` is whitespace between JSON tokens (RFC 8259 §2: space, tab, line feed,
/// carriage return; unlike `u8::is_ascii_whitespace`, not form feed).
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// `bytes` without leading JSON whitespace.
fn trim_json_whitespace_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_json_whitespace(b))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// `bytes` without leading or trailing JSON whitespace.
fn trim_json_whitespace(bytes: &[u8]) -> &[u8] {
    let rest = trim_json_whitespace_start(bytes);
    let end = rest
        .iter()
        .rposition(|&b| !is_json_whitespace(b))
        .map_or(0, |last| last + 1);
    &rest[..end]
}

/// Parses a binary-mode event: attributes in `ce-*` headers, the body as data.
pub fn parse_binary(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<ParsedEvent, EventError> {
    let mut event = cloudevents::binding::http::to_event(headers, body.to_vec())
        .map_err(|e| EventError::new(None, format!("invalid binary-mode CloudEvent: {e}")))?;
    check(&event)?;
    let content_type = event.datacontenttype().map(str::to_owned);
    event.take_data();
    let attributes = serde_json::to_string(&event)
        .map_err(|e| EventError::new(None, format!("cannot encode the event: {e}")))?;
    let json = if body.is_empty() {
        attributes
    } else {
        let data = encode_data(content_type.as_deref(), body);
        // `attributes` is a JSON object with at least the required attributes: splice `data`
        // in before its closing brace.
        let open = attributes
            .trim_end()
            .strip_suffix('}')
            .unwrap_or(&attributes);
        format!("{open},{data}}}")
    };
    Ok(parsed(&event, Bytes::from(json)))
}

/// The `data` member for a binary-mode body: JSON as is, text as a string, anything else (or
/// anything that does not parse as its content type says) as base64.
fn encode_data(content_type: Option<&str>, body: &[u8]) -> String {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let is_json = media == "application/json" || media.ends_with("+json") || media == "text/json";
    if is_json
        && serde_json::from_slice::<&RawValue>(body).is_ok()
        && let Ok(text) = std::str::from_utf8(body)
    {
        return format!("\"data\":{}", text.trim());
    }
    let is_text =
        media.starts_with("text/") || media.ends_with("+xml") || media == "application/xml";
    if is_text && let Ok(text) = std::str::from_utf8(body) {
        let quoted = serde_json::to_string(text).unwrap_or_default();
        return format!("\"data\":{quoted}");
    }
    format!("\"data_base64\":\"{}\"", base64_encode(body))
}

/// Standard base64 with padding (RFC 4648 §4), as the JSON format's `data_base64` requires.
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `text` decodes as `data_base64` does in cloudevents-sdk (standard, padded).
fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .is_ok()
}

/// Whether cloudevents-sdk reads `data` under this `datacontenttype` as JSON (any JSON value)
/// rather than as a string: its `is_json_content_type`, which is not public.
fn sdk_reads_as_json(content_type: &str) -> bool {
    content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type.ends_with("+json")
}

/// The text a consumer receives: the stored event with `draftchannel` and `draftoffset`
/// added. Built once per event and shared by every consumer of the live feed.
#[must_use]
pub fn delivered(channel: &str, offset: u64, stored: &[u8]) -> String {
    use std::fmt::Write as _;
    // Stored events were valid UTF-8 when produced; `from_utf8` checks that much faster than
    // `from_utf8_lossy` (measured: the lossy check was ~10% of the node's time in a replay).
    let stored = match std::str::from_utf8(stored) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(stored),
    };
    let rest = stored
        .trim()
        .strip_prefix('{')
        .unwrap_or(&stored)
        .trim_start();
    // Channel names are `[a-z0-9_][a-z0-9._-]*`: nothing to escape.
    let mut out = String::with_capacity(rest.len() + channel.len() + 48);
    out.push_str("{\"draftchannel\":\"");
    out.push_str(channel);
    out.push_str("\",\"draftoffset\":");
    let _ = write!(out, "{offset},");
    out.push_str(rest);
    out
}

/// One `type`/`source` filter value: exact, or a prefix when it ends with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Matches this value only.
    Exact(String),
    /// Matches values starting with this.
    Prefix(String),
}

impl Pattern {
    /// `value*` is a prefix pattern; anything else is exact.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        match value.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(value.to_owned()),
        }
    }

    /// Whether `value` matches.
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(v) => v == value,
            Self::Prefix(p) => value.starts_with(p.as_str()),
        }
    }
}

/// A consumer's filter: an event passes when it matches any `type` pattern (or there are
/// none) and any `source` pattern (or there are none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Patterns for `type`.
    pub types: Vec<Pattern>,
    /// Patterns for `source`.
    pub sources: Vec<Pattern>,
}

impl Filter {
    /// Whether the filter lets everything through.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.sources.is_empty()
    }

    /// Whether an event with this type and source passes.
    #[must_use]
    pub fn matches(&self, ty: &str, source: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|p| p.matches(ty)))
            && (self.sources.is_empty() || self.sources.iter().any(|p| p.matches(source)))
    }

    /// Whether the record with this key passes (records without a valid key pass only an
    /// empty filter).
    #[must_use]
    pub fn matches_key(&self, key: Option<&[u8]>) -> bool {
        if self.is_empty() {
            return true;
        }
        key.and_then(split_record_key)
            .is_some_and(|(ty, source, _)| self.matches(ty, source))
    }
}

mod fast;
#[cfg(test)]
mod tests;
