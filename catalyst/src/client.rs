//! A client of Catalyst's HTTP and WebSocket API (feature `client`; no fjall).

mod producer;
mod tls;

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::wire::{
    BATCH, ChannelInfo, ChannelList, NEXT_OFFSET_HEADER, ProduceResponse, STRUCTURED, SUBPROTOCOL,
};

pub use draft_http::ClientError;

/// A client WebSocket to a node.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
pub use producer::{Producer, ProducerOptions};

mod groups;
pub use groups::GroupConsumer;

/// A filter and start position for reading a channel.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `earliest`, `latest`, an offset or an RFC 3339 time (`None`: the server's default).
    pub from: Option<String>,
    /// `type` filters (exact, or prefix with a trailing `*`).
    pub types: Vec<String>,
    /// `source` filters.
    pub sources: Vec<String>,
}

impl ReadOptions {
    fn query(&self, extra: &[(&str, String)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(from) = &self.from {
            q.append_pair("from", from);
        }
        for t in &self.types {
            q.append_pair("type", t);
        }
        for s in &self.sources {
            q.append_pair("source", s);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.finish()
    }
}

/// A page of events from `GET …/events`.
#[derive(Debug, Clone)]
pub struct Page {
    /// The events, as JSON objects with `draftchannel` and `draftoffset`.
    pub events: Vec<serde_json::Value>,
    /// Where the next page starts.
    pub next_offset: u64,
}

/// Reads a channel page by page, up to its end as it was when the pager was made.
#[derive(Debug)]
pub struct Pager<'a> {
    client: &'a Client,
    channel: String,
    options: ReadOptions,
    end: u64,
    done: bool,
}

impl Pager<'_> {
    /// The next page of events (oldest first), or `None` once the end is reached.
    pub async fn next_page(&mut self) -> Result<Option<Vec<serde_json::Value>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let page = self.client.page(&self.channel, &self.options, 1000).await?;
        let stuck = page.events.is_empty()
            && self.options.from.as_deref() == Some(&page.next_offset.to_string());
        self.done = page.next_offset >= self.end || stuck;
        self.options.from = Some(page.next_offset.to_string());
        Ok(Some(page.events))
    }
}

/// A Catalyst client for one node, with the token it sends, if any.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// What `wss://` sockets trust when a CA was given ([`Client::with_ca`]); `None`: the
    /// public roots.
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the node at `base` (for example `http://127.0.0.1:7070`).
    #[must_use]
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            token: None,
            tls: None,
        }
    }

    /// This client, sending `token` as `Authorization: Bearer` with every request and
    /// WebSocket upgrade (`None`: no token, for a node that does not check them).
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Trusts the certificate authority in `pem` (PEM, one or more certificates) besides the
    /// public ones, for an `https://` node with a private certificate: over HTTP and over its
    /// `wss://` WebSockets.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] if `pem` holds no usable certificate.
    pub fn with_ca(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Protocol(format!("the CA file: {e}")))?;
        if certificates.is_empty() {
            return Err(ClientError::Protocol(
                "the CA file holds no certificate".into(),
            ));
        }
        let mut builder = reqwest::Client::builder();
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
        self.http = builder
            .build()
            .map_err(|e| ClientError::Protocol(format!("the CA file: {e}")))?;
        self.tls = Some(tls::trusting(pem)?);
        Ok(self)
    }

    /// How this client's WebSockets are encrypted on a `wss://` URL (`None`: the public
    /// roots), for a caller that opens its own WebSockets to the same node.
    #[must_use]
    pub fn websocket_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.tls.clone().map(tokio_tungstenite::Connector::Rustls)
    }

    /// A request with the client's token.
    pub(crate) fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The `Authorization` header of a WebSocket upgrade, if the client has a token.
    pub(crate) fn authorization(&self) -> Option<tungstenite::http::HeaderValue> {
        let token = self.token.as_ref()?;
        tungstenite::http::HeaderValue::from_str(&format!("Bearer {token}")).ok()
    }

    /// Opens a `cloudevents.json` WebSocket to `path_and_query`; a refused upgrade is the
    /// node's error answer.
    pub(crate) async fn open_socket(&self, path_and_query: &str) -> Result<Socket, ClientError> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let mut request = format!("{ws_base}{path_and_query}")
            .into_client_request()
            .map_err(|e| self.connect_error(&e))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Some(value) = self.authorization() {
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = Box::pin(tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            true,
            self.websocket_connector(),
        ))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                ClientError::from_answer(response.status().as_u16(), &body)
            }
            e => self.connect_error(&e),
        })?;
        Ok(socket)
    }

    fn connect_error(&self, e: &dyn std::fmt::Display) -> ClientError {
        ClientError::Connect {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(ClientError::from_answer(status, &text))
    }

    /// Sends one structured-mode event (a JSON object) to `channel`.
    pub async fn produce(
        &self,
        channel: &str,
        event: &serde_json::Value,
    ) -> Result<ProduceResponse, ClientError> {
        self.post_events(channel, STRUCTURED, event).await
    }

    /// Sends `events` to `channel` as one batch (`application/cloudevents-batch+json`):
    /// appended atomically, all or none; the answer lists their offsets in order.
    pub async fn produce_batch(
        &self,
        channel: &str,
        events: &[serde_json::Value],
    ) -> Result<ProduceResponse, ClientError> {
        self.post_events(channel, BATCH, &events).await
    }

    async fn post_events(
        &self,
        channel: &str,
        content_type: &'static str,
        body: &impl serde::Serialize,
    ) -> Result<ProduceResponse, ClientError> {
        let url = format!("{}/v1/channels/{channel}/events", self.base);
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = self
            .request(reqwest::Method::POST, url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.connect_error(&e))?;
        Self::check(response)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `GET /v1/channels`.
    pub async fn channels(&self) -> Result<ChannelList, ClientError> {
        self.get_json(&format!("{}/v1/channels", self.base)).await
    }

    /// `GET /v1/channels/{channel}`.
    pub async fn channel(&self, channel: &str) -> Result<ChannelInfo, ClientError> {
        self.get_json(&format!("{}/v1/channels/{channel}", self.base))
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ClientError> {
        let response = self
            .request(reqwest::Method::GET, url.to_owned())
            .send()
            .await
            .map_err(|e| self.connect_error(&e))?;
        Self::check(response)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// One page of `channel` (`GET …/events`).
    pub async fn page(
        &self,
        channel: &str,
        options: &ReadOptions,
        limit: usize,
    ) -> Result<Page, ClientError> {
        let query = options.query(&[("limit", limit.to_string())]);
        let url = format!("{}/v1/channels/{channel}/events?{query}", self.base);
        let response = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|e| self.connect_error(&e))?;
        let response = Self::check(response).await?;
        let next_offset = response
            .headers()
            .get(NEXT_OFFSET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Protocol(format!("missing {NEXT_OFFSET_HEADER} header")))?;
        let events = response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Page {
            events,
            next_offset,
        })
    }

    /// A pager over `channel` from `options.from` to its current end.
    pub async fn pager(
        &self,
        channel: &str,
        options: ReadOptions,
    ) -> Result<Pager<'_>, ClientError> {
        let end = self
            .channel(channel)
            .await?
            .last_offset
            .map_or(0, |o| o + 1);
        Ok(Pager {
            client: self,
            channel: channel.to_owned(),
            options,
            end,
            done: false,
        })
    }

    /// Opens a consumer WebSocket and yields each event's text as it arrives. The stream ends
    /// when the node closes the connection; a close with an error code is an error item.
    pub async fn consume(
        &self,
        channel: &str,
        options: &ReadOptions,
    ) -> Result<BoxStream<'static, Result<String, ClientError>>, ClientError> {
        let path = format!("/v1/channels/{channel}/consume?{}", options.query(&[]));
        let socket = self.open_socket(&path).await?;
        Ok(socket
            .filter_map(|message| async move {
                match message {
                    Ok(Message::Text(text)) => Some(Ok(text.to_string())),
                    Ok(Message::Close(Some(frame)))
                        if u16::from(frame.code) != 1000 && u16::from(frame.code) != 1001 =>
                    {
                        Some(Err(ClientError::Protocol(format!(
                            "consumer closed: {} ({})",
                            frame.reason,
                            u16::from(frame.code)
                        ))))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(ClientError::Protocol(e.to_string()))),
                }
            })
            .boxed())
    }
}
