//! A client of Blueprint's HTTP API (feature `client`; no fjall).

use crate::wire::{
    CreatedToken, KvHistory, KvList, NewToken, Registration, ServiceInfo, ServiceList, TokenList,
};

pub use draft_http::ClientError;

/// A value read from the KV store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The key's revision (its `ETag`).
    pub revision: u64,
}

/// A Blueprint client for one node, with the token it sends, if any.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

fn at_query(at: Option<&str>) -> String {
    at.map(|a| format!("at={}", encode(a))).unwrap_or_default()
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// A client of the node at `base` (for example `http://127.0.0.1:7070`).
    #[must_use]
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// This client, sending `token` as `Authorization: Bearer` with every request (`None`:
    /// no token, for a node that does not check them).
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Trusts the certificate authority in `pem` (PEM, one or more certificates) besides the
    /// public ones, for an `https://` node with a private certificate.
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
        Ok(self)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| ClientError::Connect {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(ClientError::from_answer(status, &text))
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `GET /v1/services[?at=]`.
    pub async fn services(&self, at: Option<&str>) -> Result<ServiceList, ClientError> {
        self.json(&format!("/v1/services?{}", at_query(at))).await
    }

    /// `GET /v1/services/{service}[?at=]`.
    pub async fn service(
        &self,
        service: &str,
        at: Option<&str>,
    ) -> Result<ServiceInfo, ClientError> {
        self.json(&format!(
            "/v1/services/{}?{}",
            encode(service),
            at_query(at)
        ))
        .await
    }

    /// `GET /v1/kv/{key}[?at=]`.
    pub async fn get(&self, key: &str, at: Option<&str>) -> Result<Value, ClientError> {
        let url = format!("{}/v1/kv/{}?{}", self.base, encode(key), at_query(at));
        let response = self.send(self.http.get(url)).await?;
        let revision = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok())
            .ok_or_else(|| ClientError::Protocol("missing ETag".into()))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .to_vec();
        Ok(Value { bytes, revision })
    }

    /// `PUT /v1/kv/{key}`, with `If-Match` when `if_revision` is given; returns the revision.
    pub async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        if_revision: Option<u64>,
    ) -> Result<u64, ClientError> {
        let mut request = self
            .http
            .put(format!("{}/v1/kv/{}", self.base, encode(key)))
            .body(value);
        if let Some(rev) = if_revision {
            request = request.header("if-match", format!("\"{rev}\""));
        }
        let body: serde_json::Value = self
            .send(request)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        body["revision"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("missing revision".into()))
    }

    /// `DELETE /v1/kv/{key}`; returns the revision.
    pub async fn delete(&self, key: &str) -> Result<Option<u64>, ClientError> {
        let body: serde_json::Value = self
            .send(
                self.http
                    .delete(format!("{}/v1/kv/{}", self.base, encode(key))),
            )
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(body["revision"].as_u64())
    }

    /// `GET /v1/kv?prefix=&after=&limit=&at=`.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        at: Option<&str>,
    ) -> Result<KvList, ClientError> {
        let mut query = format!("prefix={}&limit={limit}", encode(prefix));
        if let Some(after) = after {
            query = format!("{query}&after={}", encode(after));
        }
        if let Some(at) = at {
            query = format!("{query}&{}", at_query(Some(at)));
        }
        self.json(&format!("/v1/kv?{query}")).await
    }

    /// `GET /v1/kv/{key}/history[?at=]`, every page of it: the key's whole history.
    pub async fn history(&self, key: &str, at: Option<&str>) -> Result<KvHistory, ClientError> {
        let base = format!("/v1/kv/{}/history?limit=1000&{}", encode(key), at_query(at));
        let mut history: KvHistory = self.json(&base).await?;
        while let Some(after) = history.next_after.take() {
            let page: KvHistory = self.json(&format!("{base}&after={after}")).await?;
            history.changes.extend(page.changes);
            history.next_after = page.next_after;
        }
        Ok(history)
    }

    /// `PUT /v1/services/{service}/instances/{instance}`: registers (or replaces) an
    /// instance and starts its lease; returns the registration's revision.
    pub async fn register(
        &self,
        service: &str,
        instance: &str,
        registration: &Registration,
    ) -> Result<u64, ClientError> {
        let url = self.instance_url(service, instance);
        let body: serde_json::Value = self
            .send(self.http.put(url).json(registration))
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        body["revision"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("missing revision".into()))
    }

    /// `POST /v1/services/{service}/instances/{instance}/heartbeat`: renews the lease.
    /// `Ok(false)` when the node does not know the instance (never registered, or its lease
    /// lapsed): register again.
    pub async fn heartbeat(&self, service: &str, instance: &str) -> Result<bool, ClientError> {
        let url = format!("{}/heartbeat", self.instance_url(service, instance));
        match self.send(self.http.post(url)).await {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/services/{service}/instances/{instance}`; `Ok(false)` if it was not
    /// registered.
    pub async fn deregister(&self, service: &str, instance: &str) -> Result<bool, ClientError> {
        let url = self.instance_url(service, instance);
        match self.send(self.http.delete(url)).await {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `…/v1/services/{service}/instances/{instance}`.
    fn instance_url(&self, service: &str, instance: &str) -> String {
        format!(
            "{}/v1/services/{}/instances/{}",
            self.base,
            encode(service),
            encode(instance)
        )
    }

    /// The base URL of the node (without a trailing `/`).
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<serde_json::Value, ClientError> {
        self.json("/v1/status").await
    }

    /// `POST /v1/tokens`: makes a token; the answer holds its secret, shown this once.
    pub async fn create_token(&self, new: &NewToken) -> Result<CreatedToken, ClientError> {
        let url = format!("{}/v1/tokens", self.base);
        self.send(self.http.post(url).json(new))
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `GET /v1/tokens[?at=]`: every token, never a secret.
    pub async fn tokens(&self, at: Option<&str>) -> Result<TokenList, ClientError> {
        self.json(&format!("/v1/tokens?{}", at_query(at))).await
    }

    /// `DELETE /v1/tokens/{name}`: revokes a token; returns the revocation's revision.
    pub async fn revoke_token(&self, name: &str) -> Result<u64, ClientError> {
        let url = format!("{}/v1/tokens/{}", self.base, encode(name));
        let body: serde_json::Value = self
            .send(self.http.delete(url))
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        body["revision"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("missing revision".into()))
    }
}
