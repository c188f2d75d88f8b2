//! The route table: a pure function of the registry (`RouteTable::build`).
//!
//! Precedence (as Envoy picks a virtual host by name before a route within it): routes whose
//! host equals the request's host are considered first, host-less routes only if none of them
//! matches; among the candidates the longest prefix wins. Two services claiming the same host
//! and prefix is a conflict: the service first by name wins, deterministically, and the
//! conflict is reported in `GET /v1/routes`, never silently broken.

use std::collections::BTreeMap;
use std::time::Duration;

use draft_blueprint::Projection;
use draft_blueprint::wire::Health;
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
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// How long to wait for the upstream, in milliseconds.
    pub timeout_ms: u64,
    /// Its passing instances, by id (empty: the route answers 503).
    pub backends: Vec<Backend>,
    /// Other services that registered the same host and prefix and lost the tie.
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
            .into_values()
            .filter_map(|by_service| {
                let mut services = by_service.into_values();
                let mut winner = services.next()?;
                winner.conflicts = services.map(|e| e.service).collect();
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
    fn ties_are_deterministic_and_reported() {
        let table = RouteTable::build(&registry(&[
            ("zeta", "z1", vec![route("/same", None)]),
            ("alpha", "a1", vec![route("/same", None)]),
        ]));
        let entry = table.lookup(None, "/same").expect("route");
        assert_eq!(
            (entry.service.as_str(), entry.conflicts.clone()),
            ("alpha", vec!["zeta".to_owned()])
        );
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
