//! The listener every Draft HTTP server uses (the node's API and ingress, Chassis services):
//! axum routers served by hyper, with two limits that `axum::serve` does not set and a server
//! exposed to clients needs:
//!
//! - a deadline for request headers: a client that trickles them (slowloris), or leaves a
//!   keep-alive connection idle that long, is disconnected;
//! - a cap on open connections: one more is closed as soon as it is accepted, so a flood of
//!   connections cannot exhaust the process's file descriptors and lock everyone out. A
//!   connection upgraded to a WebSocket leaves hyper, and the count, once upgraded.
//!
//! Requests carry `ConnectInfo<SocketAddr>` (Fuse's `X-Forwarded-For` needs it); upgrades
//! (WebSockets) are passed through; on shutdown, idle connections close and in-flight requests
//! finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::shutdown::Shutdown;
use crate::tls::{PLAIN_ON_TLS, Tls, is_tls_handshake};

/// Limits on the clients of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most connections open at once.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, from the moment the connection
    /// waits for them (so also the longest a keep-alive connection stays idle).
    pub header_read_timeout: Duration,
}

/// How often a refused connection is logged, at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

impl Default for Limits {
    /// 4,096 connections (10,000 needed more descriptors than a common hard limit), 30 s.
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is triggered, then stops accepting and waits
/// for the open connections to finish their in-flight requests. Connections that were
/// upgraded (WebSockets) are their handlers' to close: they see the same token.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown) {
    serve_tls(listener, app, limits, shutdown, None).await;
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
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused = Refusals::default();
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
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            refused.record(remote, limits.max_connections);
            drop(stream);
            continue;
        };
        let watcher = graceful.watcher();
        let stop = shutdown.triggered();
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
                None => serve_connection(stream, remote, app, &http, watcher).await,
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
                            serve_connection(stream, remote, app, &http, watcher).await;
                        }
                        Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection until it closes (or, on shutdown, until its in-flight request is
/// answered).
async fn serve_connection<S>(
    stream: S,
    remote: SocketAddr,
    app: Router,
    http: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request.map(axum::body::Body::new)
    });
    let connection = http
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(connection.into_owned()).await {
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

/// Connections refused for being over the cap, logged at most every [`REFUSAL_LOG_EVERY`].
#[derive(Default)]
struct Refusals {
    since_logged: u64,
    logged: Option<Instant>,
}

impl Refusals {
    fn record(&mut self, remote: SocketAddr, limit: usize) {
        self.since_logged += 1;
        if self
            .logged
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY)
        {
            warn!(
                %remote,
                refused = self.since_logged,
                limit,
                "refusing connections: max_connections are open"
            );
            self.since_logged = 0;
            self.logged = Some(Instant::now());
        }
    }
}
