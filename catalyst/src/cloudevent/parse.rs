//! Parsing the three HTTP content modes into [`ParsedEvent`]s: structured (the fast path
//! first, the SDK whenever it cannot vouch for an event), batch, and binary, whose body becomes
//! `data` or `data_base64`.

use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use serde_json::value::RawValue;

use super::depth::{MaxDepth, deeper_than};
use super::event::ParsedEvent;
use super::fast;
use super::validate::{EventError, check, diagnose, sdk_error};
use super::whitespace::trim_json_whitespace;

/// Parses one structured-mode event (`application/cloudevents+json`). The stored bytes are
/// the object as sent, trimmed of surrounding whitespace (a slice of `body`, not a copy).
///
/// # Errors
/// An [`EventError`] naming `data` for an event nested deeper than `max_depth` (checked
/// before either path parses it, so both refuse the same events), or saying what else is
/// wrong with it.
pub fn parse_structured(body: &Bytes, max_depth: MaxDepth) -> Result<ParsedEvent, EventError> {
    let trimmed = body.slice_ref(trim_json_whitespace(body));
    if !trimmed.starts_with(b"{") {
        return Err(EventError::new(
            None,
            "a structured-mode event must be a JSON object",
        ));
    }
    if deeper_than(&trimmed, max_depth.get()) {
        return Err(too_deep(max_depth));
    }
    if let Some(event) = fast::parse(&trimmed) {
        return Ok(event);
    }
    parse_with_sdk(trimmed)
}

/// The error for an event nested past `max_depth` (in practice, its `data`).
fn too_deep(max_depth: MaxDepth) -> EventError {
    EventError::new(
        Some("data"),
        format!("data is nested deeper than {max_depth} (the event itself counting as one)"),
    )
}

/// The SDK's own parse of one structured event (`trimmed` starts with `{`): what decides
/// whenever the fast path cannot, and what names the attribute at fault.
pub(super) fn parse_with_sdk(trimmed: Bytes) -> Result<ParsedEvent, EventError> {
    let event: Event = serde_json::from_slice(&trimmed)
        .map_err(|e| diagnose(&trimmed).unwrap_or_else(|| sdk_error(&e)))?;
    check(&event)?;
    Ok(parsed(&event, trimmed))
}

fn parsed(event: &Event, json: Bytes) -> ParsedEvent {
    ParsedEvent::new(event.ty(), event.source(), event.id(), json)
}

/// Parses a batch (`application/cloudevents-batch+json`): a JSON array of structured events,
/// each stored exactly as sent (slices of `body`). Common batches are read in one pass by the
/// fast path; any other is read element by element, the SDK deciding where the fast path
/// cannot, so that errors name the event and attribute at fault. Each event may nest
/// `max_depth` deep, as in [`parse_structured`] (the array around it not counting).
///
/// # Errors
/// An [`EventError`] for a body that is not an array of 1 to `max_events` events, or naming
/// the first event that [`parse_structured`] refuses.
pub fn parse_batch(
    body: &Bytes,
    max_events: usize,
    max_depth: MaxDepth,
) -> Result<Vec<ParsedEvent>, EventError> {
    // Too deep somewhere: the element-by-element path names the event.
    if !deeper_than(body, max_depth.get() + 1)
        && let Some(events) = fast::parse_batch(body, max_events)
    {
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
            parse_structured(&body.slice_ref(raw.get().as_bytes()), max_depth)
                .map_err(|e| e.in_batch(i))
        })
        .collect()
}

/// Parses a binary-mode event: attributes in `ce-*` headers, the body as data. The event
/// may nest `max_depth` deep, as in [`parse_structured`]: a JSON body one level less.
///
/// # Errors
/// An [`EventError`] naming `data` for a body nested too deep, or saying what is wrong with
/// the headers.
pub fn parse_binary(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    max_depth: MaxDepth,
) -> Result<ParsedEvent, EventError> {
    let mut event = cloudevents::binding::http::to_event(headers, body.to_vec())
        .map_err(|e| EventError::new(None, format!("invalid binary-mode CloudEvent: {e}")))?;
    check(&event)?;
    let content_type = event.datacontenttype().map(str::to_owned);
    let media = media_type(content_type.as_deref());
    // A JSON body becomes `data` inside the event object, one level down (`max_depth` is at
    // least 1). Any other becomes a string (text or base64), whatever brackets its bytes hold.
    if is_json(media) && deeper_than(body, max_depth.get() - 1) {
        return Err(too_deep(max_depth));
    }
    event.take_data();
    let attributes = serde_json::to_string(&event)
        .map_err(|e| EventError::new(None, format!("cannot encode the event: {e}")))?;
    let json = if body.is_empty() {
        attributes
    } else {
        let data = encode_data(media, body);
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

/// The media type of a binary-mode body, without parameters: `application/json` when the
/// event has no `datacontenttype` (JSON format §3.1).
fn media_type(content_type: Option<&str>) -> &str {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
}

/// Whether a body of this media type is JSON (and is stored as JSON when it parses).
fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json") || media == "text/json"
}

/// The `data` member for a binary-mode body of the media type `media`: JSON as is, text as a
/// string, anything else (or anything that does not parse as its media type says) as base64.
fn encode_data(media: &str, body: &[u8]) -> String {
    if is_json(media)
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
pub(super) use draft_http::base64_encode;
