//! The route table: a pure function of the registry (`RouteTable::build`).
//!
//! Precedence (as Envoy picks a virtual host by name before a route within it): routes whose
//! host equals the request's host are considered first, host-less routes only if none of them
//! matches; among the candidates the longest prefix wins. A host and prefix is served by the
//! service that owns it (Blueprint's [`ownership`](draft_blueprint::ownership), which refuses
//! other services' claims): other services that list it anyway (registered before routes had
//! owners) are reported as conflicts in `GET /v1/routes` and get no traffic.

use std::collections::BTreeMap;
use std::time::Duration;

use draft_blueprint::wire::Health;
use draft_blueprint::{Projection, RouteKey};
use serde::{Deserialize, Serialize};

use crate::route::{normalize_host, prefix_matches};

/// The default upstream timeout of a route.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One upstream instance of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// The instance id.
    pub instance: String,
    /// Its `host:port`.
    pub address: String,
}

/// One route: where requests for a host and prefix go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The host it is limited to (normalized), if any.
    pub host: Option<String>,
    /// The path prefix.
    pub prefix: String,
    /// The service that serves it.
    pub service: String,
    /// The service that owns the route (see [`draft_blueprint::ownership`]): the one that
    /// serves it, unless the owner lists it only with another spelling (`/api/` for `/api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The revision since which the owner has owned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_since: Option<u64>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// How long to wait for the upstream, in milliseconds.
    pub timeout_ms: u64,
    /// Its passing instances, by id (empty: the route answers 503).
    pub backends: Vec<Backend>,
    /// Other services that list the same host and prefix and do not own it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
}

/// Every route, derived from the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// The registry revision the table was built from.
    pub revision: Option<u64>,
    /// The routes, by (host, prefix).
    pub routes: Vec<RouteEntry>,
}

impl RouteTable {
    /// Builds the table from the registry. Pure.
    #[must_use]
    pub fn build(state: &Projection) -> Self {
        // (host, prefix) -> service -> entry being built.
        let mut claims: BTreeMap<(Option<String>, String), BTreeMap<String, RouteEntry>> =
            BTreeMap::new();
        for (service, instance_id, instance) in state.instances() {
            for route in &instance.registration.routes {
                let host = route.host.as_deref().map(normalize_host);
                let entry = claims
                    .entry((host.clone(), route.prefix.clone()))
                    .or_default()
                    .entry(service.clone())
                    .or_insert_with(|| RouteEntry {
                        host,
                        prefix: route.prefix.clone(),
                        service: service.clone(),
                        owner: None,
                        owned_since: None,
                        strip_prefix: route.strip_prefix,
                        timeout_ms: route
                            .timeout_ms
                            .unwrap_or(DEFAULT_TIMEOUT.as_millis() as u64),
                        backends: Vec::new(),
                        conflicts: Vec::new(),
                    });
                if instance.health == Health::Passing {
                    entry.backends.push(Backend {
                        instance: instance_id.clone(),
                        address: instance.registration.address.clone(),
                    });
                }
            }
        }
        let routes = claims
            .into_iter()
            .filter_map(|((host, prefix), mut by_service)| {
                let key = RouteKey::of(&draft_blueprint::wire::Route {
                    prefix,
                    host,
                    strip_prefix: false,
                    timeout_ms: None,
                });
                let claim = state.route_claims().get(&key);
                let serves = claim
                    .map(|c| c.owner.clone())
                    .filter(|owner| by_service.contains_key(owner))
                    .or_else(|| by_service.keys().next().cloned())?;
                let mut winner = by_service.remove(&serves)?;
                winner.owner = claim.map(|c| c.owner.clone());
                winner.owned_since = claim.map(|c| c.since);
                winner.conflicts = by_service.into_keys().collect();
                Some(winner)
            })
            .collect();
        Self {
            revision: state.registry_revision(),
            routes,
        }
    }

    /// The route a request for `host` and `path` takes, if any.
    #[must_use]
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&RouteEntry> {
        let host = host.map(normalize_host);
        let longest = |with_host: bool| {
            self.routes
                .iter()
                .filter(|r| {
                    if with_host {
                        r.host.is_some() && r.host == host
                    } else {
                        r.host.is_none()
                    }
                })
                .filter(|r| prefix_matches(&r.prefix, path))
                .max_by_key(|r| r.prefix.len())
        };
        longest(true).or_else(|| longest(false))
    }

    /// Why a request for `host` and `path` takes the route it takes: every route, whether it
    /// is a candidate and why not, and the verdict. Uses the same rules as [`Self::lookup`].
    #[must_use]
    pub fn explain(&self, host: Option<&str>, path: &str) -> Explanation {
        let normalized = host.map(normalize_host);
        let chosen = self.lookup(host, path).cloned();
        let host_routes_match = self
            .routes
            .iter()
            .any(|r| r.host.is_some() && r.host == normalized && prefix_matches(&r.prefix, path));
        let considered = self
            .routes
            .iter()
            .map(|r| {
                let verdict = if r.host.is_some() && r.host != normalized {
                    "host differs".to_owned()
                } else if !prefix_matches(&r.prefix, path) {
                    "prefix does not match the path".to_owned()
                } else if r.host.is_none() && host_routes_match {
                    "a route for this host takes precedence".to_owned()
                } else if chosen
                    .as_ref()
                    .is_some_and(|c| c.host == r.host && c.prefix == r.prefix)
                {
                    if r.backends.is_empty() {
                        "chosen (no passing instance: 503)".to_owned()
                    } else {
                        "chosen (longest matching prefix)".to_owned()
                    }
                } else {
                    "a longer prefix matches".to_owned()
                };
                (r.host.clone(), r.prefix.clone(), r.service.clone(), verdict)
            })
            .collect();
        Explanation {
            host: normalized,
            path: path.to_owned(),
            chosen,
            considered,
        }
    }
}

/// The answer of [`RouteTable::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The request's host, normalized.
    pub host: Option<String>,
    /// The request's path.
    pub path: String,
    /// The route taken, if any (`None`: 404).
    pub chosen: Option<RouteEntry>,
    /// Every route: host, prefix, service, and why it was or was not taken.
    pub considered: Vec<(Option<String>, String, String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use draft_blueprint::wire::{Registration, Route};
    use draft_blueprint::{Applied, ControlEvent};
    use proptest::prelude::*;

    fn route(prefix: &str, host: Option<&str>) -> Route {
        Route {
            prefix: prefix.into(),
            host: host.map(Into::into),
            strip_prefix: false,
            timeout_ms: None,
        }
    }

    fn registry(instances: &[(&str, &str, Vec<Route>)]) -> Projection {
        let mut p = Projection::default();
        for (i, (service, instance, routes)) in instances.iter().enumerate() {
            p.apply(&Applied {
                revision: i as u64,
                time_nanos: 0,
                actor: "t".into(),
                event: ControlEvent::Registered {
                    service: (*service).into(),
                    instance: (*instance).into(),
                    registration: Registration {
                        address: format!("127.0.0.1:{}", 9000 + i),
                        routes: routes.clone(),
                        metadata: BTreeMap::new(),
                        ttl_ms: 1000,
                    },
                },
            });
        }
        p
    }

    #[test]
    fn longest_prefix_then_host_precedence() {
        let table = RouteTable::build(&registry(&[
            ("root", "r1", vec![route("/", None)]),
            ("api", "a1", vec![route("/api", None)]),
            ("api", "a2", vec![route("/api", None)]),
            ("users", "u1", vec![route("/api/users", None)]),
            ("tenant", "t1", vec![route("/", Some("Tenant.Example:443"))]),
        ]));
        let service =
            |host: Option<&str>, path: &str| table.lookup(host, path).map(|r| r.service.as_str());
        assert_eq!(service(None, "/api/users/7"), Some("users"));
        assert_eq!(service(None, "/api/orders"), Some("api"));
        assert_eq!(service(None, "/apiary"), Some("root"));
        assert_eq!(
            service(Some("tenant.example"), "/api/users"),
            Some("tenant"),
            "a host match wins"
        );
        assert_eq!(service(Some("other.example:80"), "/api"), Some("api"));
        let api = table.lookup(None, "/api").expect("api");
        let ids: Vec<_> = api.backends.iter().map(|b| b.instance.as_str()).collect();
        assert_eq!(ids, vec!["a1", "a2"], "instances pooled");
    }

    #[test]
    fn explain_gives_a_reason_for_every_route() {
        let table = RouteTable::build(&registry(&[
            ("root", "r1", vec![route("/", None)]),
            ("api", "a1", vec![route("/api", None)]),
            ("tenant", "t1", vec![route("/", Some("tenant.example"))]),
        ]));
        let e = table.explain(Some("shop.example"), "/api/x");
        assert_eq!(e.chosen.map(|c| c.service), Some("api".to_owned()));
        let reasons: Vec<_> = e
            .considered
            .iter()
            .map(|(_, p, s, why)| format!("{s}{p}: {why}"))
            .collect();
        assert!(
            reasons.contains(&"root/: a longer prefix matches".to_owned()),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"tenant/: host differs".to_owned()),
            "{reasons:?}"
        );
        let e = table.explain(Some("tenant.example"), "/api/x");
        assert_eq!(e.chosen.map(|c| c.service), Some("tenant".to_owned()));
        assert!(
            e.considered
                .iter()
                .any(|(_, _, s, why)| s == "api" && why.contains("takes precedence"))
        );
    }

    #[test]
    fn the_owner_serves_and_is_shown_and_other_listers_are_conflicts() {
        // Blueprint refuses the second claim now; a log written before routes had owners
        // (applied here directly) can still hold one: the later claimant took it over.
        let table = RouteTable::build(&registry(&[
            ("alpha", "a1", vec![route("/same", None)]),
            ("zeta", "z1", vec![route("/same", None)]),
            ("beta", "b1", vec![route("/mine/", None)]),
            ("beta", "b2", vec![route("/mine", None)]),
        ]));
        let entry = table.lookup(None, "/same").expect("route");
        assert_eq!(
            (
                entry.service.as_str(),
                entry.owner.as_deref(),
                entry.owned_since,
                entry.conflicts.clone()
            ),
            ("zeta", Some("zeta"), Some(1), vec!["alpha".to_owned()])
        );
        let mine: Vec<_> = table
            .routes
            .iter()
            .filter(|r| r.prefix.starts_with("/mine"))
            .map(|r| (r.prefix.as_str(), r.owner.as_deref(), r.owned_since))
            .collect();
        assert_eq!(
            mine,
            vec![
                ("/mine", Some("beta"), Some(2)),
                ("/mine/", Some("beta"), Some(2))
            ],
            "one route, two spellings"
        );
        let json = serde_json::to_value(&table).expect("json");
        assert_eq!(json["routes"][1]["owner"], "beta");
    }

    #[test]
    fn critical_instances_get_no_traffic_and_no_route_is_none() {
        let mut p = registry(&[("api", "a1", vec![route("/api", None)])]);
        p.apply(&Applied {
            revision: 10,
            time_nanos: 0,
            actor: "t".into(),
            event: ControlEvent::Expired {
                service: "api".into(),
                instance: "a1".into(),
                keeper_term: None,
            },
        });
        let table = RouteTable::build(&p);
        assert!(
            table
                .lookup(None, "/api")
                .expect("route kept")
                .backends
                .is_empty(),
            "503, not 404"
        );
        assert!(table.lookup(None, "/other").is_none());
        assert_eq!(table.revision, Some(10));
    }

    proptest! {
        #[test]
        fn the_longest_matching_prefix_wins(
            prefixes in proptest::collection::btree_set("(/[a-c]{1,2}){1,3}", 1..8),
            path in "(/[a-c]{1,2}){1,4}",
        ) {
            let routes: Vec<(String, String)> = prefixes.iter().enumerate().map(|(i, p)| (format!("s{i}"), p.clone())).collect();
            let instances: Vec<(&str, &str, Vec<Route>)> =
                routes.iter().map(|(s, p)| (s.as_str(), "i", vec![route(p, None)])).collect();
            let table = RouteTable::build(&registry(&instances));
            let expected = prefixes.iter().filter(|p| prefix_matches(p, &path)).max_by_key(|p| p.len());
            prop_assert_eq!(table.lookup(None, &path).map(|r| &r.prefix), expected);
        }
    }
}
