//! [`authorize`]: the one decision, pure: may a policy do an action to a resource.

use super::action::{Action, Resource};
use super::policy::Policy;

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The policy grants it.
    Allow,
    /// The policy does not grant it; why, in words (never whether another token exists).
    Deny(String),
}

impl Decision {
    /// Whether it is [`Decision::Allow`].
    #[must_use]
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Whether a channel is Draft's own (`_draft`, `_groups`): readable with `admin` or `reader`
/// only, whatever a service policy's patterns say.
fn is_reserved_channel(resource: &Resource<'_>) -> bool {
    match resource {
        Resource::Name(name) | Resource::Prefix(name) => name.starts_with('_'),
        Resource::All => false,
    }
}

/// Decides whether `policy` may do `action` to `resource`:
///
/// - `admin` may do everything;
/// - `reader` may do every action that only reads ([`Action::is_read`]);
/// - a `service` policy may do an action that has a [`Permission`](super::Permission) when
///   one of that permission's patterns grants the resource: a name it matches, a prefix (or
///   everything, the prefix `""`) it covers; never on Draft's own channels (`_`…), and never
///   what only the roles do (status, metrics, tokens).
#[must_use]
pub fn authorize(policy: &Policy, action: Action, resource: &Resource<'_>) -> Decision {
    let scopes = match policy {
        Policy::Admin => return Decision::Allow,
        Policy::Reader if action.is_read() => return Decision::Allow,
        Policy::Reader => {
            return Decision::Deny(format!(
                "the reader role only reads, and {action} is not a read"
            ));
        }
        Policy::Service(scopes) => scopes,
    };
    let Some(permission) = action.permission() else {
        let roles = if action.is_read() {
            "the admin or reader role"
        } else {
            "the admin role"
        };
        return Decision::Deny(format!("{action} needs {roles}"));
    };
    if action.is_on_channels() && is_reserved_channel(resource) {
        return Decision::Deny(
            "Draft's own channels (_draft, _groups) need the admin or reader role".to_owned(),
        );
    }
    let patterns = scopes.patterns(permission);
    let granted = match resource {
        Resource::All => patterns.iter().any(|p| p.covers("")),
        Resource::Name(name) => patterns.iter().any(|p| p.matches(name)),
        Resource::Prefix(prefix) => patterns.iter().any(|p| p.covers(prefix)),
    };
    if granted {
        Decision::Allow
    } else {
        Decision::Deny(format!(
            "no {permission} pattern of the token's policy grants it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Pattern, Permission, Scopes};
    use proptest::prelude::*;

    fn service(json: &str) -> Policy {
        Policy::from_json(json).expect("valid policy")
    }

    #[test]
    fn the_issues_example_grants_what_it_lists() {
        let p = service(
            r#"{"services": {"register": ["orders"]}, "kv": {"read": ["config/orders/*"], "write": []},
                "channels": {"produce": ["orders"], "consume": ["payments"]},
                "routes": {"claim": ["/orders*"]}}"#,
        );
        let allow = |action, resource| authorize(&p, action, &resource).is_allow();
        assert!(allow(Action::ServicesRegister, Resource::Name("orders")));
        assert!(!allow(Action::ServicesRegister, Resource::Name("payments")));
        assert!(allow(Action::KvRead, Resource::Name("config/orders/db")));
        assert!(allow(Action::KvRead, Resource::Prefix("config/orders/")));
        assert!(!allow(Action::KvRead, Resource::Prefix("config/")));
        assert!(!allow(Action::KvWrite, Resource::Name("config/orders/db")));
        assert!(allow(Action::ChannelsProduce, Resource::Name("orders")));
        assert!(!allow(Action::ChannelsProduce, Resource::Name("payments")));
        assert!(allow(Action::ChannelsRead, Resource::Name("payments")));
        assert!(!allow(Action::ChannelsList, Resource::All));
        assert!(allow(Action::RoutesClaim, Resource::Name("/orders/v2")));
        assert!(!allow(Action::RoutesClaim, Resource::Name("/")));
        assert!(!allow(Action::NodeRead, Resource::All));
        assert!(!allow(Action::TokensManage, Resource::All));
    }

    #[test]
    fn drafts_own_channels_need_a_role_whatever_the_patterns_say() {
        let p = service(r#"{"channels": {"consume": ["*"], "produce": ["*"]}}"#);
        for channel in ["_draft", "_groups"] {
            let d = authorize(&p, Action::ChannelsRead, &Resource::Name(channel));
            assert!(
                matches!(&d, Decision::Deny(why) if why.contains("admin or reader")),
                "{d:?}"
            );
            assert!(
                authorize(
                    &Policy::Reader,
                    Action::ChannelsRead,
                    &Resource::Name(channel)
                )
                .is_allow()
            );
            assert!(
                authorize(
                    &Policy::Admin,
                    Action::ChannelsRead,
                    &Resource::Name(channel)
                )
                .is_allow()
            );
        }
        assert!(authorize(&p, Action::ChannelsList, &Resource::All).is_allow());
    }

    #[test]
    fn denials_say_why_without_naming_other_tokens() {
        let d = authorize(&Policy::Reader, Action::KvWrite, &Resource::Name("a"));
        assert_eq!(
            d,
            Decision::Deny("the reader role only reads, and kv.write is not a read".into())
        );
        let d = authorize(&service("{}"), Action::TokensRead, &Resource::All);
        assert_eq!(
            d,
            Decision::Deny("tokens.read needs the admin or reader role".into())
        );
        let d = authorize(&service("{}"), Action::KvWrite, &Resource::Name("a"));
        assert_eq!(
            d,
            Decision::Deny("no kv.write pattern of the token's policy grants it".into())
        );
    }

    fn action() -> impl Strategy<Value = Action> {
        proptest::sample::select(Action::ALL.to_vec())
    }

    fn name() -> impl Strategy<Value = String> {
        "_?[a-z/.]{0,8}"
    }

    fn pattern() -> impl Strategy<Value = Pattern> {
        ("[a-z/._]{0,6}", any::<bool>()).prop_map(|(stem, prefix)| {
            let text = if prefix {
                format!("{stem}*")
            } else {
                format!("x{stem}")
            };
            Pattern::parse(&text).expect("valid")
        })
    }

    fn scopes() -> impl Strategy<Value = Scopes> {
        proptest::collection::vec(
            (
                proptest::sample::select(Permission::ALL.to_vec()),
                pattern(),
            ),
            0..8,
        )
        .prop_map(|grants| {
            let mut scopes = Scopes::default();
            for (permission, pattern) in grants {
                scopes.patterns_mut(permission).push(pattern);
            }
            scopes
        })
    }

    #[derive(Debug, Clone)]
    enum Target {
        All,
        Name(String),
        Prefix(String),
    }

    impl Target {
        fn resource(&self) -> Resource<'_> {
            match self {
                Self::All => Resource::All,
                Self::Name(n) => Resource::Name(n),
                Self::Prefix(p) => Resource::Prefix(p),
            }
        }
    }

    fn target() -> impl Strategy<Value = Target> {
        prop_oneof![
            Just(Target::All),
            name().prop_map(Target::Name),
            name().prop_map(Target::Prefix),
        ]
    }

    proptest! {
        #[test]
        fn admin_may_do_everything(action in action(), target in target()) {
            prop_assert!(authorize(&Policy::Admin, action, &target.resource()).is_allow());
        }

        #[test]
        fn reader_may_do_exactly_the_reads(action in action(), target in target()) {
            let d = authorize(&Policy::Reader, action, &target.resource());
            prop_assert_eq!(d.is_allow(), action.is_read());
        }

        /// A service policy grants a name exactly when one of the action's patterns matches
        /// it, and never Draft's own channels or what only the roles do.
        #[test]
        fn a_service_policy_grants_what_its_patterns_match(
            scopes in scopes(), action in action(), name in name(),
        ) {
            let allowed = authorize(&Policy::Service(scopes.clone()), action, &Resource::Name(&name)).is_allow();
            let expected = action.permission().is_some_and(|p| {
                !(action.is_on_channels() && name.starts_with('_'))
                    && scopes.patterns(p).iter().any(|pattern| pattern.matches(&name))
            });
            prop_assert_eq!(allowed, expected);
        }

        /// What a prefix grant allows, every name under it is allowed too (a list or a watch
        /// never shows what a read of one name would refuse).
        #[test]
        fn a_granted_prefix_grants_every_name_under_it(
            scopes in scopes(), action in action(), prefix in name(), rest in "[a-z/.]{0,4}",
        ) {
            let policy = Policy::Service(scopes);
            if authorize(&policy, action, &Resource::Prefix(&prefix)).is_allow() {
                let name = format!("{prefix}{rest}");
                prop_assert!(authorize(&policy, action, &Resource::Name(&name)).is_allow());
            }
            let drafts_own = action.is_on_channels() && prefix.starts_with('_');
            if !drafts_own && authorize(&policy, action, &Resource::All).is_allow() {
                prop_assert!(authorize(&policy, action, &Resource::Prefix(&prefix)).is_allow());
            }
        }

        /// More patterns never take a grant away.
        #[test]
        fn adding_a_pattern_never_denies_what_was_allowed(
            scopes in scopes(), action in action(), target in target(),
            permission in proptest::sample::select(Permission::ALL.to_vec()), extra in pattern(),
        ) {
            let before = authorize(&Policy::Service(scopes.clone()), action, &target.resource());
            let mut more = scopes;
            more.patterns_mut(permission).push(extra);
            let after = authorize(&Policy::Service(more), action, &target.resource());
            prop_assert!(!before.is_allow() || after.is_allow());
        }

        #[test]
        fn an_empty_service_policy_denies_everything(action in action(), target in target()) {
            let d = authorize(&Policy::Service(Scopes::default()), action, &target.resource());
            prop_assert!(!d.is_allow());
        }
    }
}
