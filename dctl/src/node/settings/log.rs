//! `[log]`: which engine holds the log, resolved from its layer (pure).

use std::path::PathBuf;
use std::time::Duration;

use draft_log_jetstream::DEFAULT_ACK_TIMEOUT;
use serde::Deserialize;

use crate::node::Error;

/// The default NATS server of the JetStream backend.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// How long a lease keeper's lock holds without renewal, by default: after a keeper is
/// lost, another node takes over within about this long.
pub const DEFAULT_KEEPER_TTL: Duration = Duration::from_secs(10);
/// The shortest keeper lock TTL a setting may ask for.
const MIN_KEEPER_TTL: Duration = Duration::from_secs(1);
/// The shortest and longest ack timeouts a setting may ask for.
const ACK_TIMEOUTS_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// Which engine holds the log, as a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The embedded fjall log in the data directory: the default.
    Fjall,
    /// A NATS JetStream cluster.
    Jetstream,
}

/// `[log]`: the engine and how to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLayer {
    /// `fjall` (default) or `jetstream`.
    pub backend: Option<BackendChoice>,
    /// JetStream: the servers (default `["nats://127.0.0.1:4222"]`).
    pub nats_url: Option<Vec<String>>,
    /// JetStream: a NATS credentials file (default: none).
    pub nats_creds: Option<PathBuf>,
    /// JetStream: how many servers hold each new stream, 1, 3 or 5 (default 3).
    pub replicas: Option<usize>,
    /// JetStream: how long the lease keeper's lock holds without renewal, in milliseconds
    /// (default 10,000, at least 1,000).
    pub keeper_ttl_ms: Option<u64>,
    /// JetStream: how long an append waits for its acknowledgement before it is sent again,
    /// in milliseconds, plus 64 ms a MiB (default 500; 10 to 60,000).
    pub nats_ack_timeout_ms: Option<u64>,
}

impl LogLayer {
    /// This layer over `lower`, field by field.
    #[must_use]
    pub fn over(self, lower: Self) -> Self {
        Self {
            backend: self.backend.or(lower.backend),
            nats_url: self.nats_url.or(lower.nats_url),
            nats_creds: self.nats_creds.or(lower.nats_creds),
            replicas: self.replicas.or(lower.replicas),
            keeper_ttl_ms: self.keeper_ttl_ms.or(lower.keeper_ttl_ms),
            nats_ack_timeout_ms: self.nats_ack_timeout_ms.or(lower.nats_ack_timeout_ms),
        }
    }
}

/// Which engine holds the log, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// The embedded log in the data directory.
    Fjall,
    /// A JetStream cluster.
    JetStream {
        /// Its servers (at least one).
        urls: Vec<String>,
        /// A credentials file to connect with.
        creds: Option<PathBuf>,
        /// Replicas of each new stream.
        replicas: usize,
        /// How long the lease keeper's lock holds without renewal.
        keeper_ttl: Duration,
        /// How long an append waits for its acknowledgement before it is sent again.
        ack_timeout: Duration,
    },
}

impl BackendSettings {
    /// The engine's name, as `/v1/status` shows it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fjall => "fjall",
            Self::JetStream { .. } => "jetstream",
        }
    }

    /// What `GET /v1/status` says of it: `{"kind": "fjall"}`, or for JetStream also its
    /// servers (without any user or password in their URLs) and the replicas of new streams.
    #[must_use]
    pub fn status(&self) -> serde_json::Value {
        match self {
            Self::Fjall => serde_json::json!({"kind": self.name()}),
            Self::JetStream {
                urls,
                replicas,
                keeper_ttl,
                ack_timeout,
                ..
            } => serde_json::json!({
                "kind": self.name(),
                "servers": urls.iter().map(|u| without_userinfo(u)).collect::<Vec<_>>(),
                "replicas": replicas,
                "keeper_ttl_ms": keeper_ttl.as_millis() as u64,
                "ack_timeout_ms": ack_timeout.as_millis() as u64,
            }),
        }
    }
}

/// `url` without the `user:password@` before its host (`nats://a:b@h:4222` → `nats://h:4222`).
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// `[log]` resolved and checked.
pub(crate) fn backend(layer: &LogLayer) -> Result<BackendSettings, Error> {
    let invalid = |what: &str| Err(Error::Settings(what.to_owned()));
    match layer.backend.unwrap_or(BackendChoice::Fjall) {
        BackendChoice::Fjall => Ok(BackendSettings::Fjall),
        BackendChoice::Jetstream => {
            let urls: Vec<String> = layer
                .nats_url
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_NATS_URL.to_owned()])
                .into_iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            if urls.is_empty() {
                return invalid("the JetStream backend needs at least one NATS URL (nats_url)");
            }
            if let Some(bad) = urls.iter().find(|u| u.contains(char::is_whitespace)) {
                return invalid(&format!("NATS URL {bad:?} has a space in it"));
            }
            let replicas = layer.replicas.unwrap_or(3);
            if ![1, 3, 5].contains(&replicas) {
                return invalid("replicas must be 1, 3 or 5");
            }
            let keeper_ttl = layer
                .keeper_ttl_ms
                .map_or(DEFAULT_KEEPER_TTL, Duration::from_millis);
            if keeper_ttl < MIN_KEEPER_TTL {
                return invalid("keeper_ttl_ms must be at least 1000");
            }
            let ack_timeout_ms = layer
                .nats_ack_timeout_ms
                .unwrap_or(DEFAULT_ACK_TIMEOUT.as_millis() as u64);
            if !ACK_TIMEOUTS_MS.contains(&ack_timeout_ms) {
                return invalid("nats_ack_timeout_ms must be from 10 to 60000");
            }
            Ok(BackendSettings::JetStream {
                urls,
                creds: layer.nats_creds.clone(),
                replicas,
                keeper_ttl,
                ack_timeout: Duration::from_millis(ack_timeout_ms),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_names_the_backend_and_never_a_password() {
        assert_eq!(
            BackendSettings::Fjall.status(),
            serde_json::json!({"kind": "fjall"})
        );
        let js = BackendSettings::JetStream {
            urls: vec![
                "nats://app:s3cret@10.0.0.1:4222".into(),
                "tls://token@nats.example:4222/x".into(),
                "127.0.0.1:4222".into(),
            ],
            creds: None,
            replicas: 3,
            keeper_ttl: Duration::from_secs(4),
            ack_timeout: Duration::from_millis(300),
        };
        assert_eq!(
            js.status(),
            serde_json::json!({"kind": "jetstream", "replicas": 3, "keeper_ttl_ms": 4000,
                "ack_timeout_ms": 300, "servers": [
                "nats://10.0.0.1:4222", "tls://nats.example:4222/x", "127.0.0.1:4222"]})
        );
    }

    #[test]
    fn fjall_is_the_default_and_jetstream_is_checked() {
        assert_eq!(
            backend(&LogLayer::default()).expect("default"),
            BackendSettings::Fjall
        );
        let js = LogLayer {
            backend: Some(BackendChoice::Jetstream),
            ..LogLayer::default()
        };
        assert_eq!(
            backend(&js).expect("defaults"),
            BackendSettings::JetStream {
                urls: vec![DEFAULT_NATS_URL.to_owned()],
                creds: None,
                replicas: 3,
                keeper_ttl: DEFAULT_KEEPER_TTL,
                ack_timeout: DEFAULT_ACK_TIMEOUT,
            }
        );
        for (layer, says) in [
            (
                LogLayer {
                    replicas: Some(2),
                    ..js.clone()
                },
                "replicas",
            ),
            (
                LogLayer {
                    nats_url: Some(vec![" ".into()]),
                    ..js.clone()
                },
                "at least one",
            ),
            (
                LogLayer {
                    nats_url: Some(vec!["nats://a b".into()]),
                    ..js.clone()
                },
                "space",
            ),
            (
                LogLayer {
                    keeper_ttl_ms: Some(999),
                    ..js.clone()
                },
                "keeper_ttl_ms",
            ),
            (
                LogLayer {
                    nats_ack_timeout_ms: Some(9),
                    ..js.clone()
                },
                "nats_ack_timeout_ms",
            ),
            (
                LogLayer {
                    nats_ack_timeout_ms: Some(60_001),
                    ..js.clone()
                },
                "nats_ack_timeout_ms",
            ),
        ] {
            let e = backend(&layer).expect_err("invalid");
            assert!(e.to_string().contains(says), "{e}");
        }
        let upper = LogLayer {
            replicas: Some(1),
            ..LogLayer::default()
        };
        let merged = upper.over(js);
        assert_eq!(
            (merged.backend, merged.replicas),
            (Some(BackendChoice::Jetstream), Some(1))
        );
    }
}
