//! The service's `DRAFT_*` environment: where the node is, where to listen, what to
//! register. A pure function of the variables, so it is tested without touching the process
//! environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// The settings a service takes from `DRAFT_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Environment {
    /// `DRAFT_URL`: the node's API (default `http://127.0.0.1:7070`).
    pub url: String,
    /// `DRAFT_TOKEN`: sent as a bearer token.
    pub token: Option<String>,
    /// `DRAFT_CA`: a PEM file of the certificate authority an `https://` node's certificate
    /// comes from, trusted besides the public roots (over HTTP and `wss://`).
    pub ca: Option<PathBuf>,
    /// `DRAFT_SERVICE_ADDR`: where the service listens (default `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// `DRAFT_ADVERTISE`: the `host:port` registered (default: the bound address).
    pub advertise: Option<String>,
    /// `DRAFT_INSTANCE`: the instance id (default generated: `<service>-<pid>-<random>`).
    pub instance: Option<String>,
    /// `DRAFT_CONFIG`: the config file (default `<service>.toml`, if it exists).
    pub config_file: Option<PathBuf>,
    /// `DRAFT_TTL_MS`: the lease TTL, over the builder's.
    pub ttl: Option<Duration>,
    /// `DRAFT_DRAIN_DELAY_MS`: the pause between deregistering and closing the listener,
    /// over the builder's.
    pub drain_delay: Option<Duration>,
    /// `DRAFT_SHUTDOWN_TIMEOUT_MS`: the deadline for draining requests and the running
    /// hook handlers, over the builder's.
    pub shutdown_timeout: Option<Duration>,
    /// `DRAFT_LOG_FORMAT=json`: JSON log lines.
    pub json_logs: bool,
}

impl Environment {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`Error::Setting`] naming the variable whose value cannot be used.
    pub fn from_process() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (a variable's value, `None` if unset; an empty
    /// value counts as unset).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the variable whose value cannot be used.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let url = var("DRAFT_URL").unwrap_or_else(|| "http://127.0.0.1:7070".to_owned());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(setting(
                "DRAFT_URL",
                &url,
                "must start with http:// or https://",
            ));
        }
        let listen = match var("DRAFT_SERVICE_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(v) => v.parse().map_err(|_| {
                setting(
                    "DRAFT_SERVICE_ADDR",
                    &v,
                    "expected host:port, like 127.0.0.1:8000",
                )
            })?,
        };
        let advertise = var("DRAFT_ADVERTISE");
        if let Some(a) = &advertise {
            let port = a.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(p)) if p > 0) {
                return Err(setting(
                    "DRAFT_ADVERTISE",
                    a,
                    "expected host:port with a non-zero port",
                ));
            }
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token: var("DRAFT_TOKEN"),
            ca: var("DRAFT_CA").map(PathBuf::from),
            listen,
            advertise,
            instance: var("DRAFT_INSTANCE"),
            config_file: var("DRAFT_CONFIG").map(PathBuf::from),
            ttl: millis(&var, "DRAFT_TTL_MS")?,
            drain_delay: millis(&var, "DRAFT_DRAIN_DELAY_MS")?,
            shutdown_timeout: millis(&var, "DRAFT_SHUTDOWN_TIMEOUT_MS")?,
            json_logs: var("DRAFT_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
        })
    }
}

fn millis(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Duration>, Error> {
    var(name)
        .map(|v| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| setting(name, &v, "expected a number of milliseconds"))
        })
        .transpose()
}

fn setting(variable: &str, value: &str, reason: &str) -> Error {
    Error::Setting {
        variable: variable.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Environment, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Environment::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let e = env(&[]).expect("defaults");
        assert_eq!(e.url, "http://127.0.0.1:7070");
        assert_eq!(e.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(
            (e.token, e.advertise, e.instance, e.ttl),
            (None, None, None, None)
        );
        assert!(!e.json_logs);
    }

    #[test]
    fn values_are_read_and_empty_ones_ignored() {
        let e = env(&[
            ("DRAFT_URL", "http://10.0.0.1:7070/"),
            ("DRAFT_SERVICE_ADDR", "0.0.0.0:8000"),
            ("DRAFT_ADVERTISE", "orders-1.internal:8000"),
            ("DRAFT_INSTANCE", "i-1"),
            ("DRAFT_TTL_MS", "3000"),
            ("DRAFT_TOKEN", ""),
            ("DRAFT_LOG_FORMAT", "JSON"),
        ])
        .expect("valid");
        assert_eq!(e.url, "http://10.0.0.1:7070");
        assert_eq!(e.listen.port(), 8000);
        assert_eq!(e.advertise.as_deref(), Some("orders-1.internal:8000"));
        assert_eq!(e.instance.as_deref(), Some("i-1"));
        assert_eq!(e.ttl, Some(Duration::from_secs(3)));
        assert_eq!(e.token, None);
        assert!(e.json_logs);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("DRAFT_URL", "127.0.0.1:7070"),
            ("DRAFT_SERVICE_ADDR", "localhost"),
            ("DRAFT_ADVERTISE", "host"),
            ("DRAFT_ADVERTISE", "host:0"),
            ("DRAFT_TTL_MS", "ten"),
        ] {
            let err = env(&[(name, value)]).expect_err(value).to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }
}
