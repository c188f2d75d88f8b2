//! The validated event: its attributes, kept as the log record key, and the bytes to store.

use bytes::Bytes;
use draft_log::{event_key, event_key_source_and_id, split_event_key};

/// A validated event, ready to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The log record key, `type \0 source \0 id` (see [`ParsedEvent::record_key`]).
    key: Bytes,
    /// The structured-mode JSON object to store.
    pub json: Bytes,
}

impl ParsedEvent {
    /// An event with these attributes (non-empty, without NUL) and stored bytes.
    pub(super) fn new(ty: &str, source: &str, id: &str, json: Bytes) -> Self {
        Self {
            key: event_key(ty, source, id),
            json,
        }
    }

    fn parts(&self) -> (&str, &str, &str) {
        // Built by `event_key` from three `&str`s without NUL: it always splits.
        split_event_key(&self.key).unwrap_or_default()
    }

    /// `type`.
    #[must_use]
    pub fn ty(&self) -> &str {
        self.parts().0
    }

    /// `source`.
    #[must_use]
    pub fn source(&self) -> &str {
        self.parts().1
    }

    /// `id`.
    #[must_use]
    pub fn id(&self) -> &str {
        self.parts().2
    }

    /// The log record key: `type \0 source \0 id` ([`draft_log::event_key`]), so consumers can
    /// filter and the broker can rebuild its duplicate window without parsing payloads. (NUL is
    /// refused in all three.)
    #[must_use]
    pub fn record_key(&self) -> Bytes {
        self.key.clone()
    }

    /// `source \0 id`: what identifies the event for duplicate detection.
    #[must_use]
    pub fn source_and_id(&self) -> &[u8] {
        event_key_source_and_id(&self.key).unwrap_or_default()
    }
}
