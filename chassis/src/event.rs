//! CloudEvents as a service sees them: [`NewEvent`] to produce, [`Event`] delivered to a hook.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::telemetry::TraceContext;

/// A CloudEvent to produce. The chassis fills in what is left out: `id` (a UUID v7),
/// `source` (`/services/<service>`: the same for every replica, so an id chosen from the
/// data, like `paid-<order>`, is deduplicated by the broker whichever replica sends it),
/// `specversion`, `time`, `datacontenttype`, and `traceparent`: the current span's context
/// (the request's or the hook's), so a consumer's span is that span's child.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    ty: String,
    data: Value,
    id: Option<String>,
    source: Option<String>,
    subject: Option<String>,
    extensions: Map<String, Value>,
}

impl NewEvent {
    /// An event of type `ty` with JSON `data`.
    #[must_use]
    pub fn new(ty: impl Into<String>, data: Value) -> Self {
        Self {
            ty: ty.into(),
            data,
            id: None,
            source: None,
            subject: None,
            extensions: Map::new(),
        }
    }

    /// Sets the id (what the broker deduplicates on, with the source).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the source (default `/services/<service>`).
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets an extension attribute (lower-case letters and digits, as CloudEvents requires).
    #[must_use]
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }

    /// The structured-mode JSON of the event, completed for `service` and `trace`.
    pub(crate) fn to_json(&self, service: &str, trace: Option<TraceContext>) -> Value {
        let mut out = Map::new();
        out.insert("specversion".into(), "1.0".into());
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        out.insert("id".into(), id.into());
        let source = self
            .source
            .clone()
            .unwrap_or_else(|| format!("/services/{service}"));
        out.insert("source".into(), source.into());
        out.insert("type".into(), self.ty.clone().into());
        out.insert(
            "time".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        if let Some(subject) = &self.subject {
            out.insert("subject".into(), subject.clone().into());
        }
        for (k, v) in &self.extensions {
            out.insert(k.clone(), v.clone());
        }
        if let Some(trace) = trace
            && !out.contains_key("traceparent")
        {
            out.insert("traceparent".into(), trace.traceparent().into());
        }
        out.insert("datacontenttype".into(), "application/json".into());
        out.insert("data".into(), self.data.clone());
        Value::Object(out)
    }
}

/// An event delivered to a hook: the stored CloudEvent with its channel and offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its offset in the channel.
    pub offset: u64,
    /// The channel.
    pub channel: String,
    json: Value,
}

impl Event {
    /// Parses a delivered event's text (with `draftoffset` and `draftchannel`).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let offset = json
            .get("draftoffset")
            .and_then(Value::as_u64)
            .ok_or("an event without draftoffset")?;
        let channel = json
            .get("draftchannel")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            offset,
            channel,
            json,
        })
    }

    fn attribute(&self, name: &str) -> &str {
        self.json
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `id` attribute.
    #[must_use]
    pub fn id(&self) -> &str {
        self.attribute("id")
    }

    /// The `source` attribute.
    #[must_use]
    pub fn source(&self) -> &str {
        self.attribute("source")
    }

    /// The `type` attribute.
    #[must_use]
    pub fn ty(&self) -> &str {
        self.attribute("type")
    }

    /// The `data` (JSON `null` when absent; base64 text for `data_base64` is not decoded).
    #[must_use]
    pub fn data(&self) -> &Value {
        self.json.get("data").unwrap_or(&Value::Null)
    }

    /// The data deserialized into `T`.
    ///
    /// # Errors
    /// The deserializer's message when the data does not fit `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(self.data()).map_err(|e| e.to_string())
    }

    /// The trace context the event carries (`traceparent` extension), if valid.
    #[must_use]
    pub fn trace(&self) -> Option<TraceContext> {
        TraceContext::parse(self.attribute("traceparent"))
    }

    /// The whole event as JSON.
    #[must_use]
    pub fn json(&self) -> &Value {
        &self.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_in_for_the_service_and_trace() {
        let trace = TraceContext::root();
        let e = NewEvent::new("t", serde_json::json!({"a": 1}))
            .id("x")
            .to_json("orders", Some(trace));
        assert_eq!(e["id"], "x");
        assert_eq!(e["source"], "/services/orders");
        assert_eq!(e["specversion"], "1.0");
        let tp = TraceContext::parse(e["traceparent"].as_str().expect("set")).expect("valid");
        assert_eq!(tp.trace_id, trace.trace_id);
        let e = NewEvent::new("t", Value::Null).to_json("orders", None);
        assert!(e.get("traceparent").is_none());
        assert_eq!(e["id"].as_str().map(str::len), Some(36));
    }

    #[test]
    fn delivered_events_parse() {
        let e = Event::parse(
            r#"{"draftchannel":"p","draftoffset":7,"id":"1","type":"t","source":"/s","data":{"n":2}}"#,
        )
        .expect("valid");
        assert_eq!(
            (e.offset, e.channel.as_str(), e.id(), e.ty()),
            (7, "p", "1", "t")
        );
        assert_eq!(e.data_as::<serde_json::Value>().expect("json")["n"], 2);
        assert!(Event::parse(r#"{"id":"1"}"#).is_err());
    }
}
