//! Route ownership: a route (a host and a path prefix) belongs to the service that claimed it
//! first, and a registration of another service that lists it is refused (409 `conflict`,
//! naming the owner) while the owner holds it. So a newcomer cannot take a route's traffic
//! by registering the same host and prefix.
//!
//! - **Who owns.** The first service with an instance listing the route. Routes are compared
//!   as [`RouteKey`]s: the host lowercased, without its port or a final dot, the prefix without
//!   trailing slashes (`/api/` is `/api`).
//! - **What releases it.** The owner holds the route while any of its instances lists it: a
//!   passing instance and a critical one alike (a lapsed lease, a crash, a restart does not
//!   hand the route to someone else). It is released when the owner's last such instance is
//!   deregistered or registers again without the route. If other services still list it
//!   then (registered before ownership existed, or allowed by the seam below), the first of
//!   them by name owns it next.
//! - **Take-overs.** [`may_take_over`] (in `take_over.rs`) decides whether a claimant may take
//!   a route its owner holds: only with an admin token, or a token whose policy names that
//!   route exactly under `routes.claim` (see [`TakeOver`]). A take-over makes the claimant
//!   the owner; the old owner's instances keep listing the route and show as conflicts,
//!   without traffic, and cannot take it back unless their own token names it too.
//!
//! The projection folds ownership from the registry's events ([`RouteClaims::change`]) and the
//! applier decides each registration against the projection plus the group's earlier writes
//! with the same function, so two concurrent claims of one route cannot both win.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::{Registration, Route};

mod take_over;

pub use self::take_over::{ClaimDecision, Claimant, TakeOver, may_take_over};

/// A host as routes compare it: trimmed, lowercased, without its port or a final dot
/// (`Example.com.:8080` → `example.com`; IPv6 literals keep their brackets: `[::1]:80` →
/// `[::1]`). Requests' `Host` headers are normalized the same way.
#[must_use]
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let without_dot = without_port.strip_suffix('.').unwrap_or(without_port);
    without_dot.to_ascii_lowercase()
}

/// A route as ownership sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    /// The host, normalized ([`normalize_host`]); `None`: any host.
    pub host: Option<String>,
    /// The prefix without trailing slashes (`/` stays `/`).
    pub prefix: String,
}

impl RouteKey {
    /// The key of `route`.
    #[must_use]
    pub fn of(route: &Route) -> Self {
        Self::new(route.host.as_deref(), &route.prefix)
    }

    /// The key of a route to `prefix` on `host` (`None`: any host), normalized.
    #[must_use]
    pub fn new(host: Option<&str>, prefix: &str) -> Self {
        let trimmed = prefix.trim_end_matches('/');
        Self {
            host: host.map(normalize_host),
            prefix: if trimmed.is_empty() { "/" } else { trimmed }.to_owned(),
        }
    }

    /// The name `routes.claim` patterns are matched against: `host/prefix`, or `prefix` for
    /// a route on any host (both normalized, so `SHOP.example.:443/api/` is
    /// `shop.example/api`).
    #[must_use]
    pub fn claim_name(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}{}", self.prefix),
            None => self.prefix.clone(),
        }
    }

    /// The keys of every route of `registration`.
    #[must_use]
    pub fn all(registration: &Registration) -> BTreeSet<Self> {
        registration.routes.iter().map(Self::of).collect()
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host}{}", self.prefix),
            None => write!(f, "{} (any host)", self.prefix),
        }
    }
}

/// Who holds a route, and which instances list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The service that owns the route (and gets its traffic).
    pub owner: String,
    /// The revision since which it has.
    pub since: u64,
    /// Every instance that lists the route, by service (the owner's among them).
    pub claimants: BTreeMap<String, BTreeSet<String>>,
}

impl Claim {
    /// The claim once `instance` of `service` lists the route, at `revision`. A claim owned by
    /// another service passes to `service`: the applier lets that happen only when
    /// [`may_take_over`] allows it.
    fn add(claim: Option<Self>, service: &str, instance: &str, revision: u64) -> Self {
        let mut claim = claim.unwrap_or_else(|| Self {
            owner: service.to_owned(),
            since: revision,
            claimants: BTreeMap::new(),
        });
        if claim.owner != service {
            service.clone_into(&mut claim.owner);
            claim.since = revision;
        }
        claim
            .claimants
            .entry(service.to_owned())
            .or_default()
            .insert(instance.to_owned());
        claim
    }

    /// The claim once `instance` of `service` no longer lists the route, at `revision`:
    /// `None` when no instance lists it any more.
    fn remove(mut self, service: &str, instance: &str, revision: u64) -> Option<Self> {
        if let Some(instances) = self.claimants.get_mut(service) {
            instances.remove(instance);
            if instances.is_empty() {
                self.claimants.remove(service);
            }
        }
        if !self.claimants.contains_key(&self.owner) {
            self.owner = self.claimants.keys().next()?.clone();
            self.since = revision;
        }
        Some(self)
    }
}

/// Where claims are read and written: the projection's [`RouteClaims`], or the applier's
/// view of them with a group's earlier writes over it.
pub(crate) trait ClaimStore {
    /// The claim on `key`.
    fn claim(&self, key: &RouteKey) -> Option<Claim>;
    /// Sets (or, with `None`, releases) the claim on `key`.
    fn set_claim(&mut self, key: &RouteKey, claim: Option<Claim>);
}

/// Applies one instance's change of routes: it listed `before` and lists `after` as of
/// `revision` (an empty `after`: it is gone). The one rule the projection and the applier
/// both follow.
pub(crate) fn change(
    store: &mut impl ClaimStore,
    (service, instance): (&str, &str),
    before: &BTreeSet<RouteKey>,
    after: &BTreeSet<RouteKey>,
    revision: u64,
) {
    for key in before.difference(after) {
        let claim = store
            .claim(key)
            .and_then(|c| c.remove(service, instance, revision));
        store.set_claim(key, claim);
    }
    for key in after {
        let claim = Claim::add(store.claim(key), service, instance, revision);
        store.set_claim(key, Some(claim));
    }
}

/// Every claimed route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(RouteKey, Claim)>", into = "Vec<(RouteKey, Claim)>")]
pub struct RouteClaims(BTreeMap<RouteKey, Claim>);

impl RouteClaims {
    /// The claim on `key`.
    #[must_use]
    pub fn get(&self, key: &RouteKey) -> Option<&Claim> {
        self.0.get(key)
    }

    /// Every claim, by route.
    pub fn iter(&self) -> impl Iterator<Item = (&RouteKey, &Claim)> {
        self.0.iter()
    }

    /// Whether no route is claimed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ClaimStore for RouteClaims {
    fn claim(&self, key: &RouteKey) -> Option<Claim> {
        self.0.get(key).cloned()
    }

    fn set_claim(&mut self, key: &RouteKey, claim: Option<Claim>) {
        match claim {
            Some(c) => self.0.insert(key.clone(), c),
            None => self.0.remove(key),
        };
    }
}

// JSON objects need string keys: checkpoints hold the claims as a list of pairs.
impl From<Vec<(RouteKey, Claim)>> for RouteClaims {
    fn from(pairs: Vec<(RouteKey, Claim)>) -> Self {
        Self(pairs.into_iter().collect())
    }
}

impl From<RouteClaims> for Vec<(RouteKey, Claim)> {
    fn from(claims: RouteClaims) -> Self {
        claims.0.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
