//! The registry and KV store as a pure fold over the control events: `apply` is the only way
//! state changes, so any state (now, or as of any revision) is rebuilt by replaying the log.
//! No I/O here; tested by feeding events.

mod tokens;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// A key's current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvValue {
    /// The bytes.
    #[serde(with = "bytes_base64")]
    pub value: Vec<u8>,
    /// The revision of its last put.
    pub revision: u64,
    /// The revision that created it (since its last delete).
    pub create_revision: u64,
    /// When it was last put (unix nanos).
    pub time_nanos: u64,
    /// Who last put it.
    pub actor: String,
}

/// The state of the control plane as of `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    revision: Option<u64>,
    /// The revision of the last registry change (registration, deregistration, expiry).
    #[serde(default)]
    registry_revision: Option<u64>,
    services: BTreeMap<String, BTreeMap<String, Instance>>,
    kv: BTreeMap<String, KvValue>,
    /// The revisions of every change of every key ever written (deleted keys included).
    history: BTreeMap<String, Vec<u64>>,
    /// Who owns each route (see [`ownership`]). Absent from checkpoints written before
    /// routes had owners: [`Projection::fill_missing_claims`] derives it then.
    #[serde(default)]
    routes: RouteClaims,
    /// Tokens made and not revoked.
    #[serde(default)]
    tokens: Tokens,
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
            ControlEvent::Expired { service, instance } => {
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
                self.kv.insert(
                    key.clone(),
                    KvValue {
                        value: value.clone(),
                        revision,
                        create_revision,
                        time_nanos: applied.time_nanos,
                        actor: applied.actor.clone(),
                    },
                );
                self.history.entry(key.clone()).or_default().push(revision);
            }
            ControlEvent::KvDeleted { key } => {
                self.kv.remove(key);
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

    /// A key's value.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&KvValue> {
        self.kv.get(key)
    }

    /// Up to `limit` keys starting with `prefix`, after `after` (exclusive), in key order.
    pub fn range<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> impl Iterator<Item = (&'a String, &'a KvValue)> + 'a {
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

/// Checkpoints store values as base64 strings rather than arrays of numbers.
mod bytes_base64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::wire::base64_encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        crate::wire::base64_decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(revision: u64, event: ControlEvent) -> Applied {
        Applied {
            revision,
            time_nanos: revision * 10,
            actor: "tester".into(),
            event,
        }
    }

    fn registered(service: &str, instance: &str, address: &str) -> ControlEvent {
        ControlEvent::Registered {
            service: service.into(),
            instance: instance.into(),
            registration: Registration {
                address: address.into(),
                routes: vec![],
                metadata: BTreeMap::new(),
                ttl_ms: 1000,
            },
        }
    }

    fn put(key: &str, value: &str) -> ControlEvent {
        ControlEvent::KvPut {
            key: key.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn registration_expiry_and_deregistration() {
        let mut p = Projection::default();
        p.apply(&at(0, registered("web", "w1", "a:1")));
        p.apply(&at(1, registered("web", "w2", "a:2")));
        assert_eq!(
            p.instance("web", "w1").map(|i| i.health),
            Some(Health::Passing)
        );
        p.apply(&at(
            2,
            ControlEvent::Expired {
                service: "web".into(),
                instance: "w1".into(),
            },
        ));
        let w1 = p.instance("web", "w1").expect("kept while critical");
        assert_eq!((w1.health, w1.revision), (Health::Critical, 2));
        p.apply(&at(3, registered("web", "w1", "a:9")));
        let w1 = p.instance("web", "w1").expect("re-registered");
        assert_eq!(
            (w1.health, w1.registration.address.as_str()),
            (Health::Passing, "a:9")
        );
        p.apply(&at(
            4,
            ControlEvent::Deregistered {
                service: "web".into(),
                instance: "w1".into(),
            },
        ));
        p.apply(&at(
            5,
            ControlEvent::Deregistered {
                service: "web".into(),
                instance: "w2".into(),
            },
        ));
        assert!(
            p.service("web").is_none(),
            "a service with no instances is gone"
        );
        p.apply(&at(
            6,
            ControlEvent::Expired {
                service: "nope".into(),
                instance: "x".into(),
            },
        ));
        assert_eq!(p.revision(), Some(6));
    }

    #[test]
    fn routes_are_owned_and_checkpoints_from_before_owners_get_them_back() {
        let mut p = Projection::default();
        let mut web = registered("web", "w1", "a:1");
        if let ControlEvent::Registered { registration, .. } = &mut web {
            registration.routes = vec![crate::wire::Route {
                prefix: "/api/".into(),
                host: None,
                strip_prefix: false,
                timeout_ms: None,
            }];
        }
        p.apply(&at(0, web));
        p.apply(&at(1, put("k", "v")));
        let key = RouteKey {
            host: None,
            prefix: "/api".into(),
        };
        assert_eq!(
            p.route_claims()
                .get(&key)
                .map(|c| (c.owner.as_str(), c.since)),
            Some(("web", 0))
        );
        let mut old = serde_json::to_value(&p).expect("json");
        old.as_object_mut().expect("object").remove("routes");
        let mut old: Projection = serde_json::from_value(old).expect("an old checkpoint");
        assert!(old.route_claims().is_empty());
        old.fill_missing_claims();
        assert_eq!(old, p);
        p.apply(&at(
            2,
            ControlEvent::Deregistered {
                service: "web".into(),
                instance: "w1".into(),
            },
        ));
        assert!(
            p.route_claims().is_empty(),
            "released with the last instance"
        );
    }

    #[test]
    fn kv_revisions_history_and_ranges() {
        let mut p = Projection::default();
        p.apply(&at(0, put("app/a", "1")));
        p.apply(&at(1, put("app/b", "2")));
        p.apply(&at(2, put("app/a", "3")));
        p.apply(&at(3, put("other", "x")));
        let a = p.get("app/a").expect("a");
        assert_eq!(
            (a.value.as_slice(), a.revision, a.create_revision),
            (&b"3"[..], 2, 0)
        );
        p.apply(&at(
            4,
            ControlEvent::KvDeleted {
                key: "app/a".into(),
            },
        ));
        assert!(p.get("app/a").is_none());
        assert_eq!(p.history("app/a"), &[0, 2, 4]);
        p.apply(&at(5, put("app/a", "new")));
        assert_eq!(
            p.get("app/a").map(|v| v.create_revision),
            Some(5),
            "recreated"
        );
        let keys: Vec<_> = p.range("app/", None, 10).map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["app/a", "app/b"]);
        let keys: Vec<_> = p
            .range("app/", Some("app/a"), 10)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, vec!["app/b"]);
        assert_eq!(p.range("", None, 1).count(), 1);
    }

    #[test]
    fn tokens_come_and_go_with_their_events_and_leave_the_registry_alone() {
        let mut p = Projection::default();
        p.apply(&at(0, registered("web", "w1", "a:1")));
        p.apply(&at(
            1,
            ControlEvent::TokenCreated {
                name: "ci".into(),
                secret_sha256: "ab".repeat(32),
                policy: draft_http::auth::Policy::Reader,
                expires_at_nanos: None,
                creator: "admin".into(),
            },
        ));
        assert_eq!(p.registry_revision(), Some(0), "routes need no rebuild");
        let (name, token) = p.tokens().by_digest(&"ab".repeat(32)).expect("found");
        assert_eq!((name, token.revision, token.created_nanos), ("ci", 1, 10));
        let snapshot: Projection =
            serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("back");
        assert_eq!(snapshot, p, "checkpoints keep tokens");
        p.apply(&at(2, ControlEvent::TokenRevoked { name: "ci".into() }));
        assert!(p.tokens().get("ci").is_none());
        assert_eq!(p.revision(), Some(2));
    }

    #[test]
    fn replaying_applied_events_changes_nothing_and_order_matters() {
        let events: Vec<Applied> = (0..20)
            .map(|i| {
                at(
                    i,
                    if i % 3 == 0 {
                        put("k", &i.to_string())
                    } else {
                        registered("s", &format!("i{}", i % 4), "a")
                    },
                )
            })
            .collect();
        let mut once = Projection::default();
        for e in &events {
            once.apply(e);
        }
        let mut twice = once.clone();
        for e in &events {
            twice.apply(e);
        }
        assert_eq!(once, twice, "idempotent");
        let snapshot: Projection =
            serde_json::from_str(&serde_json::to_string(&once).expect("json")).expect("back");
        assert_eq!(snapshot, once, "checkpoints round trip");
        assert_eq!(
            once.get("k").map(|v| v.value.clone()),
            Some(b"18".to_vec()),
            "last write wins"
        );
    }
}
