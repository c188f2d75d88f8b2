//! The service's link to its node: the HTTP clients of Blueprint and Catalyst and the
//! WebSockets, all with the service's token (`DRAFT_TOKEN`) when it has one.

use draft_http::ClientError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A WebSocket to the node.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where the node is and how to talk to it.
#[derive(Debug, Clone)]
pub(crate) struct NodeLink {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
    pub(crate) blueprint: draft_blueprint::client::Client,
    pub(crate) catalyst: draft_catalyst::client::Client,
}

impl NodeLink {
    /// The link to the node at `url`, with `token`, trusting the certificate authority in
    /// `ca` (PEM) besides the public roots.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] if `ca` holds no usable certificate.
    pub(crate) fn new(
        url: &str,
        token: Option<String>,
        ca: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let mut blueprint = draft_blueprint::client::Client::new(url).with_token(token.clone());
        let mut catalyst = draft_catalyst::client::Client::new(url).with_token(token.clone());
        if let Some(pem) = ca {
            blueprint = blueprint.with_ca(pem)?;
            catalyst = catalyst.with_ca(pem)?;
        }
        Ok(Self {
            url: url.to_owned(),
            blueprint,
            catalyst,
            token,
        })
    }

    /// Opens a WebSocket to `path_and_query` (with the bearer token, if any).
    pub(crate) async fn websocket(&self, path_and_query: &str) -> Result<Socket, ClientError> {
        let url = format!("{}{path_and_query}", self.url.replacen("http", "ws", 1));
        let connect_error = |reason: String| ClientError::Connect {
            url: self.url.clone(),
            reason,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| connect_error(e.to_string()))?;
        if let Some(token) = &self.token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            request.headers_mut().insert("authorization", value);
        }
        let connector = self.catalyst.websocket_connector();
        match Box::pin(tokio_tungstenite::connect_async_tls_with_config(
            request, None, true, connector,
        ))
        .await
        {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                Err(ClientError::from_answer(response.status().as_u16(), &body))
            }
            Err(e) => Err(connect_error(e.to_string())),
        }
    }
}
