//! [`Policy`]: what a token may do: one of the built-in roles, `admin` and `reader`, or a
//! `service` policy that lists [`Pattern`]s per [`Permission`].
//!
//! As JSON (in `POST /v1/tokens`, in `dctl token create --policy FILE`, and in the
//! `io.draft.token.created` event) a policy is `{"role": "admin"}`, `{"role": "reader"}`, or
//! the patterns of a service policy, with or without `"role": "service"`:
//!
//! ```json
//! {"services": {"register": ["orders"]}, "kv": {"read": ["config/orders/*"], "write": []},
//!  "channels": {"produce": ["orders"], "consume": ["payments"]}, "routes": {"claim": ["/orders*"]}}
//! ```
//!
//! Every list is optional (absent: nothing), and an unknown section or verb is refused, so a
//! misspelt permission is an error rather than a silent "no".

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::action::Permission;
use super::pattern::Pattern;

/// A policy that cannot be read: what is wrong with it, in words (bad input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(String);

impl PolicyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, tokens included.
    Admin,
    /// Every read, the audit trail (`_draft`) and the groups partition (`_groups`) included.
    Reader,
    /// What its patterns grant, and nothing of Draft's own channels.
    Service,
}

impl Role {
    /// The role's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Reader => "reader",
            Self::Service => "service",
        }
    }
}

impl FromStr for Role {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, PolicyError> {
        match text {
            "admin" => Ok(Self::Admin),
            "reader" => Ok(Self::Reader),
            "service" => Ok(Self::Service),
            _ => Err(PolicyError::new(format!(
                "role {text:?} is not one of admin, reader, service"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `services`: service names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceScopes {
    /// Register, renew and deregister instances of these services.
    pub register: Vec<Pattern>,
    /// Read these services' instances (`*` also lists every service).
    pub read: Vec<Pattern>,
}

/// `kv`: keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvScopes {
    /// Read these keys (a `prefix*` pattern also lists and watches that prefix).
    pub read: Vec<Pattern>,
    /// Put and delete these keys.
    pub write: Vec<Pattern>,
}

/// `channels`: channel names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelScopes {
    /// Produce to these channels.
    pub produce: Vec<Pattern>,
    /// Read these channels: pages, consumers, consumer groups (`*` also lists channels).
    pub consume: Vec<Pattern>,
}

/// `routes`: ingress routes, as `host/prefix` or `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteScopes {
    /// Routes a registration may claim.
    pub claim: Vec<Pattern>,
    /// Read the route table (`*`).
    pub read: Vec<Pattern>,
}

/// The patterns of a `service` policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scopes {
    /// `services`.
    pub services: ServiceScopes,
    /// `kv`.
    pub kv: KvScopes,
    /// `channels`.
    pub channels: ChannelScopes,
    /// `routes`.
    pub routes: RouteScopes,
}

impl Scopes {
    /// The patterns that grant `permission`.
    #[must_use]
    pub fn patterns(&self, permission: Permission) -> &[Pattern] {
        match permission {
            Permission::ServicesRegister => &self.services.register,
            Permission::ServicesRead => &self.services.read,
            Permission::KvRead => &self.kv.read,
            Permission::KvWrite => &self.kv.write,
            Permission::ChannelsProduce => &self.channels.produce,
            Permission::ChannelsConsume => &self.channels.consume,
            Permission::RoutesClaim => &self.routes.claim,
            Permission::RoutesRead => &self.routes.read,
        }
    }

    /// The list of patterns for `permission`, to add to.
    pub fn patterns_mut(&mut self, permission: Permission) -> &mut Vec<Pattern> {
        match permission {
            Permission::ServicesRegister => &mut self.services.register,
            Permission::ServicesRead => &mut self.services.read,
            Permission::KvRead => &mut self.kv.read,
            Permission::KvWrite => &mut self.kv.write,
            Permission::ChannelsProduce => &mut self.channels.produce,
            Permission::ChannelsConsume => &mut self.channels.consume,
            Permission::RoutesClaim => &mut self.routes.claim,
            Permission::RoutesRead => &mut self.routes.read,
        }
    }

    /// What `--role service` gives a token named `name`: what a service of that name built
    /// on Chassis needs. It registers `name`, reads the registry, reads its configuration
    /// (`config/<name>/*`), produces to and consumes `name` and `name.*` (its dead letters
    /// included), and claims routes under `/<name>`.
    ///
    /// # Errors
    /// If `name` does not make valid patterns (it has spaces, `*`, or is too long).
    pub fn for_service(name: &str) -> Result<Self, PolicyError> {
        let list = |texts: &[String]| -> Result<Vec<Pattern>, PolicyError> {
            texts.iter().map(|t| Pattern::parse(t)).collect()
        };
        let channels = [name.to_owned(), format!("{name}.*")];
        Ok(Self {
            services: ServiceScopes {
                register: list(&[name.to_owned()])?,
                read: list(&["*".to_owned()])?,
            },
            kv: KvScopes {
                read: list(&[format!("config/{name}/*")])?,
                write: Vec::new(),
            },
            channels: ChannelScopes {
                produce: list(&channels)?,
                consume: list(&channels)?,
            },
            routes: RouteScopes {
                claim: list(&[format!("/{name}*")])?,
                read: Vec::new(),
            },
        })
    }
}

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "JsonObject", into = "PolicyJson")]
pub enum Policy {
    /// Everything, tokens included.
    Admin,
    /// Every read.
    Reader,
    /// What the patterns grant.
    Service(Scopes),
}

impl Policy {
    /// The policy's role.
    #[must_use]
    pub fn role(&self) -> Role {
        match self {
            Self::Admin => Role::Admin,
            Self::Reader => Role::Reader,
            Self::Service(_) => Role::Service,
        }
    }

    /// The policy of a built-in role for a token named `name` (`service`: see
    /// [`Scopes::for_service`]).
    ///
    /// # Errors
    /// For `service`, if `name` does not make valid patterns.
    pub fn of_role(role: Role, name: &str) -> Result<Self, PolicyError> {
        Ok(match role {
            Role::Admin => Self::Admin,
            Role::Reader => Self::Reader,
            Role::Service => Self::Service(Scopes::for_service(name)?),
        })
    }

    /// Reads a policy from its JSON.
    ///
    /// # Errors
    /// A [`PolicyError`] naming what does not fit.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        serde_json::from_str(text).map_err(|e| PolicyError::new(format!("policy: {e}")))
    }
}

/// What a policy is read from: a JSON object, and nothing else (serde would take a struct
/// from an array too).
type JsonObject = serde_json::Map<String, serde_json::Value>;

impl TryFrom<JsonObject> for Policy {
    type Error = PolicyError;

    fn try_from(object: JsonObject) -> Result<Self, PolicyError> {
        let json: PolicyJson = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|e| PolicyError::new(e.to_string()))?;
        json.try_into()
    }
}

/// An optional member that, when present, must be a `T`: `null` is refused, not read as
/// absent, so a policy means what its document says.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A policy as JSON: a role, patterns, or both (`service` only).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    role: Option<Role>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    services: Option<ServiceScopes>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    kv: Option<KvScopes>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    channels: Option<ChannelScopes>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    routes: Option<RouteScopes>,
}

impl TryFrom<PolicyJson> for Policy {
    type Error = PolicyError;

    fn try_from(json: PolicyJson) -> Result<Self, PolicyError> {
        let has_patterns = json.services.is_some()
            || json.kv.is_some()
            || json.channels.is_some()
            || json.routes.is_some();
        match json.role {
            Some(role @ (Role::Admin | Role::Reader)) if has_patterns => Err(PolicyError::new(
                format!("the {role} role takes no patterns: drop them, or use a service policy"),
            )),
            Some(Role::Admin) => Ok(Self::Admin),
            Some(Role::Reader) => Ok(Self::Reader),
            Some(Role::Service) | None => Ok(Self::Service(Scopes {
                services: json.services.unwrap_or_default(),
                kv: json.kv.unwrap_or_default(),
                channels: json.channels.unwrap_or_default(),
                routes: json.routes.unwrap_or_default(),
            })),
        }
    }
}

impl From<Policy> for PolicyJson {
    fn from(policy: Policy) -> Self {
        let role = Some(policy.role());
        match policy {
            Policy::Admin | Policy::Reader => Self {
                role,
                services: None,
                kv: None,
                channels: None,
                routes: None,
            },
            Policy::Service(s) => Self {
                role,
                services: Some(s.services),
                kv: Some(s.kv),
                channels: Some(s.channels),
                routes: Some(s.routes),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_example_is_a_service_policy() {
        let policy = Policy::from_json(
            r#"{"services": {"register": ["orders"]}, "kv": {"read": ["config/orders/*"], "write": []},
                "channels": {"produce": ["orders"], "consume": ["payments"]},
                "routes": {"claim": ["/orders*"]}}"#,
        )
        .expect("valid");
        let Policy::Service(scopes) = &policy else {
            panic!("{policy:?}")
        };
        assert_eq!(
            scopes.patterns(Permission::ChannelsConsume)[0].as_str(),
            "payments"
        );
        assert!(scopes.patterns(Permission::KvWrite).is_empty());
        let json = serde_json::to_value(&policy).expect("json");
        assert_eq!(json["role"], "service");
        let back: Policy = serde_json::from_value(json).expect("back");
        assert_eq!(back, policy);
    }

    #[test]
    fn roles_and_their_json() {
        for (json, role) in [
            (r#"{"role":"admin"}"#, Role::Admin),
            (r#"{"role":"reader"}"#, Role::Reader),
            (r#"{"role":"service"}"#, Role::Service),
            ("{}", Role::Service),
        ] {
            let policy = Policy::from_json(json).expect(json);
            assert_eq!(policy.role(), role);
            let again = Policy::from_json(&serde_json::to_string(&policy).expect("json"));
            assert_eq!(again.expect("round trip"), policy);
        }
        assert_eq!(
            serde_json::to_string(&Policy::Admin).expect("json"),
            r#"{"role":"admin"}"#
        );
    }

    #[test]
    fn mistakes_are_refused_with_what_is_wrong() {
        for (json, says) in [
            (r#"{"role":"root"}"#, "unknown variant"),
            (
                r#"{"role":"admin","kv":{"read":["*"]}}"#,
                "takes no patterns",
            ),
            (r#"{"kv":{"reed":["*"]}}"#, "unknown field `reed`"),
            (r#"{"queues":{}}"#, "unknown field `queues`"),
            (r#"{"kv":{"read":["a*b"]}}"#, "only once"),
            ("[]", "policy"),
            (r#"{"role":null}"#, "invalid type: null"),
            (r#"{"kv":null}"#, "invalid type: null"),
            (r#"{"kv":{"read":null}}"#, "invalid type: null"),
        ] {
            let e = Policy::from_json(json).expect_err(json);
            assert!(e.to_string().contains(says), "{json}: {e}");
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!("reader".parse::<Role>(), Ok(Role::Reader));
    }

    #[test]
    fn the_service_role_is_scoped_to_the_tokens_name() {
        let Policy::Service(s) = Policy::of_role(Role::Service, "orders").expect("valid") else {
            panic!("a service policy")
        };
        let names =
            |p: Permission| -> Vec<&str> { s.patterns(p).iter().map(Pattern::as_str).collect() };
        assert_eq!(names(Permission::ServicesRegister), ["orders"]);
        assert_eq!(names(Permission::KvRead), ["config/orders/*"]);
        assert_eq!(names(Permission::ChannelsProduce), ["orders", "orders.*"]);
        assert_eq!(names(Permission::RoutesClaim), ["/orders*"]);
        assert!(names(Permission::KvWrite).is_empty());
        assert!(Scopes::for_service("a b").is_err());
    }
}
