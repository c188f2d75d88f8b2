//! Raw TCP clients for the tests of the listeners' limits: connections from a chosen
//! loopback address (Linux answers on all of 127.0.0.0/8, so a test can be two clients), and
//! reads that tell an answer from a closed connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// The `host:port` of a node URL (`http://127.0.0.1:1234`).
///
/// # Panics
/// If the URL does not end in an address.
#[must_use]
pub fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("an http://host:port URL")
}

/// A connection to `url` from `source` (a loopback address such as 127.0.0.2).
///
/// # Panics
/// If it cannot connect.
pub async fn connect_from(source: &str, url: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = source.parse().expect("source address");
    socket.bind(SocketAddr::new(source, 0)).expect("bind");
    socket.connect(addr(url)).await.expect("connect")
}

/// What the server sends until it closes `stream`, and whether it did close it within
/// `limit` (a reset counts as closed).
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Whether the server closes `stream` within `limit` without answering anything: what a
/// refused connection looks like.
pub async fn is_refused(stream: &mut TcpStream, limit: Duration) -> bool {
    let (answer, closed) = read_until_closed(stream, limit).await;
    closed && answer.is_empty()
}
