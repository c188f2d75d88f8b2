//! [`Actor`]: who a request acts as, recorded in every control event (`draftactor`).
//!
//! Handlers take it as an extractor. When the node checks tokens, its authorization layer
//! puts the token's name into the request's extensions (see [`crate::auth`]) and this
//! extractor returns it; otherwise every request is `anonymous`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The identity a request acts as. Cheap to clone (it is shared, not copied).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(Arc<str>);

impl Actor {
    /// The actor of a request that presented no identity.
    pub const ANONYMOUS: &str = "anonymous";

    /// An actor with this name.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self(Arc::from(name.into()))
    }

    /// `anonymous`.
    #[must_use]
    pub fn anonymous() -> Self {
        Self::new(Self::ANONYMOUS)
    }

    /// Whether this is the actor of a request that presented no identity.
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        &*self.0 == Self::ANONYMOUS
    }

    /// The actor's name, as recorded.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(Self::anonymous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[tokio::test]
    async fn anonymous_unless_an_actor_was_put_in_the_request() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let actor = Actor::from_request_parts(&mut parts, &())
            .await
            .expect("infallible");
        assert_eq!(actor.name(), "anonymous");
        assert!(actor.is_anonymous());
        parts.extensions.insert(Actor::new("ci-deployer"));
        let actor = Actor::from_request_parts(&mut parts, &())
            .await
            .expect("infallible");
        assert_eq!(actor.name(), "ci-deployer");
        assert!(!actor.is_anonymous());
    }
}
