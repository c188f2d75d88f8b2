//! One keep-alive HTTP/1.1 connection for the produce load generators, on hyper directly.
//!
//! The load generator shares the machine with the node it measures, so its own cost per request
//! matters: with reqwest (URL parsing, header maps and pool bookkeeping per request) it took
//! ~22 µs of CPU a request, about two thirds of what the node spends serving it.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one URL, opened on first use and reopened after a failure.
pub(super) struct Conn {
    /// `host:port` to connect to (and the `Host` header).
    authority: String,
    host: HeaderValue,
    path: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection for POSTs to `url` (`http://host:port/path`).
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        let host = parsed.host_str().context("the URL has no host")?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        Ok(Self {
            host: HeaderValue::from_str(&authority).context("invalid host")?,
            authority,
            path: parsed.path().to_owned(),
            sender: None,
        })
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot connect to {}", self.authority))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        // The connection task ends when the sender is dropped or the peer closes.
        tokio::spawn(connection);
        Ok(sender)
    }

    /// POSTs `body`; returns the status and the answer's body. On any failure (or timeout) the
    /// connection is dropped, and the next call opens a new one.
    pub(super) async fn post(
        &mut self,
        body: String,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body, content_type))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}")))
    }

    async fn exchange(
        &mut self,
        body: String,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        // Taken out while in use, and put back only after a whole exchange succeeded.
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        sender.ready().await.context("the connection closed")?;
        let request = Request::post(self.path.as_str())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
            .body(Full::new(Bytes::from(body)))
            .context("build the request")?;
        let response = sender
            .send_request(request)
            .await
            .context("send the request")?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .context("read the answer")?
            .to_bytes();
        self.sender = Some(sender);
        Ok((status, answer))
    }
}
