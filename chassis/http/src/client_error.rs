//! What can go wrong for a client of a Draft node, whichever API it calls.

use crate::body::ErrorBody;

/// What can go wrong talking to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The node answered with an error (its JSON error body). Retryable when `status` is 503.
    Api {
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The node's message.
        message: String,
    },
    /// Retryable: the node could not be reached, or the connection failed.
    Connect {
        /// The node's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Not retryable: the node's answer was not what the API promises.
    Protocol(String),
}

impl ClientError {
    /// The error for an answer with a status that is not a success and this body: the node's
    /// JSON error if the body is one, else the body itself under the code `http_error`.
    #[must_use]
    pub fn from_answer(status: u16, body: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => Self::Api {
                status,
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => Self::Api {
                status,
                code: "http_error".into(),
                message: body.trim().to_owned(),
            },
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api {
                status,
                code,
                message,
            } => write!(f, "{message} ({code}, HTTP {status})"),
            Self::Connect { url, reason } => write!(f, "cannot reach the node at {url}: {reason}"),
            Self::Protocol(what) => write!(f, "unexpected answer from the node: {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_the_json_body_keeps_code_and_message() {
        let e = ClientError::from_answer(
            404,
            r#"{"error":{"code":"not_found","message":"key a does not exist"}}"#,
        );
        assert_eq!(
            e,
            ClientError::Api {
                status: 404,
                code: "not_found".into(),
                message: "key a does not exist".into()
            }
        );
        assert_eq!(e.to_string(), "key a does not exist (not_found, HTTP 404)");
    }

    #[test]
    fn any_other_body_is_an_http_error() {
        let e = ClientError::from_answer(400, "  bad request\n");
        assert_eq!(
            e,
            ClientError::Api {
                status: 400,
                code: "http_error".into(),
                message: "bad request".into()
            }
        );
    }
}
