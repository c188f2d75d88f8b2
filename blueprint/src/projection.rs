//! The registry and KV store as a pure fold over the control events: `apply` is the only way
//! state changes, so any state (now, or as of any revision) is rebuilt by replaying the log.
//! No I/O here; tested by feeding events.
//!
//! Of a key it keeps only the metadata ([`KvMeta`]), not the value: the value is in the put
//! at the key's revision, and readers take it from the log, so the projection's memory is
//! proportional to the number of keys (and changes), not to the bytes of their values.

mod kv;
mod tokens;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::kv::KvMeta;
pub(crate) use self::kv::entry_bytes;
pub use self::tokens::{Token, Tokens};

use crate::event::{Applied, ControlEvent};
use crate::ownership::{self, RouteClaims, RouteKey};
use crate::wire::{Health, Registration};

/// A registered instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// What it registered.
    pub registration: Registration,
    /// Passing until its lease lapses.
    pub health: Health,
    /// The revision of its last registration or expiry.
    pub revision: u64,
}

/// The state of the control plane as of `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Saved")]
pub struct Projection {
    revision: Option<u64>,
    /// The revision of the last registry change (registration, deregistration, expiry).
    registry_revision: Option<u64>,
    services: BTreeMap<String, BTreeMap<String, Instance>>,
    kv: BTreeMap<String, KvMeta>,
    /// The revisions of every change of every key ever written (deleted keys included).
    history: BTreeMap<String, Vec<u64>>,
    /// Who owns each route (see [`ownership`]).
    routes: RouteClaims,
    /// Tokens made and not revoked.
    tokens: Tokens,
    /// Bytes of every key and value (by their lengths): not saved, counted again when a
    /// checkpoint is read.
    #[serde(skip_serializing)]
    kv_bytes: u64,
}

/// A [`Projection`] as checkpoints hold it.
#[derive(Deserialize)]
struct Saved {
    revision: Option<u64>,
    #[serde(default)]
    registry_revision: Option<u64>,
    services: BTreeMap<String, BTreeMap<String, Instance>>,
    /// Checkpoints written before values were left in the log hold them: [`KvMeta`] keeps
    /// only their length.
    kv: BTreeMap<String, KvMeta>,
    history: BTreeMap<String, Vec<u64>>,
    /// Absent from checkpoints written before routes had owners:
    /// [`Projection::fill_missing_claims`] derives it then.
    #[serde(default)]
    routes: RouteClaims,
    #[serde(default)]
    tokens: Tokens,
}

impl From<Saved> for Projection {
    fn from(saved: Saved) -> Self {
        let kv_bytes = saved.kv.iter().map(|(k, v)| v.entry_bytes(k)).sum();
        Self {
            revision: saved.revision,
            registry_revision: saved.registry_revision,
            services: saved.services,
            kv: saved.kv,
            history: saved.history,
            routes: saved.routes,
            tokens: saved.tokens,
            kv_bytes,
        }
    }
}

impl Projection {
    /// Applies one event. Events at or below the current revision were applied already and
    /// are ignored, so replaying an overlapping range is harmless.
    pub fn apply(&mut self, applied: &Applied) {
        if self.revision.is_some_and(|r| applied.revision <= r) {
            return;
        }
        let revision = applied.revision;
        self.revision = Some(revision);
        if !matches!(
            applied.event,
            ControlEvent::KvPut { .. }
                | ControlEvent::KvDeleted { .. }
                | ControlEvent::TokenCreated { .. }
                | ControlEvent::TokenRevoked { .. }
                | ControlEvent::Other { .. }
        ) {
            self.registry_revision = Some(revision);
        }
        match &applied.event {
            ControlEvent::Registered {
                service,
                instance,
                registration,
            } => self.registered(service, instance, registration, revision),
            ControlEvent::Deregistered { service, instance }
            | ControlEvent::Removed { service, instance } => {
                self.deregistered(service, instance, revision);
            }
            ControlEvent::Expired {
                service, instance, ..
            } => {
                if let Some(i) = self
                    .services
                    .get_mut(service)
                    .and_then(|s| s.get_mut(instance))
                {
                    i.health = Health::Critical;
                    i.revision = revision;
                }
            }
            ControlEvent::KvPut { key, value } => {
                let create_revision = self.kv.get(key).map_or(revision, |v| v.create_revision);
                let before = self.kv.get(key).map_or(0, |v| v.entry_bytes(key));
                let value_len = value.len() as u64;
                self.kv_bytes = self.kv_bytes - before + entry_bytes(key, value_len);
                self.kv.insert(
                    key.clone(),
                    KvMeta {
                        value_len,
                        revision,
                        create_revision,
                        time_nanos: applied.time_nanos,
                        actor: applied.actor.clone(),
                    },
                );
                self.history.entry(key.clone()).or_default().push(revision);
            }
            ControlEvent::KvDeleted { key } => {
                if let Some(gone) = self.kv.remove(key) {
                    self.kv_bytes -= gone.entry_bytes(key);
                }
                self.history.entry(key.clone()).or_default().push(revision);
            }
            ControlEvent::TokenCreated {
                name,
                secret_sha256,
                policy,
                expires_at_nanos,
                creator,
            } => self.tokens.create(
                name,
                Token {
                    secret_sha256: secret_sha256.clone(),
                    policy: policy.clone(),
                    expires_at_nanos: *expires_at_nanos,
                    creator: creator.clone(),
                    created_nanos: applied.time_nanos,
                    revision,
                },
            ),
            ControlEvent::TokenRevoked { name } => self.tokens.revoke(name),
            // Another part of the node's event: only the revision moves.
            ControlEvent::Other { .. } => {}
        }
    }

    fn registered(
        &mut self,
        service: &str,
        instance: &str,
        registration: &crate::wire::Registration,
        revision: u64,
    ) {
        let instances = self.services.entry(service.to_owned()).or_default();
        let before = instances.insert(
            instance.to_owned(),
            Instance {
                registration: registration.clone(),
                health: Health::Passing,
                revision,
            },
        );
        let before = before.map_or_else(Default::default, |i| RouteKey::all(&i.registration));
        let after = RouteKey::all(registration);
        ownership::change(
            &mut self.routes,
            (service, instance),
            &before,
            &after,
            revision,
        );
    }

    fn deregistered(&mut self, service: &str, instance: &str, revision: u64) {
        if let Some(instances) = self.services.get_mut(service) {
            if let Some(gone) = instances.remove(instance) {
                let before = RouteKey::all(&gone.registration);
                let after = std::collections::BTreeSet::new();
                ownership::change(
                    &mut self.routes,
                    (service, instance),
                    &before,
                    &after,
                    revision,
                );
            }
            if instances.is_empty() {
                self.services.remove(service);
            }
        }
    }

    /// The revision of the last applied event (`None` before the first).
    #[must_use]
    pub fn revision(&self) -> Option<u64> {
        self.revision
    }

    /// The revision of the last registry change: routes derived from the registry change
    /// only when this does.
    #[must_use]
    pub fn registry_revision(&self) -> Option<u64> {
        self.registry_revision
    }

    /// One instance.
    #[must_use]
    pub fn instance(&self, service: &str, instance: &str) -> Option<&Instance> {
        self.services.get(service)?.get(instance)
    }

    /// Every service with its instances, by name.
    pub fn services(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, Instance>)> {
        self.services.iter()
    }

    /// One service's instances.
    #[must_use]
    pub fn service(&self, service: &str) -> Option<&BTreeMap<String, Instance>> {
        self.services.get(service)
    }

    /// A key's metadata (its value is read from the log: see
    /// [`Blueprint::value`](crate::Blueprint::value)).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&KvMeta> {
        self.kv.get(key)
    }

    /// Up to `limit` keys starting with `prefix`, after `after` (exclusive), in key order.
    pub fn range<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> impl Iterator<Item = (&'a String, &'a KvMeta)> + 'a {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_owned()),
            None => std::ops::Bound::Included(prefix.to_owned()),
        };
        self.kv
            .range((start, std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .take(limit)
    }

    /// The revisions of every change of `key`, oldest first.
    #[must_use]
    pub fn history(&self, key: &str) -> &[u64] {
        self.history.get(key).map_or(&[], Vec::as_slice)
    }

    /// How many keys are held.
    #[must_use]
    pub fn kv_len(&self) -> usize {
        self.kv.len()
    }

    /// Bytes of every key and value held (values by their lengths).
    #[must_use]
    pub fn kv_bytes(&self) -> u64 {
        self.kv_bytes
    }

    /// Who owns each route.
    #[must_use]
    pub fn route_claims(&self) -> &RouteClaims {
        &self.routes
    }

    /// Derives route ownership from the registry for a checkpoint written before routes had
    /// owners (it has instances with routes, and no claims): instances claim in the order of
    /// their last registration, as replaying the log would have.
    pub(crate) fn fill_missing_claims(&mut self) {
        if !self.routes.is_empty() {
            return;
        }
        let mut instances: Vec<_> = self
            .instances()
            .filter(|(_, _, i)| !i.registration.routes.is_empty())
            .map(|(s, id, i)| {
                (
                    i.revision,
                    s.clone(),
                    id.clone(),
                    RouteKey::all(&i.registration),
                )
            })
            .collect();
        instances.sort();
        let none = std::collections::BTreeSet::new();
        for (revision, service, instance, keys) in instances {
            ownership::change(
                &mut self.routes,
                (&service, &instance),
                &none,
                &keys,
                revision,
            );
        }
    }

    /// The tokens made and not revoked.
    #[must_use]
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Every instance with its service, for lease bookkeeping.
    pub fn instances(&self) -> impl Iterator<Item = (&String, &String, &Instance)> {
        self.services
            .iter()
            .flat_map(|(s, is)| is.iter().map(move |(i, inst)| (s, i, inst)))
    }
}

#[cfg(test)]
mod tests;
