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
    Ack, CLOSE_ACK_TIMEOUT, CLOSE_GROUP_DELETED, GroupInfo, GroupList, GroupMember,
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
}

/// What `GET /v1/channels` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelList {
    /// Every channel, by name.
    pub channels: Vec<ChannelInfo>,
}
