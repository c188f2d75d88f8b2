//! Validated names at Blueprint's boundary: [`ServiceName`], [`InstanceId`], [`Key`],
//! [`TokenName`], and the control plane's [`Revision`].
//!
//! A name that parses is one the HTTP API accepts, so the library refuses what the API
//! refuses: the handlers parse path segments into these types and answer a [`NameError`] with
//! the same code and message as before the types existed.

use std::fmt;
use std::ops::Deref;

use draft_log::Offset;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{NameError, NameKind};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The path suffix that reads a key's history, so no key ends with it.
pub(crate) const HISTORY: &str = "/history";

/// The rule of service names and instance ids, in words.
const NAME_RULE: &str = "1-128 of [A-Za-z0-9._-]";
/// The rule of keys, in words (`1-{MAX_KEY_BYTES}`; a test checks the two agree).
const KEY_RULE: &str = "1-512 bytes of [A-Za-z0-9._-/] and not end with /history";

/// The rule of token names, in words.
const TOKEN_RULE: &str = "1-64 of [A-Za-z0-9._-], and not anonymous or draft";

/// Token names: `[A-Za-z0-9._-]{1,64}`, except the actors Draft uses itself (`anonymous`,
/// for requests without a token, and `draft`, for what the node does on its own), so the
/// audit trail cannot confuse a token with them.
fn is_token_name(value: &str) -> bool {
    value.len() <= 64 && is_name(value) && value != "anonymous" && value != "draft"
}

/// Service and instance names: `[A-Za-z0-9._-]{1,128}`.
fn is_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Keys are `/`-separated paths of `[A-Za-z0-9._-]`, at most 512 bytes, and do not end with
/// `/history` (that path reads a key's history).
fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        && !key.ends_with(HISTORY)
}

/// A string newtype that only holds values `$valid` accepts: parsing, conversions, `Deref` to
/// `str`, `Display`, a `Debug` that shows the string, `Serialize` as the bare string and a
/// `Deserialize` that validates.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $rule:expr, $valid:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps a copy of it.
            ///
            /// # Errors
            /// A [`NameError`] saying which rule `value` breaks.
            pub fn parse(value: &str) -> Result<Self, NameError> {
                if $valid(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(NameError::new($kind, value, $rule))
                }
            }

            /// The name as a string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                if $valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(NameError::new($kind, value, $rule))
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(value: &str) -> Result<Self, NameError> {
                Self::parse(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(value: &str) -> Result<Self, NameError> {
                Self::parse(value)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

name_type! {
    /// A service's name: 1 to 128 bytes of `[A-Za-z0-9._-]` (letters of either case).
    ///
    /// The rule is the one the HTTP API applies to the `{service}` segment of
    /// `PUT /v1/services/{service}/instances/{instance}` (it was `registry::name` before this
    /// type). Unlike channel names it allows upper case, and nothing is reserved.
    ServiceName, NameKind::Service, NAME_RULE, is_name
}

name_type! {
    /// An instance's id within its service: the same rule as [`ServiceName`], 1 to 128 bytes
    /// of `[A-Za-z0-9._-]`.
    ///
    /// The rule is the one the HTTP API applies to the `{instance}` segment of
    /// `PUT /v1/services/{service}/instances/{instance}` (it was `registry::name` before this
    /// type).
    InstanceId, NameKind::Instance, NAME_RULE, is_name
}

name_type! {
    /// A KV key: a `/`-separated path of `[A-Za-z0-9._-]`, 1 to [`MAX_KEY_BYTES`] bytes, that
    /// does not end with `/history`.
    ///
    /// The rule is the one the HTTP API applies to `{key}` in `/v1/kv/{key}` (it was
    /// `kv::check_key` before this type); the `/history` suffix is refused because
    /// `GET /v1/kv/{key}/history` reads a key's history.
    Key, NameKind::Key, KEY_RULE, is_key
}

name_type! {
    /// A token's name, the actor of everything done with it: 1 to 64 bytes of
    /// `[A-Za-z0-9._-]`, and not `anonymous` or `draft` (the actors of requests without a
    /// token and of the node itself). Unique among live tokens.
    TokenName, NameKind::Token, TOKEN_RULE, is_token_name
}

/// A revision of the control plane: the offset of a control event in the control partition
/// `_draft`, which gives the registry and the KV store one total order (DESIGN.md §2-3).
///
/// Serialized as the bare number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(u64);

impl Revision {
    /// The revision at `offset` of the control partition.
    #[must_use]
    pub const fn new(offset: u64) -> Self {
        Self(offset)
    }

    /// The offset of the control event, as a number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The revision after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The offset of the control event in `_draft`.
    #[must_use]
    pub const fn offset(self) -> Offset {
        Offset(self.0)
    }
}

impl From<Offset> for Revision {
    fn from(offset: Offset) -> Self {
        Self(offset.0)
    }
}

impl std::str::FromStr for Revision {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The check `registry::name` made before [`ServiceName`] and [`InstanceId`].
    fn old_name_rule(value: &str) -> bool {
        !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }

    /// The check `kv::check_key` made before [`Key`].
    fn old_key_rule(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= 512
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
            && !key.ends_with("/history")
    }

    #[test]
    fn names_are_1_to_128_bytes_of_letters_digits_dot_underscore_dash() {
        for ok in ["a", "Web-1", "api.v2_blue", "-", ".", &"x".repeat(128)] {
            assert_eq!(
                ServiceName::parse(ok).map(|n| n.to_string()),
                Ok(ok.to_owned())
            );
            assert_eq!(InstanceId::parse(ok).as_deref().ok(), Some(ok));
        }
        for bad in [
            "",
            &"x".repeat(129),
            "a b",
            "a/b",
            "é",
            "a\0",
            "a:1",
            "a%20",
        ] {
            assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
            assert!(InstanceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_paths_up_to_the_limit_not_ending_with_history() {
        let longest = "k".repeat(MAX_KEY_BYTES);
        for ok in [
            "a",
            "app/db/url",
            "/leading/",
            "history",
            "a/history/b",
            "a/historyx",
            longest.as_str(),
        ] {
            assert_eq!(Key::parse(ok).as_deref().ok(), Some(ok));
        }
        let too_long = "k".repeat(MAX_KEY_BYTES + 1);
        for bad in [
            "",
            too_long.as_str(),
            "a/history",
            "/history",
            "a b",
            "a?b",
            "ü",
        ] {
            assert!(Key::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_say_which_name_and_the_rule_as_the_api_does() {
        let e = ServiceName::parse("a b").expect_err("refused");
        assert_eq!(e.kind(), NameKind::Service);
        assert_eq!(e.value(), "a b");
        assert_eq!(
            e.to_string(),
            "service name \"a b\" must be 1-128 of [A-Za-z0-9._-]"
        );
        assert_eq!(
            InstanceId::try_from(String::new())
                .expect_err("refused")
                .to_string(),
            "instance name \"\" must be 1-128 of [A-Za-z0-9._-]"
        );
        assert_eq!(
            "x/history".parse::<Key>().expect_err("refused").to_string(),
            format!(
                "key \"x/history\" must be 1-{MAX_KEY_BYTES} bytes of [A-Za-z0-9._-/] and not end with /history"
            )
        );
    }

    #[test]
    fn serde_round_trips_as_bare_strings_and_refuses_bad_names() {
        let name = ServiceName::parse("web").expect("valid");
        assert_eq!(serde_json::to_string(&name).expect("json"), "\"web\"");
        let back: ServiceName = serde_json::from_str("\"web\"").expect("valid");
        assert_eq!(back, name);
        let key: Key = serde_json::from_str("\"app/db\"").expect("valid");
        assert_eq!(serde_json::to_value(&key).expect("json"), "app/db");
        let refused = serde_json::from_str::<InstanceId>("\"a b\"").expect_err("refused");
        assert!(
            refused.to_string().contains("instance name \"a b\""),
            "{refused}"
        );
        assert!(serde_json::from_str::<Key>("\"a/history\"").is_err());
        assert!(serde_json::from_str::<ServiceName>("7").is_err());
    }

    #[test]
    fn token_names_are_short_names_but_not_drafts_own_actors() {
        for ok in ["admin", "ci-deployer", "orders.v2", &"t".repeat(64)] {
            assert_eq!(TokenName::parse(ok).expect(ok).as_str(), ok);
        }
        for bad in ["", "anonymous", "draft", "a b", "a/b", &"t".repeat(65)] {
            let e = TokenName::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), NameKind::Token);
            assert!(e.to_string().starts_with("token name"), "{e}");
        }
    }

    #[test]
    fn revisions_are_offsets_of_the_control_partition() {
        let r = Revision::new(41);
        assert_eq!(r.next(), Revision::new(42));
        assert!(r < r.next());
        assert_eq!((r.get(), r.offset()), (41, Offset(41)));
        assert_eq!(Revision::from(Offset(7)), Revision::new(7));
        assert_eq!(format!("{r} {r:?}"), "41 41");
        assert_eq!("12".parse::<Revision>(), Ok(Revision::new(12)));
        assert!("x".parse::<Revision>().is_err());
        assert_eq!(serde_json::to_string(&Some(r)).expect("json"), "41");
        assert_eq!(serde_json::from_str::<Revision>("41").expect("number"), r);
    }

    /// Strings near the rules' edges as well as arbitrary ones: lengths around the limits,
    /// the allowed bytes, and the `/history` suffix.
    fn near_the_rules() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-z0-9._/-]{0,4}",
            "[A-Za-z0-9._-]{120,136}",
            "[A-Za-z0-9._/-]{505,520}",
            "[A-Za-z0-9._/-]{0,8}/history",
            "[A-Za-z0-9._/ -]{1,12}",
        ]
    }

    proptest! {
        #[test]
        fn names_accept_what_the_old_rule_accepted(s in near_the_rules()) {
            prop_assert_eq!(ServiceName::parse(&s).is_ok(), old_name_rule(&s));
            prop_assert_eq!(InstanceId::parse(&s).is_ok(), old_name_rule(&s));
            prop_assert_eq!(InstanceId::try_from(s.clone()).is_ok(), old_name_rule(&s));
        }

        #[test]
        fn keys_accept_what_the_old_rule_accepted(s in near_the_rules()) {
            prop_assert_eq!(Key::parse(&s).is_ok(), old_key_rule(&s));
            prop_assert_eq!(Key::try_from(s.clone()).is_ok(), old_key_rule(&s));
        }
    }
}
