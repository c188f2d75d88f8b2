//! Types on the wire of Blueprint's HTTP API, shared by the server and its clients.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod tokens;

pub use self::tokens::{CreatedToken, MAX_TOKEN_SECS, NewToken, TokenInfo, TokenList};

/// One route an instance serves, for Fuse. Unknown fields are refused, as in
/// [`Registration`]: a misspelt `strip_prefix` must not be silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The path prefix, starting with `/`.
    pub prefix: String,
    /// Only requests for this host (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Remove the prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// How long Fuse waits for this route's upstream to answer, in milliseconds (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The body of `PUT /v1/services/{service}/instances/{instance}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Where the instance listens, `host:port`.
    pub address: String,
    /// The routes it serves.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// How long the lease lasts without a heartbeat, in milliseconds.
    pub ttl_ms: u64,
}

/// An instance's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Its lease is alive.
    Passing,
    /// Its lease lapsed; it gets no traffic until it registers again.
    Critical,
}

/// One instance as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The service.
    pub service: String,
    /// The instance's id.
    pub instance: String,
    /// Its address.
    pub address: String,
    /// Its routes.
    pub routes: Vec<Route>,
    /// Its labels.
    pub metadata: BTreeMap<String, String>,
    /// Its lease, in milliseconds.
    pub ttl_ms: u64,
    /// Passing or critical.
    pub health: Health,
    /// The revision of its last registration, expiry or change.
    pub revision: u64,
}

/// `GET /v1/services/{service}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The service.
    pub service: String,
    /// Its instances, by id.
    pub instances: Vec<InstanceInfo>,
    /// The revision the answer is as of.
    pub revision: Option<u64>,
}

/// `GET /v1/services`: each service with its instance counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Every service.
    pub services: Vec<ServiceSummary>,
    /// The revision the answer is as of.
    pub revision: Option<u64>,
}

/// One line of [`ServiceList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// The service.
    pub service: String,
    /// Instances whose lease is alive.
    pub passing: usize,
    /// Instances whose lease lapsed.
    pub critical: usize,
}

/// A key's metadata and value (`GET /v1/kv?prefix=` lists these; values as base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value, base64.
    pub value_base64: String,
    /// The revision of its last change (its `ETag`).
    pub revision: u64,
    /// The revision that created it.
    pub create_revision: u64,
    /// When it last changed (RFC 3339).
    pub updated: String,
    /// Who last changed it.
    pub actor: String,
}

/// A page of `GET /v1/kv?prefix=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvList {
    /// The entries, by key.
    pub entries: Vec<KvEntry>,
    /// Pass as `after` for the next page, if there is one.
    pub next_after: Option<String>,
    /// The revision the answer is as of.
    pub revision: Option<u64>,
}

/// One change of a key (`GET /v1/kv/{key}/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvChange {
    /// The revision of the change.
    pub revision: u64,
    /// When (RFC 3339).
    pub time: String,
    /// Who.
    pub actor: String,
    /// `put` or `delete`.
    pub op: String,
    /// The value after a put, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

/// `GET /v1/kv/{key}/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvHistory {
    /// The key.
    pub key: String,
    /// The page's changes, oldest first.
    pub changes: Vec<KvChange>,
    /// The revision to pass as `after` for the next page (`None`: this is the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Standard base64 with padding (RFC 4648 §4), as values travel in JSON.
pub use draft_http::base64_encode;

/// Decodes standard base64 (padding optional); `None` if it is not base64.
#[must_use]
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let engine = &base64::engine::general_purpose::STANDARD_NO_PAD;
    engine.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn base64_known_values() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("!!!!"), None);
    }
}

/// One message of `GET /v1/watch` (a WebSocket of JSON text messages, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WatchMessage {
    /// A key's value (current state, or a change).
    Put {
        /// The revision of the put.
        revision: u64,
        /// The key.
        key: String,
        /// The value, base64.
        value_base64: String,
    },
    /// A key was deleted.
    Deleted {
        /// The revision of the delete.
        revision: u64,
        /// The key.
        key: String,
    },
    /// An instance registered (current state, or a change).
    Registered {
        /// The revision.
        revision: u64,
        /// The service.
        service: String,
        /// The instance.
        instance: String,
        /// What it registered.
        registration: Registration,
    },
    /// An instance left.
    Deregistered {
        /// The revision.
        revision: u64,
        /// The service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// An instance's lease lapsed.
    Expired {
        /// The revision.
        revision: u64,
        /// The service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// Everything up to `revision` has been sent; what follows are live changes.
    CaughtUp {
        /// The revision caught up to (`None`: the log is empty).
        revision: Option<u64>,
    },
}
