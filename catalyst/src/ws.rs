//! What Draft's server WebSockets (Catalyst's consume, Blueprint's watch) share: the limits on
//! what a client may send, and the close frame for a read that failed.
//!
//! Clients of these sockets only receive; they send pings, pongs and a close. tungstenite's
//! defaults would let one client make the node buffer a 64 MiB message (16 MiB frames) before
//! anything looks at it, so the limits are small.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade, close_code};

/// The largest message (and frame) a client may send: far above any ping or close.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// The upgrade with Draft's limits: small messages from the client, and a small read buffer
/// (tungstenite zero-fills its whole read buffer before every read, so the 128 KiB default
/// cost a memset per event sent).
pub fn limited(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4096)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
}

/// A close frame with this code and reason.
#[must_use]
pub fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// The close frame for a read that failed: 1009 for a message over
/// [`MAX_CLIENT_MESSAGE_BYTES`], 1002 for anything else the client got wrong. (If the
/// connection itself failed, sending it fails too, which is harmless.)
#[must_use]
pub fn close_for_read_error(error: axum::Error) -> Message {
    use tokio_tungstenite::tungstenite::Error;
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(_)) => close(
            close_code::SIZE,
            "messages to the node are limited to 64 KiB; it only expects pings and close",
        ),
        _ => close(close_code::PROTOCOL, "unreadable WebSocket frame"),
    }
}
