//! Token endpoints: `POST /v1/tokens` (the secret, shown once), `GET /v1/tokens[?at=]`
//! (never secrets), `DELETE /v1/tokens/{name}`. Who may call them is the node's
//! authorization layer's business (`tokens.manage`, `tokens.read`).

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use draft_http::auth::Policy;
use draft_http::{Actor, ApiError, Code, Query, rfc3339};

use crate::blueprint::Blueprint;
use crate::names::{Revision, TokenName};
use crate::projection::Projection;
use crate::respond::{json, name_error, view, with_revision, write_error};
use crate::tokens::now_nanos;
use crate::wire::{CreatedToken, MAX_TOKEN_SECS, NewToken, TokenInfo, TokenList};

/// The largest body of `POST /v1/tokens`.
const MAX_BODY_BYTES: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidPolicy, message)
}

/// The name, policy and expiry (unix nanos) a creation asks for, checked.
fn checked(new: NewToken, now: u64) -> Result<(TokenName, Policy, Option<u64>), ApiError> {
    let name = TokenName::parse(&new.name).map_err(|e| invalid(e.to_string()))?;
    let policy = match (new.role, new.policy) {
        (Some(role), None) => Policy::of_role(role, &name).map_err(|e| invalid(e.to_string()))?,
        (None, Some(policy)) => policy,
        _ => return Err(invalid("give exactly one of role and policy")),
    };
    let expires = match new.expires_in_secs {
        None => None,
        Some(secs @ 1..=MAX_TOKEN_SECS) => Some(now + secs * 1_000_000_000),
        Some(secs) => {
            return Err(invalid(format!(
                "expires_in_secs {secs} must be 1 to {MAX_TOKEN_SECS} (ten years)"
            )));
        }
    };
    Ok((name, policy, expires))
}

/// `POST /v1/tokens`: 201 with the secret, which is never shown again.
pub(crate) async fn create(
    State(bp): State<Blueprint>,
    actor: Actor,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::too_large(format!("a token request is at most {MAX_BODY_BYTES} bytes"))
    })?;
    let new: NewToken =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("token request: {e}")))?;
    let (name, policy, expires) = checked(new, now_nanos())?;
    let made = bp
        .create_token(&name, policy.clone(), expires, actor.name())
        .await
        .map_err(|e| write_error(e, &format!("a token named {name:?}")))?;
    let body = CreatedToken {
        name: name.to_string(),
        token: made.secret.expose().to_owned(),
        policy,
        expires_at: expires.map(rfc3339),
        revision: made.revision.get(),
    };
    Ok(with_revision(
        json(StatusCode::CREATED, &body),
        Some(made.revision),
    ))
}

/// Every token of `state`, as listed (`expired` as of now).
fn list_of(state: &Projection) -> TokenList {
    let now = now_nanos();
    let tokens = state
        .tokens()
        .iter()
        .map(|(name, t)| TokenInfo {
            name: name.clone(),
            policy: t.policy.clone(),
            creator: t.creator.clone(),
            created: rfc3339(t.created_nanos),
            expires_at: t.expires_at_nanos.map(rfc3339),
            expired: !t.is_live_at(now),
            revision: t.revision,
        })
        .collect();
    TokenList {
        tokens,
        revision: state.revision(),
    }
}

/// `GET /v1/tokens[?at=]`.
pub(crate) async fn list(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["at", "min_revision"])?;
    let view = view(&bp, &q).await?;
    let list = view.with(list_of);
    Ok(with_revision(json(StatusCode::OK, &list), view.revision()))
}

/// `DELETE /v1/tokens/{name}`: 200 with the revocation's revision; 404 if there is no such
/// token.
pub(crate) async fn revoke(
    State(bp): State<Blueprint>,
    Path(name): Path<String>,
    actor: Actor,
) -> Result<Response, ApiError> {
    let name = TokenName::parse(&name).map_err(|e| name_error(&e))?;
    let revision: Revision = bp
        .revoke_token(&name, actor.name())
        .await
        .map_err(|e| write_error(e, &format!("token {name:?}")))?;
    let body = serde_json::json!({"name": name, "revision": revision});
    Ok(with_revision(json(StatusCode::OK, &body), Some(revision)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use draft_http::auth::Role;

    fn new(json: &str) -> NewToken {
        serde_json::from_str(json).expect("body")
    }

    #[test]
    fn a_creation_takes_a_name_and_one_of_role_and_policy() {
        let (name, policy, expires) = checked(
            new(r#"{"name":"ci","role":"reader","expires_in_secs":2}"#),
            10,
        )
        .expect("ok");
        assert_eq!(
            (name.as_str(), policy, expires),
            ("ci", Policy::Reader, Some(2_000_000_010))
        );
        let (_, policy, _) = checked(new(r#"{"name":"orders","role":"service"}"#), 0).expect("ok");
        assert_eq!(policy.role(), Role::Service);
        let (_, policy, expires) =
            checked(new(r#"{"name":"o","policy":{"kv":{"read":["a/*"]}}}"#), 0).expect("ok");
        assert_eq!((policy.role(), expires), (Role::Service, None));
        for (body, says) in [
            (r#"{"name":"ci"}"#, "exactly one"),
            (
                r#"{"name":"ci","role":"admin","policy":{"role":"admin"}}"#,
                "exactly one",
            ),
            (r#"{"name":"anonymous","role":"admin"}"#, "token name"),
            (
                r#"{"name":"ci","role":"admin","expires_in_secs":0}"#,
                "1 to",
            ),
        ] {
            let e = checked(new(body), 0).expect_err(body);
            assert_eq!(e.code(), Code::InvalidPolicy);
            assert!(e.message().contains(says), "{body}: {}", e.message());
        }
    }
}
