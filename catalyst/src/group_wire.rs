//! Consumer groups on the wire (re-exported by [`crate::wire`]): what the groups endpoints
//! answer, the acknowledgement a member sends, and the close codes of a member's socket.

use serde::{Deserialize, Serialize};

/// The text message a group member sends to acknowledge every event up to `ack` (its
/// `draftoffset`), cumulatively: `{"ack": 41}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The offset acknowledged, with every one before it.
    pub ack: u64,
}

/// Close code: the active member owed an acknowledgement for the group's timeout and lost
/// its place (a standby, if any, took over from the last acknowledged offset).
pub const CLOSE_ACK_TIMEOUT: u16 = 4001;
/// Close code: this node stopped serving the group (with several nodes on one log, it
/// could not renew the group's lock, so another node may serve it now). Connecting again
/// resumes after the last acknowledgement, as the active member or a standby.
pub const CLOSE_GROUP_MOVED: u16 = 4002;
/// Close code: the group was deleted while the member was connecting, or on another node
/// while it was connected.
pub const CLOSE_GROUP_DELETED: u16 = 4004;

/// A connection of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The client's address (`ip:port`).
    pub address: String,
    /// Since when it is active (the active member) or connected (a standby), RFC 3339.
    pub since: String,
}

/// What `GET /v1/channels/{channel}/groups/{group}` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The channel.
    pub channel: String,
    /// The group's name.
    pub group: String,
    /// The last acknowledged offset that is stored: a restart resumes after it (`None`
    /// before the first acknowledgement is stored).
    pub committed_offset: Option<u64>,
    /// The last acknowledged offset received; it is ahead of `committed_offset` for at most
    /// the node's commit interval.
    pub acked_offset: Option<u64>,
    /// Events stored after the committed position: the channel's last offset minus
    /// `committed_offset` (before the first commit: every event from where the group began).
    pub lag: u64,
    /// The member that receives the events, if one is connected.
    pub active: Option<GroupMember>,
    /// Connections waiting to take over, oldest (next) first.
    pub standbys: Vec<GroupMember>,
    /// When the last acknowledgement was received, RFC 3339.
    pub last_ack_time: Option<String>,
    /// How long the active member may owe an acknowledgement before it loses its place.
    pub timeout_ms: u64,
    /// The group's `type` filters (fixed when it was created).
    #[serde(rename = "type")]
    pub types: Vec<String>,
    /// The group's `source` filters (fixed when it was created).
    #[serde(rename = "source")]
    pub sources: Vec<String>,
    /// When the group was created, RFC 3339.
    pub created_time: String,
    /// The `_draft` revision of its `io.draft.group.created` event.
    pub created_revision: Option<u64>,
}

/// What `GET /v1/groups` and `GET /v1/channels/{channel}/groups` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupList {
    /// The groups, by channel then name.
    pub groups: Vec<GroupInfo>,
}
