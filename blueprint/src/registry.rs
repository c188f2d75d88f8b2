//! Registry endpoints: register, heartbeat, deregister, list.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use draft_catalyst::ApiError;

use crate::api::{actor, json, query, view, with_revision, write_error};
use crate::applier::Outcome;
use crate::blueprint::Blueprint;
use crate::projection::Projection;
use crate::wire::{Health, InstanceInfo, Registration, ServiceInfo, ServiceList, ServiceSummary};

/// The largest registration body.
const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// The shortest and longest lease.
const TTL_RANGE: std::ops::RangeInclusive<u64> = 100..=86_400_000;

/// Service and instance names: `[A-Za-z0-9._-]{1,128}`.
fn name(kind: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "{kind} name {value:?} must be 1-128 of [A-Za-z0-9._-]"
        )))
    }
}

fn check_registration(r: &Registration) -> Result<(), ApiError> {
    let bad = |m: String| {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_registration",
            m,
        ))
    };
    if r.address.trim().is_empty() || !r.address.contains(':') {
        return bad(format!("address {:?} must be host:port", r.address));
    }
    if !TTL_RANGE.contains(&r.ttl_ms) {
        return bad(format!(
            "ttl_ms {} must be between 100 and 86400000",
            r.ttl_ms
        ));
    }
    if let Some(route) = r.routes.iter().find(|route| !route.prefix.starts_with('/')) {
        return bad(format!(
            "route prefix {:?} must start with '/'",
            route.prefix
        ));
    }
    Ok(())
}

/// `PUT /v1/services/{service}/instances/{instance}`.
pub(crate) async fn register(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    name("service", &service)?;
    name("instance", &instance)?;
    let bytes = to_bytes(body, MAX_REGISTRATION_BYTES).await.map_err(|_| {
        ApiError::too_large(format!(
            "a registration is at most {MAX_REGISTRATION_BYTES} bytes"
        ))
    })?;
    let registration: Registration = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_registration",
            format!("registration body: {e}"),
        )
    })?;
    check_registration(&registration)?;
    let outcome = bp
        .register(&service, &instance, registration, actor(&headers))
        .await
        .map_err(|e| write_error(e, "the instance"))?;
    let (changed, revision) = match outcome {
        Outcome::Appended(rev) => (true, Some(rev)),
        Outcome::Unchanged => (false, bp.revision()),
    };
    let body = serde_json::json!({"service": service, "instance": instance, "changed": changed, "revision": revision});
    Ok(with_revision(json(StatusCode::OK, &body), revision))
}

/// `POST …/heartbeat`: 404 when the instance is unknown or its lease lapsed (register again).
pub(crate) async fn heartbeat(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if bp.heartbeat(&service, &instance) {
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({"service": service, "instance": instance, "health": "passing"}),
        ))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "{service}/{instance} is not registered (or its lease lapsed): register it again"
            ),
        ))
    }
}

/// `DELETE /v1/services/{service}/instances/{instance}`.
pub(crate) async fn deregister(
    State(bp): State<Blueprint>,
    Path((service, instance)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let outcome = bp
        .deregister(&service, &instance, actor(&headers))
        .await
        .map_err(|e| write_error(e, &format!("instance {service}/{instance}")))?;
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
    let q = query(raw.as_deref(), &["at"])?;
    let view = view(&bp, q.get("at").map(String::as_str)).await?;
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
        json(StatusCode::OK, &ServiceList { services, revision }),
        revision,
    ))
}

/// `GET /v1/services/{service}[?at=]`.
pub(crate) async fn get(
    State(bp): State<Blueprint>,
    Path(service): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query(raw.as_deref(), &["at"])?;
    let view = view(&bp, q.get("at").map(String::as_str)).await?;
    let instances = view.with(|p| instance_info(p, &service));
    if instances.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
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
                revision,
            },
        ),
        revision,
    ))
}
