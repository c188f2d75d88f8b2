//! Tokens and policies: what a request may do, decided by one pure function.
//!
//! - [`Policy`]: the built-in roles `admin` and `reader`, or a `service` policy of
//!   [`Pattern`]s per [`Permission`];
//! - [`Action`] and [`Resource`]: what a request does, to what (every endpoint of the node
//!   maps to exactly one action);
//! - [`authorize`]: `authorize(policy, action, resource) -> Allow | Deny(reason)`, pure and
//!   property-tested;
//! - (feature `server`) [`Secret`] and [`Digest`]: a token's 256 random bits and the SHA-256
//!   the node keeps of them; [`take_credential`]: the token a request presents; [`Grant`]
//!   and [`Caller`]: a checked request's identity and policy, for handlers; [`Validity`]:
//!   how long its token stays good, for the WebSockets that outlive the check.
//!
//! Tokens themselves (created and revoked as control events, part of the registry's
//! projection) are Blueprint's; the table of endpoints and the layer that checks every
//! request are the node's (`dctl::node`). This module is here, in the crate every part of the
//! node already shares, so that all of them speak of the same policies without a cycle.
//!
//! ```
//! use draft_http::auth::{Action, Decision, Policy, Resource, authorize};
//!
//! let policy = Policy::from_json(r#"{"channels": {"produce": ["orders"]}}"#).expect("valid");
//! assert_eq!(authorize(&policy, Action::ChannelsProduce, &Resource::Name("orders")), Decision::Allow);
//! assert!(!authorize(&policy, Action::ChannelsProduce, &Resource::Name("payments")).is_allow());
//! assert!(!authorize(&Policy::Reader, Action::KvWrite, &Resource::Name("a")).is_allow());
//! ```

mod action;
mod authorize;
mod pattern;
mod policy;

#[cfg(feature = "server")]
mod credential;
#[cfg(feature = "server")]
mod grant;
#[cfg(feature = "server")]
mod secret;
#[cfg(feature = "server")]
mod validity;

pub use self::action::{Action, Permission, Resource};
pub use self::authorize::{Decision, authorize};
pub use self::pattern::Pattern;
pub use self::policy::{
    ChannelScopes, KvScopes, Policy, PolicyError, Role, RouteScopes, Scopes, ServiceScopes,
};

#[cfg(feature = "server")]
pub use self::{
    credential::{ACCESS_TOKEN_PARAM, Credential, take_credential},
    grant::{Caller, Grant, forbidden},
    secret::{Digest, SECRET_PREFIX, Secret, looks_like_secret},
    validity::{Lapse, StillValid, Validity},
};
