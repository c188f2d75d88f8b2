//! Requests to JetStream: one attempt, the classification of its failure, and the retries
//! until the deadline that turn an election into a wait rather than an error.

use std::future::Future;
use std::time::Duration;

use async_nats::{Client, HeaderMap, Message, Request, RequestErrorKind};
use bytes::Bytes;
use serde_json::Value;

use crate::error::{Error, Result};

/// The first pause between two attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// JetStream's error codes that Draft acts on.
pub(crate) mod codes {
    /// The stream does not exist.
    pub(crate) const STREAM_NOT_FOUND: u32 = 10059;
    /// No message at that sequence or time.
    pub(crate) const NO_MESSAGE: u32 = 10037;
    /// `Nats-Expected-Last-Sequence` did not match.
    pub(crate) const WRONG_LAST_SEQUENCE: u32 = 10071;
    /// The stream exists with another configuration.
    pub(crate) const STREAM_NAME_IN_USE: u32 = 10058;
    /// An atomic batch lost messages (a leader change while it was staged).
    pub(crate) const BATCH_INCOMPLETE: u32 = 10176;
    /// An atomic batch has more messages than the server takes.
    pub(crate) const BATCH_TOO_LARGE: u32 = 10199;
    /// An atomic batch repeats a message id already in the stream.
    pub(crate) const BATCH_DUPLICATE: u32 = 10201;
    /// Too many atomic batches in flight on the stream.
    pub(crate) const BATCH_TOO_MANY_INFLIGHT: u32 = 10210;
    /// A message with the same id is being stored right now (an earlier attempt of a retry).
    pub(crate) const DUPLICATE_IN_PROCESS: u32 = 10158;
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Step {
    /// Worth another attempt until the deadline: no responders, a timeout, a lost connection,
    /// a 503 from JetStream.
    Transient(String),
    /// Final.
    Fail(Error),
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Self::Fail(e)
    }
}

/// An API error in a JetStream reply.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) err_code: u32,
    pub(crate) description: String,
}

impl ApiError {
    /// Whether JetStream says to try again later (a 503, a batch lost or held back by a
    /// leader change or the in-flight limit, an earlier attempt of the same message still
    /// being stored).
    pub(crate) fn is_transient(&self) -> bool {
        self.code == 503
            || matches!(
                self.err_code,
                codes::BATCH_INCOMPLETE
                    | codes::BATCH_TOO_MANY_INFLIGHT
                    | codes::DUPLICATE_IN_PROCESS
            )
    }

    /// This error as the backend's, for `op` on `stream`.
    pub(crate) fn refused(&self, op: &'static str, stream: &str) -> Error {
        Error::Refused {
            op,
            stream: stream.to_owned(),
            code: self.code,
            err_code: self.err_code,
            description: self.description.clone(),
        }
    }
}

/// The `error` of a JetStream reply, if it has one.
pub(crate) fn api_error(reply: &Value) -> Option<ApiError> {
    let error = reply.get("error")?;
    Some(ApiError {
        code: error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        err_code: error
            .get("err_code")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
        description: error
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

/// The client and the timings every request uses.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    pub(crate) client: Client,
    pub(crate) timeout: Duration,
    pub(crate) deadline: Duration,
}

impl Api {
    /// Sends one request and waits for its reply (one attempt) for `timeout`.
    pub(crate) async fn request_within(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, Step> {
        let mut request = Request::new().payload(payload).timeout(Some(timeout));
        if let Some(headers) = headers {
            request = request.headers(headers);
        }
        self.client
            .send_request(subject, request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::MaxPayloadExceeded => {
                    Step::Fail(Error::Log(draft_log::Error::TooLarge {
                        bytes: 0,
                        limit: self.client.server_info().max_payload as u64,
                    }))
                }
                RequestErrorKind::InvalidSubject => Step::Fail(Error::Protocol {
                    op: "request",
                    reason: e.to_string(),
                }),
                _ => Step::Transient(e.to_string()),
            })
    }

    /// One JetStream API call (`$JS.API.…`) with a JSON body: its reply as JSON, a transient
    /// failure, or the API error (`Err(Ok(..))`).
    pub(crate) async fn call_once(
        &self,
        subject: &str,
        body: &Value,
    ) -> Result<std::result::Result<Value, ApiError>, Step> {
        self.call_once_within(subject, body, self.timeout).await
    }

    /// [`Api::call_once`], waiting at most `timeout` for the reply.
    pub(crate) async fn call_once_within(
        &self,
        subject: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<std::result::Result<Value, ApiError>, Step> {
        let payload = Bytes::from(body.to_string());
        let reply = self
            .request_within(subject.to_owned(), None, payload, timeout)
            .await?;
        let value: Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            Step::Fail(Error::Protocol {
                op: "api call",
                reason: format!("{subject}: reply is not JSON: {e}"),
            })
        })?;
        match api_error(&value) {
            Some(e) if e.is_transient() => Err(Step::Transient(e.description)),
            Some(e) => Ok(Err(e)),
            None => Ok(Ok(value)),
        }
    }

    /// [`Api::call_once`] retried until the deadline.
    pub(crate) async fn call(
        &self,
        op: &'static str,
        stream: &str,
        subject: &str,
        body: &Value,
    ) -> Result<std::result::Result<Value, ApiError>> {
        self.retrying(op, stream, || self.call_once(subject, body))
            .await
    }

    /// Runs `attempt` until it succeeds or fails for good, or until the deadline has passed
    /// since the first attempt: then [`Error::Unavailable`] with the last reason.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        op: &'static str,
        stream: &str,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Step>>,
    {
        let started = tokio::time::Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Step::Fail(e)) => return Err(e),
                Err(Step::Transient(reason)) => {
                    let waited = started.elapsed();
                    if waited >= self.deadline {
                        tracing::warn!(op, stream, reason, "JetStream unavailable");
                        return Err(Error::Unavailable {
                            op,
                            stream: stream.to_owned(),
                            waited_ms: waited.as_millis() as u64,
                            reason,
                        });
                    }
                    tracing::debug!(op, stream, reason, "JetStream busy, retrying");
                    tokio::time::sleep(pause.min(self.deadline.saturating_sub(waited))).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_read_and_classified() {
        let reply: Value = serde_json::json!({
            "type": "io.nats.jetstream.api.v1.stream_info_response",
            "error": {"code": 404, "err_code": 10059, "description": "stream not found"}
        });
        let e = api_error(&reply).expect("an error");
        assert_eq!((e.code, e.err_code), (404, codes::STREAM_NOT_FOUND));
        assert!(!e.is_transient());
        let busy = serde_json::json!({"error": {"code": 503, "err_code": 10008,
            "description": "JetStream system temporarily unavailable"}});
        assert!(api_error(&busy).expect("error").is_transient());
        let inflight = serde_json::json!({"error": {"code": 429, "err_code": 10210,
            "description": "atomic publish too many inflight"}});
        assert!(api_error(&inflight).expect("error").is_transient());
        assert!(api_error(&serde_json::json!({"stream": "s", "seq": 1})).is_none());
    }
}
