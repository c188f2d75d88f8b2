//! Control-plane events: every change to the registry or the KV store is one CloudEvent in
//! the control partition `_draft` (DESIGN.md §2-3), so the control plane has one total order
//! and its offset is the revision.

use draft_http::auth::Policy;
use serde::{Deserialize, Serialize};

use crate::wire::{Registration, base64_decode, base64_encode};

/// The control partition.
pub const CONTROL_PARTITION: &str = "_draft";

/// The prefix of every control event's type.
pub const CONTROL_TYPE_PREFIX: &str = "io.draft.";

/// The types Blueprint itself writes (and the projection folds).
const OWN_TYPES: [&str; 8] = [
    "io.draft.instance.registered",
    "io.draft.instance.deregistered",
    "io.draft.instance.expired",
    "io.draft.instance.removed",
    "io.draft.kv.put",
    "io.draft.kv.deleted",
    "io.draft.token.created",
    "io.draft.token.revoked",
];

/// The families of Blueprint's own types: never recorded for another part of the node.
const OWN_FAMILIES: [&str; 3] = ["io.draft.instance.", "io.draft.kv.", "io.draft.token."];

/// Prefixes of the control event types that other parts of the node record in `_draft`
/// through [`Blueprint::record`](crate::Blueprint::record): Catalyst's consumer groups
/// (`io.draft.group.created`, `io.draft.group.deleted`) and channel settings
/// (`io.draft.channel.configured`). Blueprint passes over them quietly;
/// any other `io.draft.*` type it does not know (from a newer node, say) is passed over too,
/// and logged once.
pub const FOREIGN_TYPE_PREFIXES: [&str; 2] = ["io.draft.group.", "io.draft.channel."];

/// Whether Blueprint may record an event of type `ty` for another part of the node: an
/// `io.draft.*` type that is not one of Blueprint's own.
#[must_use]
pub fn is_foreign_type(ty: &str) -> bool {
    ty.len() > CONTROL_TYPE_PREFIX.len()
        && ty.starts_with(CONTROL_TYPE_PREFIX)
        && !OWN_FAMILIES.iter().any(|f| ty.starts_with(f))
}

/// Whether `ty` is a foreign type this node expects (see [`FOREIGN_TYPE_PREFIXES`]).
#[must_use]
pub fn is_known_foreign_type(ty: &str) -> bool {
    is_foreign_type(ty) && FOREIGN_TYPE_PREFIXES.iter().any(|p| ty.starts_with(p))
}

/// A change to the registry or the KV store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEvent {
    /// `io.draft.instance.registered`: an instance registered (or changed its registration).
    Registered {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
        /// What it registered.
        registration: Registration,
    },
    /// `io.draft.instance.deregistered`: an instance left.
    Deregistered {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// `io.draft.instance.expired`: an instance's lease lapsed.
    Expired {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
        /// The term of the lease keeper that wrote it, when several nodes share the log
        /// (`None`: a node alone on its log).
        keeper_term: Option<u64>,
    },
    /// `io.draft.instance.removed`: the node removed an instance that had been critical
    /// (its lease lapsed, and it did not register again) for longer than its
    /// `remove_critical_after` (Consul's `DeregisterCriticalServiceAfter`).
    Removed {
        /// The service.
        service: String,
        /// The instance.
        instance: String,
    },
    /// `io.draft.kv.put`.
    KvPut {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// `io.draft.kv.deleted`.
    KvDeleted {
        /// The key.
        key: String,
    },
    /// `io.draft.token.created`: a token was made. Only its secret's SHA-256 is kept; the
    /// event's actor made it.
    TokenCreated {
        /// Its name.
        name: String,
        /// The SHA-256 of its secret, lowercase hex.
        secret_sha256: String,
        /// What it may do.
        policy: Policy,
        /// When it stops being valid (unix nanos; `None`: never).
        expires_at_nanos: Option<u64>,
        /// Who made it (the event's actor, also in its data so the grant reads on its own).
        creator: String,
    },
    /// `io.draft.token.revoked`: a token was revoked (the event's actor revoked it).
    TokenRevoked {
        /// Its name.
        name: String,
    },
    /// A control event of another part of the node (an `io.draft.*` type that is not
    /// Blueprint's, such as `io.draft.group.created`): kept in `_draft` for the audit trail,
    /// in order with Blueprint's own, and changing nothing in the projection but its revision.
    Other {
        /// Its CloudEvent `type`.
        ty: String,
        /// Its `data`, as stored.
        data: serde_json::Value,
    },
}

/// The `data` of each event type, as stored.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Data {
    Registered {
        service: String,
        instance: String,
        address: String,
        routes: Vec<crate::wire::Route>,
        metadata: std::collections::BTreeMap<String, String>,
        ttl_ms: u64,
    },
    Instance {
        service: String,
        instance: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keeper_term: Option<u64>,
    },
    KvPut {
        key: String,
        value_base64: String,
    },
    Key {
        key: String,
    },
}

/// The `data` of `io.draft.token.created`, as stored.
#[derive(Serialize, Deserialize)]
struct TokenCreatedData {
    name: String,
    secret_sha256: String,
    policy: Policy,
    /// RFC 3339, or `null` for a token that does not expire.
    expires_at: Option<String>,
    creator: String,
}

/// The `data` of `io.draft.token.revoked`, as stored.
#[derive(Serialize, Deserialize)]
struct TokenRevokedData {
    name: String,
}

/// A control event with what the log knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its revision (offset in `_draft`).
    pub revision: u64,
    /// When it was appended (unix nanos).
    pub time_nanos: u64,
    /// Who made the change.
    pub actor: String,
    /// The change.
    pub event: ControlEvent,
}

impl ControlEvent {
    /// The CloudEvent `type`.
    #[must_use]
    pub fn ty(&self) -> &str {
        match self {
            Self::Registered { .. } => "io.draft.instance.registered",
            Self::Deregistered { .. } => "io.draft.instance.deregistered",
            Self::Expired { .. } => "io.draft.instance.expired",
            Self::Removed { .. } => "io.draft.instance.removed",
            Self::KvPut { .. } => "io.draft.kv.put",
            Self::KvDeleted { .. } => "io.draft.kv.deleted",
            Self::TokenCreated { .. } => "io.draft.token.created",
            Self::TokenRevoked { .. } => "io.draft.token.revoked",
            Self::Other { ty, .. } => ty,
        }
    }

    /// The path watches filter on: the key, or `services/<service>/<instance>` (`None` for
    /// tokens and [`ControlEvent::Other`], which watches do not show).
    #[must_use]
    pub fn path(&self) -> Option<String> {
        match self {
            Self::Registered {
                service, instance, ..
            }
            | Self::Deregistered { service, instance }
            | Self::Expired {
                service, instance, ..
            }
            | Self::Removed { service, instance } => Some(format!("services/{service}/{instance}")),
            Self::KvPut { key, .. } | Self::KvDeleted { key } => Some(key.clone()),
            Self::TokenCreated { .. } | Self::TokenRevoked { .. } | Self::Other { .. } => None,
        }
    }

    /// Whether the event creates or revokes a token.
    #[must_use]
    pub fn is_token(&self) -> bool {
        matches!(self, Self::TokenCreated { .. } | Self::TokenRevoked { .. })
    }

    fn data(&self) -> serde_json::Value {
        let data = match self.clone() {
            Self::Registered {
                service,
                instance,
                registration,
            } => Data::Registered {
                service,
                instance,
                address: registration.address,
                routes: registration.routes,
                metadata: registration.metadata,
                ttl_ms: registration.ttl_ms,
            },
            Self::Deregistered { service, instance } | Self::Removed { service, instance } => {
                Data::Instance {
                    service,
                    instance,
                    keeper_term: None,
                }
            }
            Self::Expired {
                service,
                instance,
                keeper_term,
            } => Data::Instance {
                service,
                instance,
                keeper_term,
            },
            Self::KvPut { key, value } => Data::KvPut {
                key,
                value_base64: base64_encode(&value),
            },
            Self::KvDeleted { key } => Data::Key { key },
            Self::TokenCreated {
                name,
                secret_sha256,
                policy,
                expires_at_nanos,
                creator,
            } => {
                let data = TokenCreatedData {
                    name,
                    secret_sha256,
                    policy,
                    expires_at: expires_at_nanos.map(draft_http::rfc3339),
                    creator,
                };
                return serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
            }
            Self::TokenRevoked { name } => {
                return serde_json::to_value(TokenRevokedData { name })
                    .unwrap_or(serde_json::Value::Null);
            }
            Self::Other { data, .. } => return data,
        };
        serde_json::to_value(data).unwrap_or(serde_json::Value::Null)
    }

    /// The structured-mode CloudEvent stored in the log.
    #[must_use]
    pub fn to_cloudevent(
        &self,
        id: &str,
        node: &str,
        actor: &str,
        time_rfc3339: &str,
    ) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0",
            "id": id,
            "source": format!("/draft/{node}"),
            "type": self.ty(),
            "time": time_rfc3339,
            "datacontenttype": "application/json",
            "draftactor": actor,
            "data": self.data(),
        })
    }

    /// Reads a control event back from its stored CloudEvent; returns it with its actor. An
    /// `io.draft.*` type that is not Blueprint's is [`ControlEvent::Other`].
    ///
    /// # Errors
    /// A description of what does not fit, if the JSON is not a control event (or one of
    /// Blueprint's types with data that does not fit it).
    pub fn from_cloudevent(json: &[u8]) -> Result<(Self, String), String> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            ty: String,
            #[serde(default)]
            draftactor: Option<String>,
            #[serde(default)]
            data: serde_json::Value,
        }
        let envelope: Envelope = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let actor = envelope
            .draftactor
            .unwrap_or_else(|| "anonymous".to_owned());
        if is_foreign_type(&envelope.ty) {
            let event = Self::Other {
                ty: envelope.ty,
                data: envelope.data,
            };
            return Ok((event, actor));
        }
        if !OWN_TYPES.contains(&envelope.ty.as_str()) {
            return Err(format!(
                "not a control event of a known type: {}",
                envelope.ty
            ));
        }
        if let Some(event) = token_event(&envelope.ty, &envelope.data) {
            return event.map(|e| (e, actor));
        }
        let data: Data = serde_json::from_value(envelope.data).map_err(|e| e.to_string())?;
        let event = match (envelope.ty.as_str(), data) {
            (
                "io.draft.instance.registered",
                Data::Registered {
                    service,
                    instance,
                    address,
                    routes,
                    metadata,
                    ttl_ms,
                },
            ) => Self::Registered {
                service,
                instance,
                registration: Registration {
                    address,
                    routes,
                    metadata,
                    ttl_ms,
                },
            },
            (
                "io.draft.instance.deregistered",
                Data::Instance {
                    service, instance, ..
                },
            ) => Self::Deregistered { service, instance },
            (
                "io.draft.instance.expired",
                Data::Instance {
                    service,
                    instance,
                    keeper_term,
                },
            ) => Self::Expired {
                service,
                instance,
                keeper_term,
            },
            (
                "io.draft.instance.removed",
                Data::Instance {
                    service, instance, ..
                },
            ) => Self::Removed { service, instance },
            ("io.draft.kv.put", Data::KvPut { key, value_base64 }) => Self::KvPut {
                key,
                value: base64_decode(&value_base64).ok_or("value_base64 is not base64")?,
            },
            ("io.draft.kv.deleted", Data::Key { key }) => Self::KvDeleted { key },
            (ty, _) => return Err(format!("the data does not fit a {ty} event")),
        };
        Ok((event, actor))
    }
}

/// A token event read back from its type and data (`None`: not a token type).
fn token_event(ty: &str, data: &serde_json::Value) -> Option<Result<ControlEvent, String>> {
    let decode = |ty: &str| -> Result<ControlEvent, String> {
        if ty == "io.draft.token.revoked" {
            let d = TokenRevokedData::deserialize(data).map_err(|e| e.to_string())?;
            return Ok(ControlEvent::TokenRevoked { name: d.name });
        }
        let d = TokenCreatedData::deserialize(data).map_err(|e| e.to_string())?;
        let expires_at_nanos = match &d.expires_at {
            None => None,
            Some(text) => Some(
                draft_http::parse_rfc3339(text)
                    .ok_or_else(|| format!("expires_at {text:?} is not RFC 3339"))?,
            ),
        };
        Ok(ControlEvent::TokenCreated {
            name: d.name,
            secret_sha256: d.secret_sha256,
            policy: d.policy,
            expires_at_nanos,
            creator: d.creator,
        })
    };
    ty.starts_with("io.draft.token.").then(|| decode(ty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Route;

    #[test]
    fn every_event_round_trips_through_its_cloudevent() {
        let registration = Registration {
            address: "127.0.0.1:9000".into(),
            routes: vec![Route {
                prefix: "/api".into(),
                host: Some("a.example".into()),
                strip_prefix: true,
                timeout_ms: Some(500),
            }],
            metadata: [("zone".to_owned(), "a".to_owned())].into(),
            ttl_ms: 5000,
        };
        let events = [
            ControlEvent::Registered {
                service: "web".into(),
                instance: "w1".into(),
                registration,
            },
            ControlEvent::Deregistered {
                service: "web".into(),
                instance: "w1".into(),
            },
            ControlEvent::Expired {
                service: "web".into(),
                instance: "w2".into(),
                keeper_term: None,
            },
            ControlEvent::Expired {
                service: "web".into(),
                instance: "w3".into(),
                keeper_term: Some(7),
            },
            ControlEvent::KvPut {
                key: "app/db".into(),
                value: vec![0, 1, 255],
            },
            ControlEvent::KvDeleted {
                key: "app/db".into(),
            },
            ControlEvent::TokenCreated {
                name: "ci".into(),
                secret_sha256: "ab".repeat(32),
                policy: Policy::Reader,
                expires_at_nanos: Some(1_767_225_600_000_000_000),
                creator: "alice".into(),
            },
            ControlEvent::TokenCreated {
                name: "orders".into(),
                secret_sha256: "cd".repeat(32),
                policy: Policy::from_json(r#"{"kv":{"read":["config/orders/*"]}}"#)
                    .expect("policy"),
                expires_at_nanos: None,
                creator: "alice".into(),
            },
            ControlEvent::TokenRevoked { name: "ci".into() },
            ControlEvent::Other {
                ty: "io.draft.group.created".into(),
                data: serde_json::json!({"channel": "orders", "group": "billing"}),
            },
        ];
        for event in events {
            let json = event.to_cloudevent("id-1", "node-a", "alice", "2026-01-01T00:00:00Z");
            assert_eq!(json["source"], "/draft/node-a");
            assert_eq!(json["type"], event.ty());
            let bytes = serde_json::to_vec(&json).expect("json");
            let (back, actor) = ControlEvent::from_cloudevent(&bytes).expect("decodes");
            assert_eq!((back, actor.as_str()), (event, "alice"));
        }
        assert!(ControlEvent::from_cloudevent(br#"{"type":"other","data":{}}"#).is_err());
    }

    #[test]
    fn unknown_draft_types_are_other_events_and_blueprints_own_types_stay_strict() {
        let future = br#"{"type":"io.draft.future.thing","draftactor":"bob","data":[1,2]}"#;
        let (event, actor) = ControlEvent::from_cloudevent(future).expect("passed over");
        assert_eq!(actor, "bob");
        assert_eq!(
            event,
            ControlEvent::Other {
                ty: "io.draft.future.thing".into(),
                data: serde_json::json!([1, 2]),
            }
        );
        assert_eq!(event.path(), None, "watches do not show it");
        let bad_put = br#"{"type":"io.draft.kv.put","data":{"nope":1}}"#;
        assert!(ControlEvent::from_cloudevent(bad_put).is_err());
        let new_kv_type = br#"{"type":"io.draft.kv.renamed","data":{}}"#;
        assert!(
            ControlEvent::from_cloudevent(new_kv_type).is_err(),
            "Blueprint's own families are never passed over"
        );
        assert!(is_known_foreign_type("io.draft.group.created"));
        assert!(!is_known_foreign_type("io.draft.future.thing"));
        assert!(is_foreign_type("io.draft.future.thing"));
        for own in OWN_TYPES {
            assert!(!is_foreign_type(own), "{own}");
        }
        assert!(!is_foreign_type("io.draft.token.created"));
        assert!(!is_foreign_type("io.draft."));
        assert!(!is_foreign_type("com.example.x"));
    }
}
