//! [`Action`]: what a request does, one per endpoint; [`Permission`]: the part of a policy
//! that grants it; [`Resource`]: what it does it to.

use std::fmt;

/// What a request does. Every endpoint of the node's API maps to exactly one (the table is
/// `dctl::node::auth`); a registration's routes are also checked one by one as
/// [`Action::RoutesClaim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// List channels or every consumer group (`GET /v1/channels`, `GET /v1/groups`).
    ChannelsList,
    /// Read a channel: its head, a page of events, a consumer (alone or in a group), its
    /// consumer groups.
    ChannelsRead,
    /// Produce to a channel (HTTP or WebSocket).
    ChannelsProduce,
    /// Delete a channel's consumer group.
    GroupsDelete,
    /// Change a channel's settings (its retention): `admin` only.
    ChannelsConfigure,
    /// Read the registry: services and their instances.
    ServicesRead,
    /// Register, renew or deregister an instance of a service.
    ServicesRegister,
    /// Read a key, its history, a list or a watch of a prefix.
    KvRead,
    /// Put or delete a key.
    KvWrite,
    /// Read the ingress route table.
    RoutesRead,
    /// Claim an ingress route (`host/prefix`, or `prefix`) in a registration.
    RoutesClaim,
    /// Read the node's status and metrics.
    NodeRead,
    /// List tokens (never their secrets).
    TokensRead,
    /// Create or revoke tokens.
    TokensManage,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 14] = [
        Self::ChannelsList,
        Self::ChannelsRead,
        Self::ChannelsProduce,
        Self::GroupsDelete,
        Self::ChannelsConfigure,
        Self::ServicesRead,
        Self::ServicesRegister,
        Self::KvRead,
        Self::KvWrite,
        Self::RoutesRead,
        Self::RoutesClaim,
        Self::NodeRead,
        Self::TokensRead,
        Self::TokensManage,
    ];

    /// The action's name, as errors give it (`channels.produce`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ChannelsList => "channels.list",
            Self::ChannelsRead => "channels.read",
            Self::ChannelsProduce => "channels.produce",
            Self::GroupsDelete => "groups.delete",
            Self::ChannelsConfigure => "channels.configure",
            Self::ServicesRead => "services.read",
            Self::ServicesRegister => "services.register",
            Self::KvRead => "kv.read",
            Self::KvWrite => "kv.write",
            Self::RoutesRead => "routes.read",
            Self::RoutesClaim => "routes.claim",
            Self::NodeRead => "node.read",
            Self::TokensRead => "tokens.read",
            Self::TokensManage => "tokens.manage",
        }
    }

    /// Whether the action only reads (the `reader` role may do it).
    #[must_use]
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            Self::ChannelsList
                | Self::ChannelsRead
                | Self::ServicesRead
                | Self::KvRead
                | Self::RoutesRead
                | Self::NodeRead
                | Self::TokensRead
        )
    }

    /// The part of a `service` policy that grants the action; `None` for what only the
    /// built-in roles do (the node's status and metrics: `admin` and `reader`; tokens and
    /// channel settings: `admin`).
    #[must_use]
    pub const fn permission(self) -> Option<Permission> {
        Some(match self {
            Self::ChannelsList | Self::ChannelsRead | Self::GroupsDelete => {
                Permission::ChannelsConsume
            }
            Self::ChannelsProduce => Permission::ChannelsProduce,
            Self::ServicesRead => Permission::ServicesRead,
            Self::ServicesRegister => Permission::ServicesRegister,
            Self::KvRead => Permission::KvRead,
            Self::KvWrite => Permission::KvWrite,
            Self::RoutesRead => Permission::RoutesRead,
            Self::RoutesClaim => Permission::RoutesClaim,
            Self::ChannelsConfigure | Self::NodeRead | Self::TokensRead | Self::TokensManage => {
                return None;
            }
        })
    }

    /// Whether the action's resource is a channel (Draft's own, `_draft` and `_groups`, are
    /// for `admin` and `reader` only).
    #[must_use]
    pub const fn is_on_channels(self) -> bool {
        matches!(
            self,
            Self::ChannelsList
                | Self::ChannelsRead
                | Self::ChannelsProduce
                | Self::GroupsDelete
                | Self::ChannelsConfigure
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One list of patterns in a `service` policy: `{"channels": {"produce": [..]}}` is
/// [`Permission::ChannelsProduce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `services.register`: service names.
    ServicesRegister,
    /// `services.read`: service names.
    ServicesRead,
    /// `kv.read`: keys.
    KvRead,
    /// `kv.write`: keys.
    KvWrite,
    /// `channels.produce`: channel names.
    ChannelsProduce,
    /// `channels.consume`: channel names (reading them, alone or in a group).
    ChannelsConsume,
    /// `routes.claim`: `host/prefix` or `prefix` of routes.
    RoutesClaim,
    /// `routes.read`: the route table (`*`).
    RoutesRead,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Self; 8] = [
        Self::ServicesRegister,
        Self::ServicesRead,
        Self::KvRead,
        Self::KvWrite,
        Self::ChannelsProduce,
        Self::ChannelsConsume,
        Self::RoutesClaim,
        Self::RoutesRead,
    ];

    /// `section.verb`, as written in a policy.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ServicesRegister => "services.register",
            Self::ServicesRead => "services.read",
            Self::KvRead => "kv.read",
            Self::KvWrite => "kv.write",
            Self::ChannelsProduce => "channels.produce",
            Self::ChannelsConsume => "channels.consume",
            Self::RoutesClaim => "routes.claim",
            Self::RoutesRead => "routes.read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action is done to, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource<'a> {
    /// Everything of its kind (a list of every channel, service or route).
    All,
    /// One named thing: a channel, a service, a key, a route.
    Name(&'a str),
    /// Every name starting with this (a list or a watch of a prefix).
    Prefix(&'a str),
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Name(name) => write!(f, "{name:?}"),
            Self::Prefix(prefix) => write!(f, "{:?}", format!("{prefix}*")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_write_but_the_admin_only_ones_has_a_permission() {
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            let admin_only = matches!(action, Action::TokensManage | Action::ChannelsConfigure);
            if !action.is_read() {
                assert_eq!(action.permission().is_none(), admin_only, "{action}");
            }
        }
        assert_eq!(Resource::Prefix("config/").to_string(), "\"config/*\"");
        assert_eq!(Resource::Name("orders").to_string(), "\"orders\"");
    }
}
