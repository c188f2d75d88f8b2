//! The connector Fuse dials upstreams with: the upstream address policy
//! ([`UpstreamPolicy`]) checked on every new connection, after resolving, with the port.
//!
//! Registration checks an instance's address once; this checks it again each time a
//! connection is opened, so a host name that resolves elsewhere later (DNS rebinding), or an
//! address registered before the node listened where it listens now, still never reaches a
//! refused address. Pooled connections skip it, so it costs nothing per request.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Uri;
use draft_blueprint::UpstreamPolicy;
use draft_blueprint::upstream::resolve;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::warn;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An [`HttpConnector`] that only dials addresses the policy allows.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    inner: HttpConnector,
    policy: Arc<UpstreamPolicy>,
}

impl GuardedConnector {
    pub(crate) fn new(inner: HttpConnector, policy: UpstreamPolicy) -> Self {
        Self {
            inner,
            policy: Arc::new(policy),
        }
    }
}

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (mut inner, policy) = (self.inner.clone(), Arc::clone(&self.policy));
        Box::pin(async move {
            let host = uri.host().ok_or("the upstream URI has no host")?;
            let address = format!("{host}:{}", uri.port_u16().unwrap_or(80));
            let mut last: BoxError = format!("{address} resolves to no address").into();
            for addr in resolve(&address).await? {
                if let Err(why) = policy.check(addr) {
                    warn!(%address, %addr, reason = %why, "upstream address refused");
                    last = format!("{address} resolves to {addr}, which is {why}").into();
                    continue;
                }
                match inner.call(dial(addr)).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = e.into(),
                }
            }
            Err(last)
        })
    }
}

/// The URI that dials exactly `addr` (so the inner connector resolves nothing).
fn dial(addr: SocketAddr) -> Uri {
    Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query("/")
        .build()
        .expect("a socket address is a valid authority")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn refused_addresses_are_never_dialed_and_allowed_ones_are() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr");
        let own = UpstreamPolicy::default().with_listener("API", open);
        let connector = GuardedConnector::new(HttpConnector::new(), own);
        let uri: Uri = format!("http://localhost:{}/", open.port())
            .parse()
            .expect("uri");
        let e = connector.clone().oneshot(uri).await.expect_err("refused");
        assert!(e.to_string().contains("the node's own API"), "{e}");
        let e = connector
            .clone()
            .oneshot("http://169.254.169.254/".parse().expect("uri"))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("link-local"), "{e}");
        let allowed = GuardedConnector::new(HttpConnector::new(), UpstreamPolicy::default());
        let uri: Uri = format!("http://127.0.0.1:{}/", open.port())
            .parse()
            .expect("uri");
        assert!(allowed.oneshot(uri).await.is_ok(), "dialed");
    }
}
