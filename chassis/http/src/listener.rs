//! The listener every Draft HTTP server uses (the node's API and ingress, Chassis services):
//! axum routers served by hyper, with the limits that `axum::serve` does not set and a server
//! exposed to clients needs ([`Limits`]):
//!
//! - a deadline for request headers: a client that trickles them (slowloris), or leaves a
//!   keep-alive connection idle that long, is disconnected;
//! - a deadline for the body: a client that trickles one is answered 408 and disconnected;
//! - a deadline for the response to start: 503 (504 on a gateway), so no request holds its
//!   connection for ever; a WebSocket is past it once upgraded;
//! - a cap on open connections, and one per client address: one more is closed as soon as it
//!   is accepted, so a flood of connections (from one address, or from many) cannot exhaust
//!   the process's file descriptors and lock everyone out. A WebSocket keeps counting until
//!   it closes (its slots travel with the stream through the upgrade: `held.rs`);
//! - a cap on WebSockets: one more upgrade is answered 503 before it is upgraded.
//!
//! Requests carry `ConnectInfo<SocketAddr>` (Fuse's `X-Forwarded-For` needs it) and a
//! [`Deadline`]; upgrades (WebSockets) are passed through; on shutdown, idle connections
//! close and in-flight requests finish.

mod held;
mod limits;
mod per_address;
mod refusals;
mod request;
mod timed_body;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};

use self::held::{Held, Slots};
use self::per_address::PerAddress;
use self::refusals::Refusals;
use self::request::Connection;
pub use self::{
    limits::{Limits, Role},
    request::{Deadline, is_websocket_upgrade},
};
use crate::shutdown::Shutdown;
use crate::tls::{PLAIN_ON_TLS, Tls, is_tls_handshake};

/// Serves `app` on `listener` until `shutdown` is triggered, then stops accepting and waits
/// for the open connections to finish their in-flight requests. Connections that were
/// upgraded (WebSockets) are their handlers' to close: they see the same token.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown) {
    serve_tls(listener, app, limits, shutdown, None).await;
}

/// What the accept loop refuses, and what it has refused.
struct Gate {
    open: Arc<Semaphore>,
    per_address: PerAddress,
    over_max: Refusals,
    over_per_address: Refusals,
}

impl Gate {
    fn new(limits: &Limits) -> Self {
        Self {
            open: Arc::new(Semaphore::new(limits.max_connections)),
            per_address: PerAddress::new(limits.max_connections_per_address),
            over_max: Refusals::default(),
            over_per_address: Refusals::default(),
        }
    }

    /// The slots for a connection from `remote`, or `None` (logged, at most every 10 s per
    /// kind) if its address or the listener is at its limit. The address is checked first,
    /// so a client at its own limit takes no slot from anyone else.
    fn admit(&self, remote: SocketAddr, limits: &Limits) -> Option<Slots> {
        let Some(address) = self.per_address.try_acquire(remote.ip()) else {
            if let Some(refused) = self.over_per_address.record(Instant::now()) {
                let limit = limits.max_connections_per_address;
                warn!(%remote, refused, limit, "refusing connections: max_connections_per_address are open from this address");
            }
            return None;
        };
        let Ok(connection) = Arc::clone(&self.open).try_acquire_owned() else {
            if let Some(refused) = self.over_max.record(Instant::now()) {
                let limit = limits.max_connections;
                warn!(%remote, refused, limit, "refusing connections: max_connections are open");
            }
            return None;
        };
        Some(Slots {
            connection,
            address,
            websocket: Arc::new(OnceLock::new()),
        })
    }
}

/// [`serve`], over TLS when `tls` is given: each connection's handshake must finish within
/// the header deadline, and a client that sends plain HTTP gets a plain 400 and is closed.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: Shutdown,
    tls: Option<Tls>,
) {
    let graceful = GracefulShutdown::new();
    let http = http1_builder(limits.header_read_timeout);
    let gate = Gate::new(&limits);
    let websockets = Arc::new(Semaphore::new(limits.max_websockets));
    let websocket_refusals = Arc::new(Refusals::default());
    let mut stopping = std::pin::pin!(shutdown.triggered());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopping => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection aborted before it was accepted:
                // neither is fatal. Back off a little instead of spinning on the error.
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slots) = gate.admit(remote, &limits) else {
            drop(stream);
            continue;
        };
        let watcher = graceful.watcher();
        let stop = shutdown.triggered();
        let connection = Arc::new(Connection {
            remote,
            limits,
            websockets: Arc::clone(&websockets),
            websocket_refusals: Arc::clone(&websocket_refusals),
            upgraded: Arc::clone(&slots.websocket),
        });
        let (app, http, tls) = (app.clone(), http.clone(), tls.clone());
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte of a request; a client that
            // connects and sends nothing is bounded here, and does not hold up a shutdown.
            // (`peek`, not `readable`: readiness can be reported before any byte arrives.)
            let mut first = [0u8; 1];
            let first_byte =
                tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first));
            tokio::select! {
                peeked = first_byte => match peeked {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return, // idle past the deadline, closed, or failed
                },
                () = stop => return,
            }
            // Small request/response exchanges: do not let Nagle's algorithm hold them back.
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    serve_connection(Held::new(stream, slots), connection, app, &http, watcher)
                        .await;
                }
                Some(tls) => {
                    if !is_tls_handshake(first[0]) {
                        let mut stream = stream;
                        let _ = stream.write_all(PLAIN_ON_TLS).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    let accepted = tokio::time::timeout(
                        limits.header_read_timeout,
                        tls.acceptor.accept(stream),
                    )
                    .await;
                    match accepted {
                        Ok(Ok(stream)) => {
                            let stream = Held::new(stream, slots);
                            serve_connection(stream, connection, app, &http, watcher).await;
                        }
                        Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection until it closes (or, on shutdown, until its in-flight request is
/// answered). The stream holds the connection's slots: an upgrade takes it, and them, along.
async fn serve_connection<S>(
    stream: S,
    connection: Arc<Connection>,
    app: Router,
    http: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let remote = connection.remote;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (connection, app) = (Arc::clone(&connection), app.clone());
        async move { Ok::<_, std::convert::Infallible>(connection.handle(app, request).await) }
    });
    let served = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(served.into_owned()).await {
        debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// HTTP/1.1 with upgrades and the header read deadline; built once per listener.
fn http1_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http1_only()
}

#[cfg(test)]
mod tests;
