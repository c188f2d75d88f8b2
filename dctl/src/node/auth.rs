//! The authorization layer of the node's API: every request is looked up in the table of
//! endpoints (`auth/endpoints.rs`) by its route; an open endpoint passes, any other needs a
//! valid token whose policy allows the endpoint's action on its resource. The token's grant
//! and actor go into the request for the handlers (`draftactor`, route claims).
//!
//! - no token, or one that is not valid: 401 `unauthenticated` with `WWW-Authenticate:
//!   Bearer` (the message does not say whether the token was unknown, revoked or expired);
//! - a token whose policy does not allow it: 403 `forbidden` naming the action and resource;
//! - a route the table does not know: 500, in every mode (an endpoint without a decision is a
//!   bug, and the test of the table against the OpenAPI document catches it first).
//!
//! With auth off every request passes as `anonymous`; the `access_token` parameter of a
//! WebSocket upgrade is taken out of the URI in both modes.

mod bootstrap;
mod endpoints;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use draft_blueprint::Blueprint;
use draft_http::auth::{Credential, Resource, take_credential};
use draft_http::{ApiError, Code};

pub(crate) use self::bootstrap::ensure_admin;
use self::endpoints::{Lookup, Rule, Target};

/// What the layer needs: whether tokens are checked, and where they are.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) enabled: bool,
    pub(crate) blueprint: Blueprint,
}

/// An action's resource, owned (taken from the request, which the handler gets after).
enum Owned {
    All,
    Name(String),
    Prefix(String),
}

impl Owned {
    fn borrow(&self) -> Resource<'_> {
        match self {
            Self::All => Resource::All,
            Self::Name(n) => Resource::Name(n),
            Self::Prefix(p) => Resource::Prefix(p),
        }
    }
}

/// The path parameter `name` of the request's route, percent-decoded as handlers get it.
async fn path_param(parts: &mut Parts, name: &str) -> String {
    match RawPathParams::from_request_parts(parts, &()).await {
        Ok(params) => params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The resource of `target` in the request.
async fn resource(parts: &mut Parts, target: Target) -> Owned {
    match target {
        Target::All => Owned::All,
        Target::Param(name) => Owned::Name(path_param(parts, name).await),
        Target::Key => {
            let key = path_param(parts, "key").await;
            Owned::Name(key.strip_suffix("/history").unwrap_or(&key).to_owned())
        }
        Target::Prefix => {
            let prefix = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "prefix")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            Owned::Prefix(prefix)
        }
    }
}

/// The 401 for a request without a valid token.
fn unauthenticated(credential: &Credential) -> ApiError {
    ApiError::unauthenticated(match credential {
        Credential::Missing => {
            "this node checks tokens: send Authorization: Bearer <token> (or, on a WebSocket \
             upgrade, ?access_token=<token>)"
        }
        Credential::Malformed => "the Authorization header must be Bearer <token>",
        Credential::Bearer(_) => "the token is not valid: it is unknown, revoked or expired",
    })
}

/// The layer (`axum::middleware::from_fn_with_state(guard, check)` on the whole API).
pub(crate) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let credential = take_credential(&mut parts);
    // No route: the fallback's 404, which says nothing but that there is no such endpoint.
    let Some(route) = parts.extensions.get::<MatchedPath>().cloned() else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let rule = match endpoints::lookup(&parts.method, route.as_str()) {
        Lookup::Found(endpoint) => endpoint.rule,
        Lookup::OtherMethod => return next.run(Request::from_parts(parts, body)).await,
        Lookup::Unknown => {
            return ApiError::internal(
                Code::Internal,
                "this endpoint has no authorization decision",
                format!(
                    "{} is not in the table of dctl/src/node/auth/endpoints.rs",
                    route.as_str()
                ),
            )
            .into_response();
        }
    };
    let Rule::Check(action, target) = rule else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    if !guard.enabled {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let grant = match &credential {
        Credential::Bearer(secret) => guard.blueprint.authenticate(secret),
        Credential::Missing | Credential::Malformed => None,
    };
    let Some(grant) = grant else {
        return unauthenticated(&credential).into_response();
    };
    let resource = resource(&mut parts, target).await;
    if let Err(e) = grant.check(action, &resource.borrow()) {
        return e.into_response();
    }
    parts.extensions.insert(grant.actor().clone());
    parts.extensions.insert(grant);
    next.run(Request::from_parts(parts, body)).await
}
