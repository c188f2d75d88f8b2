//! Consumer groups, from the client's side: a member's socket ([`GroupConsumer`]: events in,
//! acknowledgements out) and the groups endpoints.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{Client, ClientError, ReadOptions, Socket};
use crate::group_wire::{Ack, GroupInfo, GroupList};

/// A member of a consumer group: the active one receives the channel's events from the
/// group's position; a standby receives nothing until it takes over. Acknowledge what was
/// handled with [`GroupConsumer::ack`]; what is not acknowledged is delivered again to
/// whoever comes next.
#[derive(Debug)]
pub struct GroupConsumer {
    socket: Socket,
}

impl GroupConsumer {
    /// The next event's text (a JSON object with `draftoffset`), or `None` once the node
    /// closed the socket normally (1000, or 1001 when it shuts down). Any other close (4001:
    /// the member lost its place; 1008: an acknowledgement was refused) is an error item
    /// with the node's reason.
    pub async fn next(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            return match self.socket.next().await? {
                Ok(Message::Text(text)) => Some(Ok(text.to_string())),
                Ok(Message::Close(Some(frame)))
                    if !matches!(u16::from(frame.code), 1000 | 1001) =>
                {
                    Some(Err(ClientError::Protocol(format!(
                        "the node closed the group member: {} ({})",
                        frame.reason,
                        u16::from(frame.code)
                    ))))
                }
                Ok(Message::Close(_)) => None,
                Ok(_) => continue,
                Err(e) => Some(Err(ClientError::Protocol(e.to_string()))),
            };
        }
    }

    /// Acknowledges every event up to `offset` (its `draftoffset`), cumulatively.
    pub async fn ack(&mut self, offset: u64) -> Result<(), ClientError> {
        let text = serde_json::to_string(&Ack { ack: offset })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Closes the socket politely: the group's next standby takes over from the last
    /// acknowledged offset.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        while let Some(Ok(message)) = self.socket.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    }
}

impl Client {
    /// Joins the consumer group `group` of `channel`; a new group starts at `options.from`
    /// with `options`' filters and `timeout_ms` (fixed from then on: an existing group takes
    /// them only if they match, and ignores `from`).
    pub async fn consume_group(
        &self,
        channel: &str,
        group: &str,
        options: &ReadOptions,
        timeout_ms: Option<u64>,
    ) -> Result<GroupConsumer, ClientError> {
        let mut extra = vec![("group", group.to_owned())];
        if let Some(t) = timeout_ms {
            extra.push(("timeout_ms", t.to_string()));
        }
        let path = format!("/v1/channels/{channel}/consume?{}", options.query(&extra));
        let socket = self.open_socket(&path).await?;
        Ok(GroupConsumer { socket })
    }

    /// `GET /v1/groups` (every channel's) or `GET /v1/channels/{channel}/groups`.
    pub async fn groups(&self, channel: Option<&str>) -> Result<GroupList, ClientError> {
        let url = match channel {
            None => format!("{}/v1/groups", self.base),
            Some(c) => format!("{}/v1/channels/{c}/groups", self.base),
        };
        self.get_json(&url).await
    }

    /// `GET /v1/channels/{channel}/groups/{group}`.
    pub async fn group(&self, channel: &str, group: &str) -> Result<GroupInfo, ClientError> {
        self.get_json(&format!(
            "{}/v1/channels/{channel}/groups/{group}",
            self.base
        ))
        .await
    }

    /// `DELETE /v1/channels/{channel}/groups/{group}`; refused (409) while members are
    /// connected.
    pub async fn delete_group(&self, channel: &str, group: &str) -> Result<(), ClientError> {
        let url = format!("{}/v1/channels/{channel}/groups/{group}", self.base);
        let response = self
            .request(reqwest::Method::DELETE, url)
            .send()
            .await
            .map_err(|e| self.connect_error(&e))?;
        Self::check(response).await.map(drop)
    }
}
