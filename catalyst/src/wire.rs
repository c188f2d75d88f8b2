//! Types on the wire of Catalyst's HTTP API, shared by the server and its clients.

use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol of the CloudEvents WebSocket binding (JSON format).
pub const SUBPROTOCOL: &str = "cloudevents.json";
/// The response header of `GET …/events` that holds the offset to read from next.
pub const NEXT_OFFSET_HEADER: &str = "draft-next-offset";
/// Structured content mode.
pub const STRUCTURED: &str = "application/cloudevents+json";
/// Batch content mode.
pub const BATCH: &str = "application/cloudevents-batch+json";

pub use crate::group_wire::{
    Ack, CLOSE_ACK_TIMEOUT, CLOSE_GROUP_DELETED, CLOSE_GROUP_MOVED, GroupInfo, GroupList,
    GroupMember,
};
pub use draft_http::{ErrorBody, ErrorDetail};

/// The answer to a produce: the channel and the offset of each event sent, in order (for a
/// duplicate, the offset it was first stored at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceResponse {
    /// The channel.
    pub channel: String,
    /// One offset per event sent.
    pub offsets: Vec<u64>,
}

/// The node's answer to one frame of a WebSocket producer (`GET …/produce`), in the order the
/// frames were sent: `{"seq":n,"offsets":[..]}` once the frame's events are durable, or
/// `{"seq":n,"error":{"code":..,"message":..}}` with the code HTTP produce would answer with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceAck {
    /// The frame's number on its connection, from 0.
    pub seq: u64,
    /// One offset per event of the frame (for a duplicate, the offset it was first stored
    /// at); absent on an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Vec<u64>>,
    /// Why nothing of the frame was stored; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// What `GET /v1/channels/{channel}` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// The channel's name.
    pub channel: String,
    /// The oldest offset still stored.
    pub first_offset: u64,
    /// The newest offset, if any event is stored.
    pub last_offset: Option<u64>,
    /// How many events are stored.
    pub count: u64,
    /// Bytes stored (encoded records).
    pub bytes: u64,
    /// When the last event was appended (RFC 3339), if ever.
    pub last_append_time: Option<String>,
    /// How much of the channel the log keeps.
    #[serde(default)]
    pub retention: Retention,
    /// Whether `retention` is the channel's own (`PUT /v1/channels/{channel}`); `false`: the
    /// node's default.
    #[serde(default)]
    pub retention_set: bool,
}

/// How much of a channel the log keeps: events appended more than `max_age_secs` ago go, and
/// the oldest go while the channel holds more than `max_bytes` (events appended together go
/// together). `null` (or absent): no limit of that kind. Both `null`: everything is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The oldest an event may be, in seconds (1 to 100 years).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// The most bytes the channel may hold (at least 1).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// `PUT /v1/channels/{channel}`: a channel's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    /// The channel's own retention; `null` (or absent) returns it to the node's default.
    #[serde(default)]
    pub retention: Option<Retention>,
}

/// The answer to `PUT /v1/channels/{channel}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSettingsApplied {
    /// The channel.
    pub channel: String,
    /// The retention now in force.
    pub retention: Retention,
    /// Whether it is the channel's own (`false`: the node's default).
    pub retention_set: bool,
    /// The revision of `_draft` at which the change was recorded (`io.draft.channel.configured`).
    pub revision: u64,
}

/// What `GET /v1/channels` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelList {
    /// Every channel, by name.
    pub channels: Vec<ChannelInfo>,
}
