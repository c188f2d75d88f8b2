//! The ingress reverse proxy: refuse loops and ambiguous paths, route, pick an instance round
//! robin, forward with the edge headers, fail over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use draft_blueprint::Blueprint;
use draft_http::{ApiError, Cidr, Code, Deadline};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::connector::GuardedConnector;
use crate::forwarding::{Forwarding, is_websocket_upgrade, strip_response};
use crate::hop::{Hop, Loop};
use crate::metrics::{Metrics, Refused};
use crate::path::check_path;
use crate::route::upstream_path;
use crate::table::{RouteEntry, RouteTable};

/// The largest request body Fuse buffers (it buffers so a failed connect can be retried).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Fuse's settings (the node's name comes from Blueprint's, the upstream policy from
/// Blueprint's too).
#[derive(Debug, Clone, Default)]
pub struct FuseConfig {
    /// Peers whose forwarding headers (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) are kept
    /// and appended to (`--trusted-proxies`); everyone else's are replaced.
    pub trusted_proxies: Vec<Cidr>,
}

/// The router: its table, upstream connections, counters.
#[derive(Clone)]
pub struct Fuse {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Arc<RouteTable>>,
    client: Client<GuardedConnector, Full<Bytes>>,
    hop: Hop,
    forwarding: Forwarding,
    /// Round-robin positions by route.
    cursors: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    metrics: Metrics,
}

fn route_key(route: &RouteEntry) -> String {
    format!("{}{}", route.host.as_deref().unwrap_or(""), route.prefix)
}

impl Fuse {
    /// A router whose table follows `blueprint`'s registry (rebuilt on every registry
    /// change), which names itself by Blueprint's node name in `Draft-Hop` and dials only
    /// what Blueprint's upstream policy allows.
    #[must_use]
    pub fn new(blueprint: &Blueprint, config: FuseConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let connector = GuardedConnector::new(connector, blueprint.config().upstream.clone());
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        let fuse = Self {
            inner: Arc::new(Inner {
                table: RwLock::new(Arc::new(blueprint.read(RouteTable::build))),
                client,
                hop: Hop::new(&blueprint.config().node),
                forwarding: Forwarding::new(config.trusted_proxies),
                cursors: Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
            }),
        };
        tokio::spawn(follow(Arc::downgrade(&fuse.inner), blueprint.clone()));
        fuse
    }

    /// The current table.
    #[must_use]
    pub fn table(&self) -> Arc<RouteTable> {
        Arc::clone(
            &self
                .inner
                .table
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Per-route counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn cursor(&self, key: &str) -> Arc<AtomicUsize> {
        let mut cursors = self
            .inner
            .cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(cursors.entry(key.to_owned()).or_default())
    }
}

/// Rebuilds the table whenever the registry changes, until the router is dropped.
async fn follow(inner: std::sync::Weak<Inner>, blueprint: Blueprint) {
    let mut changes = blueprint.subscribe();
    while changes.changed().await.is_ok() {
        let Some(inner) = inner.upgrade() else { return };
        let current = inner
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .revision;
        if blueprint.read(draft_blueprint::Projection::registry_revision) == current {
            continue;
        }
        let table = Arc::new(blueprint.read(RouteTable::build));
        debug!(revision = ?table.revision, routes = table.routes.len(), "routes rebuilt");
        *inner
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
    }
}

/// The ingress listener's app: everything goes through the proxy.
pub fn ingress(fuse: Fuse) -> Router {
    Router::new().fallback(proxy).with_state(fuse)
}

fn error(code: Code, message: impl Into<String>) -> Response {
    ApiError::new(code, message).into_response()
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The handler for every ingress request.
async fn proxy(
    State(fuse): State<Fuse>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    if let Err(why) = fuse.inner.hop.check(request.headers()) {
        fuse.metrics().refused(Refused::Loop);
        let message = match why {
            Loop::Revisited => format!(
                "the request has already passed through this node ({}): its route leads \
                 back here, so it is not forwarded again",
                fuse.inner.hop.name()
            ),
            Loop::TooManyHops => format!(
                "the request has passed through {} ingresses already",
                crate::hop::MAX_HOPS
            ),
        };
        return error(Code::LoopDetected, message);
    }
    if let Err(why) = check_path(request.uri().path()) {
        fuse.metrics().refused(Refused::Path);
        return error(
            Code::InvalidPath,
            format!(
                "the path {:?} has {why}; the ingress does not route ambiguous paths: resolve \
                 them before sending",
                request.uri().path()
            ),
        );
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().host().map(str::to_owned));
    let path = request.uri().path().to_owned();
    let table = fuse.table();
    let Some(route) = table.lookup(host.as_deref(), &path) else {
        return error(
            Code::NoRoute,
            format!("no route for {}{path}", host.unwrap_or_default()),
        );
    };
    let key = route_key(route);
    if route.backends.is_empty() {
        fuse.metrics().record(&key, 503, None);
        return error(
            Code::NoHealthyInstance,
            format!("service {} has no passing instance", route.service),
        );
    }
    let upgrade = is_websocket_upgrade(request.headers());
    let hop = fuse.inner.hop.next(request.headers());
    let headers = fuse
        .inner
        .forwarding
        .request_headers(request.headers(), peer, upgrade, hop);
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let deadline = request.extensions().get::<Deadline>().cloned();
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        return error(Code::TooLarge, "the request body is over 16 MiB");
    };
    let target = upstream_path(&route.prefix, &path_and_query, route.strip_prefix);
    let outgoing = Outgoing {
        method,
        headers,
        target,
        body,
        client_upgrade,
        deadline,
    };
    forward(&fuse, route, &key, outgoing).await
}

/// A request ready to send upstream.
struct Outgoing {
    method: Method,
    headers: HeaderMap,
    target: String,
    body: Bytes,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// The listener's deadline for the response, when served by `draft_http::serve`.
    deadline: Option<Deadline>,
}

/// Sends the request to the route's instances, round robin, failing over on connect errors
/// (and on other errors for idempotent methods).
async fn forward(fuse: &Fuse, route: &RouteEntry, key: &str, outgoing: Outgoing) -> Response {
    let Outgoing {
        method,
        headers,
        target,
        body,
        client_upgrade,
        deadline,
    } = outgoing;
    let timeout = Duration::from_millis(route.timeout_ms);
    let start = fuse.cursor(key).fetch_add(1, Ordering::Relaxed);
    let n = route.backends.len();
    let mut last = error(
        Code::UpstreamUnavailable,
        "no instance accepted the connection",
    );
    for attempt in 0..n {
        let backend = &route.backends[(start + attempt) % n];
        let Ok(uri) = format!("http://{}{target}", backend.address).parse::<Uri>() else {
            last = error(
                Code::BadUpstream,
                format!("instance {} has an invalid address", backend.instance),
            );
            continue;
        };
        let mut upstream = hyper::Request::new(Full::new(body.clone()));
        *upstream.method_mut() = method.clone();
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = headers.clone();
        let began = Instant::now();
        if let Some(deadline) = &deadline {
            // The route's timeout is the upstream's to use, even past the listener's.
            deadline.extend_to(began + timeout);
        }
        match tokio::time::timeout(timeout, fuse.inner.client.request(upstream)).await {
            Ok(Ok(mut response)) => {
                let elapsed = began.elapsed();
                fuse.metrics()
                    .record(key, response.status().as_u16(), Some(elapsed));
                let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                if let (Some(client_side), true) = (client_upgrade, switching) {
                    let upstream_side = hyper::upgrade::on(&mut response);
                    tokio::spawn(splice(client_side, upstream_side));
                }
                let (mut parts, incoming) = response.into_parts();
                strip_response(&mut parts.headers, switching);
                return Response::from_parts(parts, Body::new(incoming));
            }
            Ok(Err(e)) if e.is_connect() => {
                debug!(instance = %backend.instance, error = %e, "connect failed; trying the next instance");
                last = error(
                    Code::UpstreamUnavailable,
                    "no instance accepted the connection",
                );
            }
            Ok(Err(e)) => {
                warn!(instance = %backend.instance, error = %e, "upstream failed");
                last = error(
                    Code::UpstreamError,
                    format!("instance {} failed to answer", backend.instance),
                );
                // The body reached a live upstream: only an idempotent request may go again.
                if !is_idempotent(&method) {
                    break;
                }
            }
            Err(_) => {
                fuse.metrics().record(key, 504, None);
                return error(
                    Code::UpstreamTimeout,
                    format!(
                        "instance {} did not answer within {} ms",
                        backend.instance, route.timeout_ms
                    ),
                );
            }
        }
    }
    fuse.metrics().record(key, last.status().as_u16(), None);
    last
}

/// Copies bytes both ways between an upgraded client connection and its upstream.
async fn splice(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            warn!(error = %e, "websocket upgrade failed");
            return;
        }
    };
    let (mut a, mut b) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        debug!(error = %e, "upgraded connection closed");
    }
}
