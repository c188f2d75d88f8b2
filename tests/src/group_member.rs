//! A consumer group member's WebSocket, as the group tests drive it: join, take events,
//! acknowledge, expect nothing (a standby), expect a close.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Node;

/// How long anything expected may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// A client WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A group member's socket.
pub struct Member {
    /// The socket.
    pub socket: Socket,
}

impl Member {
    /// Joins `channel`'s group with `query` (`group=NAME&...`).
    ///
    /// # Panics
    /// If the node refuses, or does not answer in time.
    pub async fn join(node: &Node, channel: &str, query: &str) -> Self {
        let url = format!(
            "{}/v1/channels/{channel}/consume?{query}",
            node.url.replacen("http", "ws", 1)
        );
        let request = url.into_client_request().expect("request");
        let (socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("join {channel}?{query}: no answer in {PATIENCE:?}"))
            .unwrap_or_else(|e| panic!("join {channel}?{query}: {e}"));
        Self { socket }
    }

    /// The offsets of the next `n` events, all within one patience (pings do not extend
    /// it).
    ///
    /// # Panics
    /// If they do not come in time, or the socket closes first.
    pub async fn take(&mut self, n: usize) -> Vec<u64> {
        let mut offsets = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while offsets.len() < n {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{n} events in time: got {offsets:?}"))
                .expect("open")
                .expect("a message");
            match message {
                Message::Text(text) => {
                    let event: Value = serde_json::from_str(&text).expect("JSON event");
                    offsets.push(event["draftoffset"].as_u64().expect("draftoffset"));
                }
                Message::Close(frame) => panic!("closed after {offsets:?}: {frame:?}"),
                _ => {}
            }
        }
        offsets
    }

    /// Asserts that no event comes for `wait`.
    ///
    /// # Panics
    /// If one does, or the socket closes.
    pub async fn nothing_for(&mut self, wait: Duration) {
        let got = tokio::time::timeout(wait, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => return text.to_string(),
                    Some(Ok(Message::Close(frame))) => return format!("closed: {frame:?}"),
                    Some(Ok(_)) => {}
                    other => return format!("{other:?}"),
                }
            }
        })
        .await;
        assert!(got.is_err(), "a standby got {got:?}");
    }

    /// Sends a text message.
    ///
    /// # Panics
    /// If the socket is closed.
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// Acknowledges every event up to `offset`.
    pub async fn ack(&mut self, offset: u64) {
        self.send(&format!(r#"{{"ack": {offset}}}"#)).await;
    }

    /// The close frame the node sends next (events before it are skipped).
    ///
    /// # Panics
    /// If none comes in time.
    pub async fn closed(&mut self) -> (u16, String) {
        tokio::time::timeout(PATIENCE, async {
            while let Some(message) = self.socket.next().await {
                if let Ok(Message::Close(frame)) = message {
                    return frame.map_or((0, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                }
            }
            panic!("the socket ended without a close frame")
        })
        .await
        .expect("closed in time")
    }

    /// Closes the socket and waits (briefly) for the node's close.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(m)) = self.socket.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}
