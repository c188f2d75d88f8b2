//! The write path: one task takes every queued write, validates each against the projection
//! plus the writes before it in the same group (so compare-and-set stays exact), appends the
//! accepted events to `_draft` as one atomic batch (one fsync for the group), applies them to
//! the projection and answers every writer.

mod tokens;

use std::collections::{BTreeSet, HashMap};

use draft_http::auth::Policy;
use tokio::sync::{mpsc, oneshot};

use crate::error::WriteError;
use crate::event::ControlEvent;
use crate::names::{InstanceId, Key, Revision, ServiceName, TokenName};
use crate::ownership::{
    self, Claim, ClaimDecision, ClaimStore, Claimant, RouteKey, TakeOver, may_take_over,
};
use crate::projection::{Projection, entry_bytes};
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
        /// What the registering token may take from other routes' owners.
        take_over: TakeOver,
    },
    Deregister {
        service: ServiceName,
        instance: InstanceId,
    },
    /// Sent by the lease keeper; dropped if the instance is gone or no longer passing.
    Expire {
        service: ServiceName,
        instance: InstanceId,
        /// The keeper's term, when several nodes share the log.
        term: Option<u64>,
    },
    /// Sent by the critical-instance reaper; dropped unless the instance is still critical
    /// from the expiry at revision `expired_at` (it did not register again meanwhile).
    Remove {
        service: ServiceName,
        instance: InstanceId,
        expired_at: u64,
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

/// The KV store's limits on what it holds (the projection keeps every key and value in
/// memory); a put over either is refused with [`WriteError::QuotaExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KvLimits {
    /// The most keys.
    pub(crate) max_keys: usize,
    /// The most bytes of keys and values together.
    pub(crate) max_bytes: u64,
}

impl KvLimits {
    /// No limit.
    #[cfg(test)]
    pub(crate) const NONE: Self = Self {
        max_keys: usize::MAX,
        max_bytes: u64::MAX,
    };
}

/// What the group has decided so far, over the projection.
struct Overlay {
    /// Key -> its revision and its bytes after this group's earlier writes (`None`: deleted).
    kv: HashMap<Key, Option<(u64, u64)>>,
    /// Keys and bytes the group's earlier writes added to the projection's (negative: freed).
    kv_delta: (i128, i128),
    limits: KvLimits,
    /// Instance -> its state after this group's earlier writes (`None`: deregistered).
    instances: HashMap<(ServiceName, InstanceId), Option<(Registration, Health)>>,
    /// Route -> its claim after this group's earlier writes (`None`: released).
    claims: HashMap<RouteKey, Option<Claim>>,
    /// Token -> its state after this group's earlier writes.
    tokens: tokens::TokenOverlay,
}

/// The route claims as the group sees them: the group's earlier writes over the projection.
struct Claims<'a> {
    state: &'a Projection,
    overlay: &'a mut HashMap<RouteKey, Option<Claim>>,
}

impl ClaimStore for Claims<'_> {
    fn claim(&self, key: &RouteKey) -> Option<Claim> {
        match self.overlay.get(key) {
            Some(claim) => claim.clone(),
            None => self.state.route_claims().get(key).cloned(),
        }
    }

    fn set_claim(&mut self, key: &RouteKey, claim: Option<Claim>) {
        self.overlay.insert(key.clone(), claim);
    }
}

/// Refuses a registration listing a route another service owns, unless [`may_take_over`] lets it.
fn check_claims(
    claims: &Claims<'_>,
    claimant: &Claimant<'_>,
    routes: &BTreeSet<RouteKey>,
) -> Result<(), WriteError> {
    for route in routes {
        if let Some(claim) = claims.claim(route)
            && claim.owner != claimant.service
            && may_take_over(claimant, route, &claim.owner) == ClaimDecision::Deny
        {
            return Err(WriteError::RouteOwned {
                route: route.to_string(),
                owner: claim.owner,
            });
        }
    }
    Ok(())
}

impl Overlay {
    fn new(limits: KvLimits) -> Self {
        Self {
            kv: HashMap::new(),
            kv_delta: (0, 0),
            limits,
            instances: HashMap::new(),
            claims: HashMap::new(),
            tokens: tokens::TokenOverlay::default(),
        }
    }

    /// The key's revision and bytes as the group sees them.
    fn key_state(&self, state: &Projection, key: &Key) -> Option<(u64, u64)> {
        match self.kv.get(key) {
            Some(now) => *now,
            None => state
                .get(key)
                .map(|v| (v.revision, v.entry_bytes(key.as_str()))),
        }
    }

    fn key_revision(&self, state: &Projection, key: &Key) -> Option<u64> {
        self.key_state(state, key).map(|(revision, _)| revision)
    }

    /// Records `key` as `now` (`None`: deleted), and what that adds to the store's size.
    fn set_key(&mut self, state: &Projection, key: &Key, now: Option<(u64, u64)>) {
        let before = self.key_state(state, key);
        let count = |k: Option<(u64, u64)>| i128::from(k.is_some());
        let bytes = |k: Option<(u64, u64)>| k.map_or(0, |(_, b)| i128::from(b));
        self.kv_delta.0 += count(now) - count(before);
        self.kv_delta.1 += bytes(now) - bytes(before);
        self.kv.insert(key.clone(), now);
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
    let before = overlay.key_state(state, key);
    check(condition, before.map(|(r, _)| r))?;
    let bytes = entry_bytes(key.as_str(), value.len() as u64);
    // In i128: counts and limits are u64/usize, deltas negative.
    let keys_after = state.kv_len() as i128 + overlay.kv_delta.0 + i128::from(before.is_none());
    let bytes_after = i128::from(state.kv_bytes()) + overlay.kv_delta.1 + i128::from(bytes)
        - i128::from(before.map_or(0, |(_, b)| b));
    if keys_after > overlay.limits.max_keys as i128 {
        return Err(WriteError::QuotaExceeded(format!(
            "the KV store holds {} keys, its most; delete some first",
            overlay.limits.max_keys
        )));
    }
    if bytes_after > i128::from(overlay.limits.max_bytes) {
        return Err(WriteError::QuotaExceeded(format!(
            "the KV store would hold {bytes_after} bytes of keys and values, over its most of {}",
            overlay.limits.max_bytes
        )));
    }
    overlay.set_key(state, key, Some((revision, bytes)));
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
    overlay.set_key(state, key, None);
    Ok(Some(ControlEvent::KvDeleted {
        key: key.as_str().to_owned(),
    }))
}

/// Decides a registration: unchanged, refused (a route another service owns), or the event.
fn decide_register(
    state: &Projection,
    overlay: &mut Overlay,
    (service, instance, registration): (&ServiceName, &InstanceId, &Registration),
    (actor, rights, revision): (&str, &TakeOver, u64),
) -> Result<Option<ControlEvent>, WriteError> {
    let current = overlay.instance(state, service, instance);
    if current
        .as_ref()
        .is_some_and(|(r, h)| r == registration && *h == Health::Passing)
    {
        return Ok(None);
    }
    let before = current
        .as_ref()
        .map_or_else(BTreeSet::new, |(r, _)| RouteKey::all(r));
    let after = RouteKey::all(registration);
    let mut claims = Claims {
        state,
        overlay: &mut overlay.claims,
    };
    let claimant = Claimant {
        service: service.as_str(),
        actor,
        rights,
    };
    check_claims(&claims, &claimant, &after)?;
    let who = (service.as_str(), instance.as_str());
    ownership::change(&mut claims, who, &before, &after, revision);
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

/// Decides a deregistration: not found, or the event (which releases the instance's claims).
fn decide_deregister(
    state: &Projection,
    overlay: &mut Overlay,
    (service, instance): (&ServiceName, &InstanceId),
    revision: u64,
) -> Result<Option<ControlEvent>, WriteError> {
    let Some((registration, _)) = overlay.instance(state, service, instance) else {
        return Err(WriteError::NotFound);
    };
    let mut claims = Claims {
        state,
        overlay: &mut overlay.claims,
    };
    let who = (service.as_str(), instance.as_str());
    let before = RouteKey::all(&registration);
    ownership::change(&mut claims, who, &before, &BTreeSet::new(), revision);
    overlay
        .instances
        .insert((service.clone(), instance.clone()), None);
    Ok(Some(ControlEvent::Deregistered {
        service: service.as_str().to_owned(),
        instance: instance.as_str().to_owned(),
    }))
}

/// Decides one write by `actor`: the event to append (`None`: nothing to append), given the
/// projection, the group's earlier decisions and the revision this event would get. Pure.
fn decide(
    state: &Projection,
    overlay: &mut Overlay,
    (op, actor): (&Op, &str),
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
            take_over,
        } => decide_register(
            state,
            overlay,
            (service, instance, registration),
            (actor, take_over, revision),
        ),
        Op::Deregister { service, instance } => {
            decide_deregister(state, overlay, (service, instance), revision)
        }
        Op::Expire {
            service,
            instance,
            term,
        } => match overlay.instance(state, service, instance) {
            Some((registration, Health::Passing)) => {
                overlay.instances.insert(
                    (service.clone(), instance.clone()),
                    Some((registration, Health::Critical)),
                );
                Ok(Some(ControlEvent::Expired {
                    service: service.as_str().to_owned(),
                    instance: instance.as_str().to_owned(),
                    keeper_term: *term,
                }))
            }
            _ => Ok(None),
        },
        Op::Remove {
            service,
            instance,
            expired_at,
        } => {
            let untouched = !overlay
                .instances
                .contains_key(&(service.clone(), instance.clone()));
            let still_critical = state
                .instance(service, instance)
                .is_some_and(|i| i.health == Health::Critical && i.revision == *expired_at);
            if !(untouched && still_critical) {
                return Ok(None);
            }
            decide_deregister(state, overlay, (service, instance), revision).map(|_| {
                Some(ControlEvent::Removed {
                    service: service.as_str().to_owned(),
                    instance: instance.as_str().to_owned(),
                })
            })
        }
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
    limits: KvLimits,
) -> Group {
    let mut overlay = Overlay::new(limits);
    let mut events = Vec::new();
    let mut decisions = Vec::with_capacity(requests.len());
    for request in &requests {
        if !keep(&request.op) {
            decisions.push(Ok(None));
            continue;
        }
        let revision = next_revision + events.len() as u64;
        decisions.push(
            decide(state, &mut overlay, (&request.op, &request.actor), revision).map(|event| {
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
mod tests;
