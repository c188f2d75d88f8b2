//! [`Limits`]: what one listener allows its clients, and [`Role`]: what a request past its
//! deadline is answered with.

use std::time::Duration;

/// Limits on the clients of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most connections open at once, WebSockets included (they count until they close).
    pub max_connections: usize,
    /// The most connections open at once from one client address (an IPv4 address, or an
    /// IPv6 /64, which is what one subscriber is given). One more is closed as it is accepted.
    pub max_connections_per_address: usize,
    /// The most WebSockets open at once (they also count as connections); one more upgrade
    /// is answered 503 `too_many_connections`.
    pub max_websockets: usize,
    /// How long a client has to send a request's headers, from the moment the connection
    /// waits for them (so also the longest a keep-alive connection stays idle).
    pub header_read_timeout: Duration,
    /// How long a client has to send a request's body, from the end of its headers: later,
    /// the request is answered 408 `request_timeout` and the connection closed.
    pub body_read_timeout: Duration,
    /// How long a request may take until its response starts: later, it is answered as
    /// [`Role`] says. A WebSocket is past this once it is upgraded, a streamed response once
    /// its headers are sent; a handler may allow a request more with
    /// [`Deadline::extend_to`](crate::Deadline::extend_to).
    pub request_timeout: Duration,
    /// Whether the listener answers requests itself or forwards them.
    pub role: Role,
}

/// What a listener does with requests, which decides how one past its deadline is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// It answers them itself (an API): 503 `deadline_exceeded`.
    #[default]
    Origin,
    /// It forwards them upstream (an ingress): 504 `upstream_timeout`.
    Gateway,
}

impl Default for Limits {
    /// 4,096 connections (10,000 needed more descriptors than a common hard limit), 512 of
    /// them per address (an eighth: one address alone cannot fill the listener, and a machine
    /// running `dctl bench` or a 200-consumer fan-out stays well under it), 2,048 WebSockets
    /// (half: they can never take the slots that heartbeats and produce requests need),
    /// 30 s for headers, 30 s for a body (16 MiB, the largest batch, at 4 Mbit/s), 60 s for a
    /// request (twice a route's default upstream timeout).
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 512,
            max_websockets: 2048,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            role: Role::Origin,
        }
    }
}
