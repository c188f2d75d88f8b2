//! Whether a registration may take a route another service owns.
//!
//! Listing a route at all needs `routes.claim` on it (the HTTP edge checks that, pattern by
//! pattern). Taking a route *from its owner* needs more, or the default `service` policy
//! would let any service whose name starts like another's take its traffic (`pay`'s
//! `/pay*` matches `/payments`). So a take-over needs one of:
//! - an **admin** token;
//! - a policy whose `routes.claim` **names the route exactly** (a pattern without `*`,
//!   compared as a [`RouteKey`]: `shop.example/` or `/orders`). An admin writes such a
//!   policy to hand a route over on purpose (a blue/green switch to `orders-v2`).
//!
//! With auth off there are no tokens, and no take-over: ownership still stops one service
//! from taking another's traffic by accident.

use std::collections::BTreeSet;

use draft_http::auth::{Permission, Policy};

use super::RouteKey;

/// What a registration's token lets it take from a route's owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TakeOver {
    /// Nothing: auth is off, or the policy names no route exactly.
    #[default]
    Nothing,
    /// Any route: an admin token.
    Any,
    /// The routes the policy's `routes.claim` names exactly.
    Named(BTreeSet<RouteKey>),
}

impl TakeOver {
    /// What `policy` (the request's token's; `None` when auth is off) lets a registration
    /// take over.
    #[must_use]
    pub fn of(policy: Option<&Policy>) -> Self {
        match policy {
            None | Some(Policy::Reader) => Self::Nothing,
            Some(Policy::Admin) => Self::Any,
            Some(Policy::Service(scopes)) => {
                let named: BTreeSet<RouteKey> = scopes
                    .patterns(Permission::RoutesClaim)
                    .iter()
                    .filter_map(|p| exact_route(p.as_str()))
                    .collect();
                if named.is_empty() {
                    Self::Nothing
                } else {
                    Self::Named(named)
                }
            }
        }
    }

    /// Whether these rights cover `route`.
    #[must_use]
    pub fn covers(&self, route: &RouteKey) -> bool {
        match self {
            Self::Nothing => false,
            Self::Any => true,
            Self::Named(routes) => routes.contains(route),
        }
    }
}

/// The route an exact `routes.claim` pattern names (`/orders`, `shop.example/api`), or
/// `None` for a `prefix*` pattern or one that names no path.
fn exact_route(pattern: &str) -> Option<RouteKey> {
    if pattern.ends_with('*') {
        return None;
    }
    match pattern.find('/')? {
        0 => Some(RouteKey::new(None, pattern)),
        at => Some(RouteKey::new(Some(&pattern[..at]), &pattern[at..])),
    }
}

/// Who is claiming a route: the service, who asked for the registration, and what their
/// token lets them take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// The service whose instance lists the route.
    pub service: &'a str,
    /// Who registered it (the request's actor).
    pub actor: &'a str,
    /// What the actor's token lets it take from another owner.
    pub rights: &'a TakeOver,
}

/// Whether a claimant may take a route from its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimDecision {
    /// It may: it becomes the owner.
    Allow,
    /// It may not: the registration is refused with 409, naming the owner.
    Deny,
}

/// Whether `claimant` may take `route`, which `owner` holds: yes if it is the owner, else
/// only if its rights cover the route (see the module's documentation). Pure, and called by the applier inside the
/// writer, so its answer is exact against concurrent registrations.
#[must_use]
pub fn may_take_over(claimant: &Claimant<'_>, route: &RouteKey, owner: &str) -> ClaimDecision {
    if claimant.service == owner || claimant.rights.covers(route) {
        ClaimDecision::Allow
    } else {
        ClaimDecision::Deny
    }
}
