//! [`Grant`]: who a checked request is and what it may do, and [`Caller`], the extractor
//! through which a handler checks what only the body says (a registration's routes).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::action::{Action, Resource};
use super::authorize::{Decision, authorize};
use super::policy::Policy;
use super::validity::Validity;
use crate::actor::Actor;
use crate::error::ApiError;

/// A verified token: its name, as the actor, and its policy. The node's authorization layer
/// puts it (and its [`Actor`]) in the extensions of every request it lets through.
#[derive(Debug, Clone)]
pub struct Grant {
    actor: Actor,
    policy: Arc<Policy>,
    validity: Option<Validity>,
}

impl Grant {
    /// The grant of the token named `actor` with `policy`.
    #[must_use]
    pub fn new(actor: Actor, policy: Arc<Policy>) -> Self {
        Self {
            actor,
            policy,
            validity: None,
        }
    }

    /// The grant, with how long its token stays good.
    #[must_use]
    pub fn with_validity(mut self, validity: Validity) -> Self {
        self.validity = Some(validity);
        self
    }

    /// How long its token stays good (`None`: as long as whatever holds the grant).
    #[must_use]
    pub fn validity(&self) -> Option<&Validity> {
        self.validity.as_ref()
    }

    /// The token's name.
    #[must_use]
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The token's policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `Ok` if the policy allows `action` on `resource`, else 403 `forbidden` naming both.
    ///
    /// # Errors
    /// The 403.
    pub fn check(&self, action: Action, resource: &Resource<'_>) -> Result<(), ApiError> {
        match authorize(&self.policy, action, resource) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(forbidden(action, resource, &reason)),
        }
    }
}

/// 403 `forbidden`: the action, the resource and why (never whether some token exists).
#[must_use]
pub fn forbidden(action: Action, resource: &Resource<'_>, reason: &str) -> ApiError {
    ApiError::forbidden(format!(
        "this token may not {action} on {resource}: {reason}"
    ))
}

/// The request's [`Grant`], if the node checks tokens (`None` when auth is off): for the
/// checks an endpoint can only make once it has read the body.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Grant>);

impl Caller {
    /// `Ok` when the node does not check tokens, or the grant allows `action` on `resource`.
    ///
    /// # Errors
    /// 403 `forbidden`.
    pub fn check(&self, action: Action, resource: &Resource<'_>) -> Result<(), ApiError> {
        self.0
            .as_ref()
            .map_or(Ok(()), |g| g.check(action, resource))
    }

    /// How long the request's token stays good, for a WebSocket to close when it lapses
    /// (`None` when the node does not check tokens).
    #[must_use]
    pub fn validity(&self) -> Option<Validity> {
        self.0.as_ref().and_then(Grant::validity).cloned()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Grant>().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[tokio::test]
    async fn no_grant_allows_and_a_grant_decides() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let caller = Caller::from_request_parts(&mut parts, &())
            .await
            .expect("infallible");
        assert!(caller.check(Action::TokensManage, &Resource::All).is_ok());
        parts
            .extensions
            .insert(Grant::new(Actor::new("ci"), Arc::new(Policy::Reader)));
        let caller = Caller::from_request_parts(&mut parts, &())
            .await
            .expect("infallible");
        let e = caller
            .check(Action::KvWrite, &Resource::Name("a/b"))
            .expect_err("reader");
        assert_eq!(e.status().as_u16(), 403);
        assert_eq!(
            e.message(),
            "this token may not kv.write on \"a/b\": the reader role only reads, and kv.write is not a read"
        );
    }
}
