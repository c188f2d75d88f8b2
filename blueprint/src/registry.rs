//! Registry endpoints: register, heartbeat, deregister, list.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use draft_http::auth::{Action, Caller, Grant, Resource};
use draft_http::{Actor, ApiError, Code, Query};

use crate::applier::Outcome;
use crate::blueprint::Blueprint;
use crate::error::WriteError;
use crate::names::{InstanceId, Revision, ServiceName};
use crate::ownership::{RouteKey, TakeOver};
use crate::projection::Projection;
use crate::respond::{json, name_error, view, with_revision, write_error};
use crate::wire::{
    Health, InstanceInfo, Registration, Route, ServiceInfo, ServiceList, ServiceSummary,
};

/// The largest registration body.
const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// The shortest and longest lease.
const TTL_RANGE: std::ops::RangeInclusive<u64> = 100..=86_400_000;

/// Whether `address` is a `host:port` Fuse can dial: a DNS name or IPv4 address (letters,
/// digits, `.` and `-`) or an IPv6 address in brackets, then a port from 1 to 65535.
fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    port_ok && is_host(host)
}

/// Whether `host` is a DNS name or IPv4 address (letters, digits, `.` and `-`, at most 253
/// bytes) or an IPv6 address in brackets.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    }
}

/// The longest route prefix, in bytes.
const MAX_PREFIX_BYTES: usize = 1024;
/// The longest route timeout: a day, in milliseconds.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// A route Fuse can serve: a prefix that is a URL path (starts with `/`, visible ASCII, no
/// `?` or `#`), a host that is a host (a `:port` is allowed and ignored, as in `Host`
/// headers), and a timeout from 1 ms to a day.
fn check_route(route: &Route) -> Result<(), String> {
    let prefix = &route.prefix;
    let path_byte = |b: u8| b.is_ascii_graphic() && b != b'?' && b != b'#';
    if !prefix.starts_with('/') || prefix.len() > MAX_PREFIX_BYTES || !prefix.bytes().all(path_byte)
    {
        return Err(format!(
            "route prefix {prefix:?} must be a URL path: '/' then at most {MAX_PREFIX_BYTES} \
             bytes of visible ASCII without '?' or '#'"
        ));
    }
    if let Some(host) = &route.host
        && !(is_host(host) || is_host_port(host))
    {
        return Err(format!(
            "route host {host:?} must be a DNS name or an IP address (optionally with :port); \
             leave host out to match any host"
        ));
    }
    if let Some(timeout) = route.timeout_ms
        && !(1..=MAX_TIMEOUT_MS).contains(&timeout)
    {
        return Err(format!(
            "route timeout_ms {timeout} must be between 1 and {MAX_TIMEOUT_MS}"
        ));
    }
    Ok(())
}

fn check_registration(r: &Registration) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(Code::InvalidRegistration, m));
    if !is_host_port(&r.address) {
        return bad(format!(
            "address {:?} must be host:port: a DNS name, an IPv4 address or a bracketed IPv6 \
             address, then a port from 1 to 65535",
            r.address
        ));
    }
    if !TTL_RANGE.contains(&r.ttl_ms) {
        return bad(format!(
            "ttl_ms {} must be between 100 and 86400000",
            r.ttl_ms
        ));
    }
    for route in &r.routes {
        if let Err(message) = check_route(route) {
            return bad(message);
        }
    }
    Ok(())
}

/// What a route claims, as `routes.claim` patterns name it: `host/prefix`, or `prefix` for a
/// route on any host, normalized as ownership compares routes ([`RouteKey`]).
fn claim(route: &Route) -> String {
    RouteKey::of(route).claim_name()
}

/// `PUT /v1/services/{service}/instances/{instance}`. The node's authorization layer has
/// checked `services.register` on the service; each route is checked here as
/// `routes.claim`, since only the body names them.
pub(crate) async fn register(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
    actor: Actor,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let service = ServiceName::parse(&service).map_err(|e| name_error(&e))?;
    let instance = InstanceId::parse(&instance).map_err(|e| name_error(&e))?;
    let bytes = to_bytes(body, MAX_REGISTRATION_BYTES).await.map_err(|_| {
        ApiError::too_large(format!(
            "a registration is at most {MAX_REGISTRATION_BYTES} bytes"
        ))
    })?;
    let registration: Registration = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(Code::InvalidRegistration, format!("registration body: {e}")))?;
    check_registration(&registration)?;
    bp.config()
        .upstream
        .check_address(&registration.address)
        .await
        .map_err(|m| ApiError::new(Code::InvalidRegistration, m))?;
    for route in &registration.routes {
        caller.check(Action::RoutesClaim, &Resource::Name(&claim(route)))?;
    }
    let take_over = TakeOver::of(caller.0.as_ref().map(Grant::policy));
    let outcome = bp
        .register_taking(&service, &instance, registration, actor.name(), take_over)
        .await
        .map_err(|e| write_error(e, "the instance"))?;
    let (changed, revision) = match outcome {
        Outcome::Appended(rev) => (true, Some(rev)),
        Outcome::Unchanged => (false, bp.revision()),
    };
    let body = serde_json::json!({"service": service, "instance": instance, "changed": changed, "revision": revision});
    Ok(with_revision(json(StatusCode::OK, &body), revision))
}

/// `POST …/heartbeat`: 404 when the instance is unknown or its lease lapsed (register again),
/// 503 `storage_failed` once the node is read-only. A name the API refuses is an instance
/// that cannot be registered, so it is unknown too.
pub(crate) async fn heartbeat(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let names = ServiceName::parse(&service)
        .ok()
        .zip(InstanceId::parse(&instance).ok());
    let renewed = match names {
        Some((s, i)) => {
            let renewed = bp
                .heartbeat(&s, &i)
                .map_err(|e| write_error(e, "the instance"))?;
            // On a shared log the registration may have been written on another node a
            // moment ago: catch up before telling the instance to register again.
            if !renewed && bp.catch_up().await.is_ok() {
                bp.heartbeat(&s, &i)
                    .map_err(|e| write_error(e, "the instance"))?
            } else {
                renewed
            }
        }
        None => false,
    };
    if renewed {
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({"service": service, "instance": instance, "health": "passing"}),
        ))
    } else {
        Err(ApiError::new(
            Code::NotFound,
            format!(
                "{service}/{instance} is not registered (or its lease lapsed): register it again"
            ),
        ))
    }
}

/// `DELETE /v1/services/{service}/instances/{instance}`. A name the API refuses is an
/// instance that does not exist (404), as for any other unknown instance.
pub(crate) async fn deregister(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
    actor: Actor,
) -> Result<Response, ApiError> {
    let what = format!("instance {service}/{instance}");
    let (Ok(service), Ok(instance)) = (ServiceName::parse(&service), InstanceId::parse(&instance))
    else {
        return Err(write_error(WriteError::NotFound, &what));
    };
    let outcome = bp
        .deregister(&service, &instance, actor.name())
        .await
        .map_err(|e| write_error(e, &what))?;
    let revision = match outcome {
        Outcome::Appended(rev) => Some(rev),
        Outcome::Unchanged => bp.revision(),
    };
    Ok(with_revision(
        json(StatusCode::OK, &serde_json::json!({"revision": revision})),
        revision,
    ))
}

fn instance_info(p: &Projection, service: &str) -> Vec<InstanceInfo> {
    p.service(service)
        .map(|instances| {
            instances
                .iter()
                .map(|(id, i)| InstanceInfo {
                    service: service.to_owned(),
                    instance: id.clone(),
                    address: i.registration.address.clone(),
                    routes: i.registration.routes.clone(),
                    metadata: i.registration.metadata.clone(),
                    ttl_ms: i.registration.ttl_ms,
                    health: i.health,
                    revision: i.revision,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /v1/services[?at=]`.
pub(crate) async fn list(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["at", "min_revision"])?;
    let view = view(&bp, &q).await?;
    let services = view.with(|p| {
        p.services()
            .map(|(name, instances)| ServiceSummary {
                service: name.clone(),
                passing: instances
                    .values()
                    .filter(|i| i.health == Health::Passing)
                    .count(),
                critical: instances
                    .values()
                    .filter(|i| i.health == Health::Critical)
                    .count(),
            })
            .collect()
    });
    let revision = view.revision();
    Ok(with_revision(
        json(
            StatusCode::OK,
            &ServiceList {
                services,
                revision: revision.map(Revision::get),
            },
        ),
        revision,
    ))
}

/// `GET /v1/services/{service}[?at=]`.
pub(crate) async fn get(
    State(bp): State<Blueprint>,
    Path(service): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["at", "min_revision"])?;
    let view = view(&bp, &q).await?;
    let instances = view.with(|p| instance_info(p, &service));
    if instances.is_empty() {
        return Err(ApiError::new(
            Code::NotFound,
            format!("service {service:?} has no instances"),
        ));
    }
    let revision = view.revision();
    Ok(with_revision(
        json(
            StatusCode::OK,
            &ServiceInfo {
                service,
                instances,
                revision: revision.map(Revision::get),
            },
        ),
        revision,
    ))
}

#[cfg(test)]
mod tests {
    use super::{Route, check_route, is_host_port};

    #[test]
    fn addresses_are_host_and_port() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "api.internal-1.example:65535",
            "[::1]:9000",
            "[fe80::1]:80",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "",
            ":",
            "nowhere",
            "h:",
            ":80",
            "h:0",
            "h:65536",
            "h:+80",
            "h: 80",
            "::1:80",
            "[::1:80",
            "[nothost]:80",
            "host name:80",
            "http://h:80",
            "h/x:80",
        ] {
            assert!(!is_host_port(bad), "{bad:?}");
        }
    }

    fn route(prefix: &str, host: Option<&str>, timeout_ms: Option<u64>) -> Route {
        Route {
            prefix: prefix.to_owned(),
            host: host.map(str::to_owned),
            strip_prefix: false,
            timeout_ms,
        }
    }

    #[test]
    fn routes_are_paths_hosts_and_sane_timeouts() {
        for ok in [
            route("/", None, None),
            route("/api/v1", Some("api.example.com"), Some(1)),
            route("/a-b_c.d~e%20", Some("example.com:8080"), Some(86_400_000)),
            route("/x", Some("[::1]"), None),
        ] {
            assert_eq!(check_route(&ok), Ok(()), "{:?}", ok.prefix);
        }
        for bad in [
            route("api", None, None),
            route("", None, None),
            route("/a b", None, None),
            route("/a?b", None, None),
            route("/a#b", None, None),
            route("/\u{7}", None, None),
            route("/é", None, None),
            route(&format!("/{}", "a".repeat(1024)), None, None),
            route("/", Some(""), None),
            route("/", Some("bad host"), None),
            route("/", Some("http://h"), None),
            route("/", None, Some(0)),
            route("/", None, Some(86_400_001)),
        ] {
            assert!(
                check_route(&bad).is_err(),
                "{:?} {:?} {:?}",
                bad.prefix,
                bad.host,
                bad.timeout_ms
            );
        }
    }
}
