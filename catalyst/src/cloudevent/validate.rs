//! The checks every event passes: what cloudevents-sdk leaves to Draft (non-empty attributes
//! without NUL, extension names, reserved extensions), the SDK's errors turned into ones that
//! name the attribute at fault, and [`EventError`], what a refusal says.

use cloudevents::{AttributesReader, Event};

/// Extensions Draft adds to events (`draftactor` when it stores them, the others on delivery);
/// producers may not set them.
pub const RESERVED_EXTENSIONS: [&str; 3] = ["draftchannel", "draftoffset", "draftactor"];

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
    pub(super) fn new(attribute: Option<&str>, message: impl Into<String>) -> Self {
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

/// Checks what cloudevents-sdk leaves to us: non-empty `id`/`source`/`type` without NUL,
/// extension names `[a-z0-9]+`, and no reserved extension.
pub(super) fn check(event: &Event) -> Result<(), EventError> {
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

pub(super) fn check_extension_name(name: &str) -> Result<(), EventError> {
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
            format!("extension attribute `{name}` is set by Draft; do not send it"),
        ));
    }
    Ok(())
}

/// Turns serde's message about a CloudEvent into one that names the attribute.
pub(super) fn sdk_error(e: &serde_json::Error) -> EventError {
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
pub(super) fn diagnose(body: &[u8]) -> Option<EventError> {
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

/// Whether `text` decodes as `data_base64` does in cloudevents-sdk (standard, padded).
pub(super) fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .is_ok()
}

/// Whether cloudevents-sdk reads `data` under this `datacontenttype` as JSON (any JSON value)
/// rather than as a string: its `is_json_content_type`, which is not public.
pub(super) fn sdk_reads_as_json(content_type: &str) -> bool {
    content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type.ends_with("+json")
}
