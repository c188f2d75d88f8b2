//! Every endpoint of the node's API, and how it is authorized: open, or exactly one
//! [`Action`] on a resource taken from the request. The layer in `auth.rs` looks each request
//! up here by its route; a route that is not here is refused (500), so an endpoint cannot be
//! added without a decision, and a test walks the OpenAPI document against this table.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::http::Method;
use draft_http::auth::Action;

/// Where an action's resource comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Everything of its kind (a list).
    All,
    /// The path parameter of this name.
    Param(&'static str),
    /// The `{*key}` path parameter, without a trailing `/history`.
    Key,
    /// The `prefix` query parameter (default: everything), as a prefix.
    Prefix,
}

/// How an endpoint is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Without a token, even when tokens are checked: probes and the API document.
    Open,
    /// This action on this resource.
    Check(Action, Target),
}

/// One endpoint: a method and a route as the router spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) method: &'static str,
    pub(crate) route: &'static str,
    pub(crate) rule: Rule,
}

const fn check(
    method: &'static str,
    route: &'static str,
    action: Action,
    target: Target,
) -> Endpoint {
    Endpoint {
        method,
        route,
        rule: Rule::Check(action, target),
    }
}

const fn open(route: &'static str) -> Endpoint {
    Endpoint {
        method: "GET",
        route,
        rule: Rule::Open,
    }
}

use Action as A;
use Target::{All, Key, Param, Prefix};

const CHANNEL: Target = Param("channel");
const SERVICE: Target = Param("service");

/// The table.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    // Catalyst.
    check("GET", "/v1/channels", A::ChannelsList, All),
    check("GET", "/v1/channels/{channel}", A::ChannelsRead, CHANNEL),
    check(
        "PUT",
        "/v1/channels/{channel}",
        A::ChannelsConfigure,
        CHANNEL,
    ),
    check(
        "POST",
        "/v1/channels/{channel}/events",
        A::ChannelsProduce,
        CHANNEL,
    ),
    check(
        "GET",
        "/v1/channels/{channel}/events",
        A::ChannelsRead,
        CHANNEL,
    ),
    check(
        "GET",
        "/v1/channels/{channel}/produce",
        A::ChannelsProduce,
        CHANNEL,
    ),
    check(
        "GET",
        "/v1/channels/{channel}/consume",
        A::ChannelsRead,
        CHANNEL,
    ),
    check("GET", "/v1/groups", A::ChannelsList, All),
    check(
        "GET",
        "/v1/channels/{channel}/groups",
        A::ChannelsRead,
        CHANNEL,
    ),
    check(
        "GET",
        "/v1/channels/{channel}/groups/{group}",
        A::ChannelsRead,
        CHANNEL,
    ),
    check(
        "DELETE",
        "/v1/channels/{channel}/groups/{group}",
        A::GroupsDelete,
        CHANNEL,
    ),
    // Blueprint: the registry (a registration's routes are checked as routes.claim by the
    // handler, which has read them).
    check("GET", "/v1/services", A::ServicesRead, All),
    check("GET", "/v1/services/{service}", A::ServicesRead, SERVICE),
    check(
        "PUT",
        "/v1/services/{service}/instances/{instance}",
        A::ServicesRegister,
        SERVICE,
    ),
    check(
        "DELETE",
        "/v1/services/{service}/instances/{instance}",
        A::ServicesRegister,
        SERVICE,
    ),
    check(
        "POST",
        "/v1/services/{service}/instances/{instance}/heartbeat",
        A::ServicesRegister,
        SERVICE,
    ),
    // Blueprint: KV (and its history, `/v1/kv/{key}/history`, which is the same route).
    check("GET", "/v1/kv", A::KvRead, Prefix),
    check("GET", "/v1/kv/{*key}", A::KvRead, Key),
    check("PUT", "/v1/kv/{*key}", A::KvWrite, Key),
    check("DELETE", "/v1/kv/{*key}", A::KvWrite, Key),
    check("GET", "/v1/watch", A::KvRead, Prefix),
    // Blueprint: tokens.
    check("GET", "/v1/tokens", A::TokensRead, All),
    check("POST", "/v1/tokens", A::TokensManage, All),
    check(
        "DELETE",
        "/v1/tokens/{name}",
        A::TokensManage,
        Param("name"),
    ),
    // Fuse.
    check("GET", "/v1/routes", A::RoutesRead, All),
    // Operations: probes stay open (a load balancer has no token); numbers need one.
    open("/healthz"),
    open("/readyz"),
    open("/v1/openapi.json"),
    check("GET", "/metrics", A::NodeRead, All),
    check("GET", "/v1/status", A::NodeRead, All),
];

/// What the table says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The endpoint.
    Found(&'static Endpoint),
    /// The route is known but not with this method: the router answers 405.
    OtherMethod,
    /// The route is not in the table: an endpoint without a decision.
    Unknown,
}

/// The table by method and route, and the routes it knows.
struct Index {
    by_method_and_route: HashMap<(&'static str, &'static str), &'static Endpoint>,
    routes: HashSet<&'static str>,
}

/// Built once: every request is looked up (a hash of two short strings, not a scan).
static INDEX: LazyLock<Index> = LazyLock::new(|| Index {
    by_method_and_route: ENDPOINTS.iter().map(|e| ((e.method, e.route), e)).collect(),
    routes: ENDPOINTS.iter().map(|e| e.route).collect(),
});

/// The table's entry for `method` on `route` (HEAD is GET, as the router serves it).
pub(crate) fn lookup(method: &Method, route: &str) -> Lookup {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    match INDEX.by_method_and_route.get(&(method, route)) {
        Some(endpoint) => Lookup::Found(endpoint),
        None if INDEX.routes.contains(route) => Lookup::OtherMethod,
        None => Lookup::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The route that serves a documented path: `{key}` is the router's `{*key}`, which also
    /// serves `…/{key}/history`.
    fn route_of(path: &str) -> String {
        match path.find("{key}") {
            Some(i) => format!("{}{{*key}}", &path[..i]),
            None => path.to_owned(),
        }
    }

    /// Every operation of the OpenAPI document has exactly one entry, and every entry is
    /// documented: a new endpoint without an authorization decision fails here.
    #[test]
    fn every_documented_operation_has_exactly_one_entry_and_no_entry_is_undocumented() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("JSON");
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                if method == "parameters" {
                    continue;
                }
                let method = method.to_ascii_uppercase();
                let route = route_of(path);
                let found = ENDPOINTS
                    .iter()
                    .filter(|e| e.method == method && e.route == route)
                    .count();
                assert_eq!(found, 1, "{method} {path}: {found} entries");
                documented.insert((method, route));
            }
        }
        for e in ENDPOINTS {
            assert!(
                documented.contains(&(e.method.to_owned(), e.route.to_owned())),
                "{} {} is in the table but not in the OpenAPI document",
                e.method,
                e.route
            );
        }
    }

    /// The document says which operations are open: exactly those with `security: []`.
    #[test]
    fn the_document_marks_exactly_the_open_endpoints_as_needing_no_token() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("JSON");
        // Bearer, or nothing on a node with auth off.
        assert_eq!(doc["security"], serde_json::json!([{"bearer": []}, {}]));
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                if method == "parameters" {
                    continue;
                }
                let entry = lookup(
                    &method.to_ascii_uppercase().parse().expect("method"),
                    &route_of(path),
                );
                let Lookup::Found(entry) = entry else {
                    panic!("{method} {path}: {entry:?}")
                };
                let open = op.get("security") == Some(&serde_json::json!([]));
                assert_eq!(open, entry.rule == Rule::Open, "{method} {path}");
                if !open {
                    for status in ["401", "403"] {
                        assert!(
                            op["responses"].get(status).is_some(),
                            "{method} {path}: no {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lookups_by_method_and_route() {
        let mut seen = BTreeSet::new();
        for e in ENDPOINTS {
            assert!(
                seen.insert((e.method, e.route)),
                "{} {} twice",
                e.method,
                e.route
            );
            assert_eq!(
                lookup(&e.method.parse().expect("method"), e.route),
                Lookup::Found(e)
            );
        }
        assert!(matches!(
            lookup(&Method::HEAD, "/v1/status"),
            Lookup::Found(Endpoint {
                rule: Rule::Check(A::NodeRead, All),
                ..
            })
        ));
        assert_eq!(lookup(&Method::PATCH, "/v1/status"), Lookup::OtherMethod);
        assert_eq!(lookup(&Method::GET, "/v1/new-thing"), Lookup::Unknown);
    }
}
