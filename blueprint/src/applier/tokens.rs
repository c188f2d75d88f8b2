//! The decisions on token writes: names unique among live tokens, revocation of what exists.

use std::collections::{HashMap, HashSet};

use crate::error::WriteError;
use crate::event::ControlEvent;
use crate::names::TokenName;
use crate::projection::Projection;

use super::Op;

/// A token that exists (valid or expired).
#[derive(Clone, Copy)]
struct Existing {
    /// When it expires (unix nanos; `None`: never).
    expires_at_nanos: Option<u64>,
}

/// What a group has decided about tokens so far, over the projection.
#[derive(Default)]
pub(super) struct TokenOverlay {
    /// Name -> the token made in this group, or `None` if it was revoked in this group.
    names: HashMap<TokenName, Option<Existing>>,
    /// Digests of the secrets of tokens created in this group.
    digests: HashSet<String>,
}

impl TokenOverlay {
    /// The token `name` after the group's earlier writes, if there is one.
    fn token(&self, state: &Projection, name: &TokenName) -> Option<Existing> {
        match self.names.get(name) {
            Some(decided) => *decided,
            None => state.tokens().get(name).map(|t| Existing {
                expires_at_nanos: t.expires_at_nanos,
            }),
        }
    }
}

/// Decides a token write (`op` is [`Op::CreateToken`] or [`Op::RevokeToken`]). Pure.
pub(super) fn decide(
    state: &Projection,
    overlay: &mut TokenOverlay,
    op: &Op,
) -> Result<ControlEvent, WriteError> {
    match op {
        Op::CreateToken {
            name,
            secret_sha256,
            policy,
            expires_at_nanos,
            creator,
            now_nanos,
        } => {
            let live = overlay
                .token(state, name)
                .is_some_and(|t| t.expires_at_nanos.is_none_or(|e| *now_nanos < e));
            let secret_taken = overlay.digests.contains(secret_sha256)
                || state.tokens().by_digest(secret_sha256).is_some();
            if live || secret_taken {
                return Err(WriteError::Exists);
            }
            let made = Existing {
                expires_at_nanos: *expires_at_nanos,
            };
            overlay.names.insert(name.clone(), Some(made));
            overlay.digests.insert(secret_sha256.clone());
            Ok(ControlEvent::TokenCreated {
                name: name.as_str().to_owned(),
                secret_sha256: secret_sha256.clone(),
                policy: policy.clone(),
                expires_at_nanos: *expires_at_nanos,
                creator: creator.clone(),
            })
        }
        Op::RevokeToken { name } => {
            if overlay.token(state, name).is_none() {
                return Err(WriteError::NotFound);
            }
            overlay.names.insert(name.clone(), None);
            Ok(ControlEvent::TokenRevoked {
                name: name.as_str().to_owned(),
            })
        }
        _ => Err(WriteError::NotRecorded("not a token write".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applier::{WriteRequest, decide_group};
    use crate::event::Applied;
    use draft_http::auth::Policy;
    use tokio::sync::oneshot;

    fn create(name: &str, digest: &str, expires: Option<u64>, now: u64) -> WriteRequest {
        let (reply, _) = oneshot::channel();
        WriteRequest {
            op: Op::CreateToken {
                name: TokenName::parse(name).expect("name"),
                secret_sha256: digest.into(),
                policy: Policy::Admin,
                expires_at_nanos: expires,
                creator: "admin".into(),
                now_nanos: now,
            },
            actor: "admin".into(),
            reply,
        }
    }

    fn revoke(name: &str) -> WriteRequest {
        let (reply, _) = oneshot::channel();
        WriteRequest {
            op: Op::RevokeToken {
                name: TokenName::parse(name).expect("name"),
            },
            actor: "admin".into(),
            reply,
        }
    }

    #[test]
    fn names_are_unique_among_live_tokens_within_a_group_and_across() {
        let mut state = Projection::default();
        state.apply(&Applied {
            revision: 0,
            time_nanos: 0,
            actor: "draft".into(),
            event: ControlEvent::TokenCreated {
                name: "old".into(),
                secret_sha256: "d0".into(),
                policy: Policy::Reader,
                expires_at_nanos: Some(50),
                creator: "draft".into(),
            },
        });
        let group = decide_group(
            &state,
            1,
            vec![
                create("ci", "d1", None, 100),
                create("ci", "d2", None, 100),    // taken in this group
                create("other", "d1", None, 100), // same secret
                create("old", "d3", None, 100),   // the old one expired at 50
                revoke("ci"),
                create("ci", "d4", None, 100), // free again
                revoke("never"),
                create("old", "d5", None, 40), // not expired yet at 40... but taken above
            ],
            |_| true,
            super::super::KvLimits::NONE,
        );
        let answers: Vec<_> = group
            .decisions
            .iter()
            .map(|d| match d {
                Ok(Some(_)) => "ok",
                Err(WriteError::Exists) => "exists",
                Err(WriteError::NotFound) => "not found",
                _ => "other",
            })
            .collect();
        assert_eq!(
            answers,
            [
                "ok",
                "exists",
                "exists",
                "ok",
                "ok",
                "ok",
                "not found",
                "exists"
            ]
        );
    }
}
