//! Control-plane events: every change to the registry or the KV store is one CloudEvent in
//! the control partition `_draft` (DESIGN.md §2-3), so the control plane has one total order
//! and its offset is the revision.

use serde::{Deserialize, Serialize};

use crate::wire::{Registration, base64_decode, base64_encode};

/// The control partition.
pub const CONTROL_PARTITION: &str = "_draft";

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
    },
    KvPut {
        key: String,
        value_base64: String,
    },
    Key {
        key: String,
    },
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
    pub fn ty(&self) -> &'static str {
        match self {
            Self::Registered { .. } => "io.draft.instance.registered",
            Self::Deregistered { .. } => "io.draft.instance.deregistered",
            Self::Expired { .. } => "io.draft.instance.expired",
            Self::KvPut { .. } => "io.draft.kv.put",
            Self::KvDeleted { .. } => "io.draft.kv.deleted",
        }
    }

    /// The path watches filter on: the key, or `services/<service>/<instance>`.
    #[must_use]
    pub fn path(&self) -> String {
        match self {
            Self::Registered {
                service, instance, ..
            }
            | Self::Deregistered { service, instance }
            | Self::Expired { service, instance } => format!("services/{service}/{instance}"),
            Self::KvPut { key, .. } | Self::KvDeleted { key } => key.clone(),
        }
    }

    fn data(&self) -> Data {
        match self.clone() {
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
            Self::Deregistered { service, instance } | Self::Expired { service, instance } => {
                Data::Instance { service, instance }
            }
            Self::KvPut { key, value } => Data::KvPut {
                key,
                value_base64: base64_encode(&value),
            },
            Self::KvDeleted { key } => Data::Key { key },
        }
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

    /// Reads a control event back from its stored CloudEvent; returns it with its actor.
    ///
    /// # Errors
    /// A description of what does not fit, if the JSON is not a control event.
    pub fn from_cloudevent(json: &[u8]) -> Result<(Self, String), String> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            ty: String,
            #[serde(default)]
            draftactor: Option<String>,
            data: serde_json::Value,
        }
        let envelope: Envelope = serde_json::from_slice(json).map_err(|e| e.to_string())?;
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
            ("io.draft.instance.deregistered", Data::Instance { service, instance }) => {
                Self::Deregistered { service, instance }
            }
            ("io.draft.instance.expired", Data::Instance { service, instance }) => {
                Self::Expired { service, instance }
            }
            ("io.draft.kv.put", Data::KvPut { key, value_base64 }) => Self::KvPut {
                key,
                value: base64_decode(&value_base64).ok_or("value_base64 is not base64")?,
            },
            ("io.draft.kv.deleted", Data::Key { key }) => Self::KvDeleted { key },
            (ty, _) => return Err(format!("not a control event of a known type: {ty}")),
        };
        Ok((
            event,
            envelope
                .draftactor
                .unwrap_or_else(|| "anonymous".to_owned()),
        ))
    }
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
            },
            ControlEvent::KvPut {
                key: "app/db".into(),
                value: vec![0, 1, 255],
            },
            ControlEvent::KvDeleted {
                key: "app/db".into(),
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
}
