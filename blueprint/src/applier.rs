//! The write path: one task takes every queued write, validates each against the projection
//! plus the writes before it in the same group (so compare-and-set stays exact), appends the
//! accepted events to `_draft` as one atomic batch (one fsync for the group), applies them to
//! the projection and answers every writer.

mod tokens;

use std::collections::HashMap;

use draft_http::auth::Policy;
use tokio::sync::{mpsc, oneshot};

use crate::error::WriteError;
use crate::event::ControlEvent;
use crate::names::{InstanceId, Key, Revision, ServiceName, TokenName};
use crate::projection::Projection;
use crate::wire::{Health, Registration};

/// The most writes one group takes.
const MAX_GROUP: usize = 1024;

/// A compare-and-set condition on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    None,
    /// Only if the key is at this revision (`If-Match`).
    IfMatch(u64),
    /// Only if the key does not exist (`If-None-Match: *`).
    IfAbsent,
    /// Only if the key exists (`If-Match: *`).
    IfPresent,
}

/// A requested change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Register {
        service: ServiceName,
        instance: InstanceId,
        registration: Registration,
    },
    Deregister {
        service: ServiceName,
        instance: InstanceId,
    },
    /// Sent by the lease keeper; dropped if the instance is gone or no longer passing.
    Expire {
        service: ServiceName,
        instance: InstanceId,
    },
    Put {
        key: Key,
        value: Vec<u8>,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// A new token; refused if a token live at `now_nanos` has its name (or its secret).
    CreateToken {
        name: TokenName,
        secret_sha256: String,
        policy: Policy,
        expires_at_nanos: Option<u64>,
        creator: String,
        now_nanos: u64,
    },
    /// Revokes a token (live or expired); `NotFound` if there is none of that name.
    RevokeToken {
        name: TokenName,
    },
    /// Another part of the node's control event (a type [`is_foreign_type`] accepts), for
    /// the audit trail: always appended.
    ///
    /// [`is_foreign_type`]: crate::event::is_foreign_type
    Record {
        ty: String,
        data: serde_json::Value,
    },
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Appended at this revision.
    Appended(Revision),
    /// Nothing to change (same registration; expiry of a renewed lease).
    Unchanged,
}

pub(crate) struct WriteRequest {
    pub(crate) op: Op,
    pub(crate) actor: String,
    pub(crate) reply: oneshot::Sender<Result<Outcome, WriteError>>,
}

/// What the group has decided so far, over the projection.
#[derive(Default)]
struct Overlay {
    /// Key -> its revision after this group's earlier writes (`None`: deleted).
    kv: HashMap<Key, Option<u64>>,
    /// Instance -> its state after this group's earlier writes (`None`: deregistered).
    instances: HashMap<(ServiceName, InstanceId), Option<(Registration, Health)>>,
    /// Token -> its state after this group's earlier writes.
    tokens: tokens::TokenOverlay,
}

impl Overlay {
    fn key_revision(&self, state: &Projection, key: &Key) -> Option<u64> {
        match self.kv.get(key) {
            Some(rev) => *rev,
            None => state.get(key).map(|v| v.revision),
        }
    }

    fn instance(
        &self,
        state: &Projection,
        service: &ServiceName,
        instance: &InstanceId,
    ) -> Option<(Registration, Health)> {
        match self.instances.get(&(service.clone(), instance.clone())) {
            Some(i) => i.clone(),
            None => state
                .instance(service, instance)
                .map(|i| (i.registration.clone(), i.health)),
        }
    }
}

fn check(condition: Condition, current: Option<u64>) -> Result<(), WriteError> {
    let ok = match condition {
        Condition::None => true,
        Condition::IfMatch(rev) => current == Some(rev),
        Condition::IfAbsent => current.is_none(),
        Condition::IfPresent => current.is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(WriteError::PreconditionFailed { current })
    }
}

/// Decides a put of `key` at `revision`.
fn decide_put(
    state: &Projection,
    overlay: &mut Overlay,
    (key, value, condition): (&Key, &[u8], Condition),
    revision: u64,
) -> Result<Option<ControlEvent>, WriteError> {
    check(condition, overlay.key_revision(state, key))?;
    overlay.kv.insert(key.clone(), Some(revision));
    Ok(Some(ControlEvent::KvPut {
        key: key.as_str().to_owned(),
        value: value.to_vec(),
    }))
}

/// Decides a delete of `key`.
fn decide_delete(
    state: &Projection,
    overlay: &mut Overlay,
    key: &Key,
    condition: Condition,
) -> Result<Option<ControlEvent>, WriteError> {
    let current = overlay.key_revision(state, key);
    if current.is_none() {
        return Err(WriteError::NotFound);
    }
    check(condition, current)?;
    overlay.kv.insert(key.clone(), None);
    Ok(Some(ControlEvent::KvDeleted {
        key: key.as_str().to_owned(),
    }))
}

/// Decides one write: the event to append (`None`: nothing to append), given the projection,
/// the group's earlier decisions and the revision this event would get. Pure.
fn decide(
    state: &Projection,
    overlay: &mut Overlay,
    op: &Op,
    revision: u64,
) -> Result<Option<ControlEvent>, WriteError> {
    match op {
        Op::Put {
            key,
            value,
            condition,
        } => decide_put(state, overlay, (key, value, *condition), revision),
        Op::Delete { key, condition } => decide_delete(state, overlay, key, *condition),
        Op::Register {
            service,
            instance,
            registration,
        } => {
            let current = overlay.instance(state, service, instance);
            if current
                .as_ref()
                .is_some_and(|(r, h)| r == registration && *h == Health::Passing)
            {
                return Ok(None);
            }
            overlay.instances.insert(
                (service.clone(), instance.clone()),
                Some((registration.clone(), Health::Passing)),
            );
            Ok(Some(ControlEvent::Registered {
                service: service.as_str().to_owned(),
                instance: instance.as_str().to_owned(),
                registration: registration.clone(),
            }))
        }
        Op::Deregister { service, instance } => {
            if overlay.instance(state, service, instance).is_none() {
                return Err(WriteError::NotFound);
            }
            overlay
                .instances
                .insert((service.clone(), instance.clone()), None);
            Ok(Some(ControlEvent::Deregistered {
                service: service.as_str().to_owned(),
                instance: instance.as_str().to_owned(),
            }))
        }
        Op::Expire { service, instance } => match overlay.instance(state, service, instance) {
            Some((registration, Health::Passing)) => {
                overlay.instances.insert(
                    (service.clone(), instance.clone()),
                    Some((registration, Health::Critical)),
                );
                Ok(Some(ControlEvent::Expired {
                    service: service.as_str().to_owned(),
                    instance: instance.as_str().to_owned(),
                }))
            }
            _ => Ok(None),
        },
        Op::CreateToken { .. } | Op::RevokeToken { .. } => {
            tokens::decide(state, &mut overlay.tokens, op).map(Some)
        }
        Op::Record { ty, data } => Ok(Some(ControlEvent::Other {
            ty: ty.clone(),
            data: data.clone(),
        })),
    }
}

/// A group's decisions: for each request, its index among the events to append, or its answer.
pub(crate) struct Group {
    pub(crate) requests: Vec<WriteRequest>,
    pub(crate) events: Vec<(ControlEvent, String)>,
    /// Per request: `Ok(Some(i))` = the i-th event; `Ok(None)` = unchanged; `Err` = refused.
    pub(crate) decisions: Vec<Result<Option<usize>, WriteError>>,
}

/// Takes the next group of writes: blocks for the first, then whatever else is queued.
pub(crate) async fn next_group(rx: &mut mpsc::Receiver<WriteRequest>) -> Option<Vec<WriteRequest>> {
    let first = rx.recv().await?;
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(r) => group.push(r),
            Err(_) => break,
        }
    }
    Some(group)
}

/// Decides a group against `state`, whose next revision is `next_revision`.
pub(crate) fn decide_group(
    state: &Projection,
    next_revision: u64,
    requests: Vec<WriteRequest>,
    keep: impl Fn(&Op) -> bool,
) -> Group {
    let mut overlay = Overlay::default();
    let mut events = Vec::new();
    let mut decisions = Vec::with_capacity(requests.len());
    for request in &requests {
        if !keep(&request.op) {
            decisions.push(Ok(None));
            continue;
        }
        let revision = next_revision + events.len() as u64;
        decisions.push(
            decide(state, &mut overlay, &request.op, revision).map(|event| {
                event.map(|e| {
                    events.push((e, request.actor.clone()));
                    events.len() - 1
                })
            }),
        );
    }
    Group {
        requests,
        events,
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Applied;

    fn request(op: Op) -> WriteRequest {
        let (reply, _) = oneshot::channel();
        WriteRequest {
            op,
            actor: "a".into(),
            reply,
        }
    }

    fn key(key: &str) -> Key {
        Key::parse(key).expect("key")
    }

    fn put(key: &str, condition: Condition) -> Op {
        Op::Put {
            key: self::key(key),
            value: b"v".to_vec(),
            condition,
        }
    }

    #[test]
    fn compare_and_set_sees_earlier_writes_of_the_same_group() {
        let mut state = Projection::default();
        state.apply(&Applied {
            revision: 4,
            time_nanos: 0,
            actor: "a".into(),
            event: ControlEvent::KvPut {
                key: "k".into(),
                value: vec![],
            },
        });
        let group = decide_group(
            &state,
            5,
            vec![
                request(put("k", Condition::IfMatch(4))), // ok -> revision 5
                request(put("k", Condition::IfMatch(4))), // stale now
                request(put("k", Condition::IfMatch(5))), // sees the first
                request(put("new", Condition::IfAbsent)),
                request(put("new", Condition::IfAbsent)), // exists now
                request(Op::Delete {
                    key: key("gone"),
                    condition: Condition::None,
                }),
            ],
            |_| true,
        );
        let shape: Vec<String> = group.decisions.iter().map(|d| format!("{d:?}")).collect();
        assert_eq!(group.events.len(), 3, "{shape:?}");
        assert!(matches!(group.decisions[0], Ok(Some(0))));
        assert!(matches!(
            group.decisions[1],
            Err(WriteError::PreconditionFailed { current: Some(5) })
        ));
        assert!(matches!(group.decisions[2], Ok(Some(1))));
        assert!(matches!(
            group.decisions[4],
            Err(WriteError::PreconditionFailed { current: Some(_) })
        ));
        assert!(matches!(group.decisions[5], Err(WriteError::NotFound)));
    }

    #[test]
    fn same_registration_appends_nothing_and_expiry_needs_a_passing_instance() {
        let registration = Registration {
            address: "a:1".into(),
            routes: vec![],
            metadata: std::collections::BTreeMap::default(),
            ttl_ms: 100,
        };
        let service = ServiceName::parse("s").expect("service");
        let instance = InstanceId::parse("i").expect("instance");
        let reg = || Op::Register {
            service: service.clone(),
            instance: instance.clone(),
            registration: registration.clone(),
        };
        let expire = || Op::Expire {
            service: service.clone(),
            instance: instance.clone(),
        };
        let group = decide_group(
            &Projection::default(),
            0,
            vec![
                request(reg()),
                request(reg()),
                request(expire()),
                request(expire()),
                request(reg()),
            ],
            |_| true,
        );
        let kinds: Vec<_> = group.events.iter().map(|(e, _)| e.ty()).collect();
        assert_eq!(
            kinds,
            vec![
                "io.draft.instance.registered",
                "io.draft.instance.expired",
                "io.draft.instance.registered"
            ]
        );
        assert!(
            matches!(group.decisions[1], Ok(None)),
            "same body: unchanged"
        );
        assert!(matches!(group.decisions[3], Ok(None)), "already critical");
    }
}
