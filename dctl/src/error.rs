//! [`Error`]: why a node could not start or stop cleanly, or `dctl run` could not start its
//! services.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node could not start, or did not stop cleanly, or `dctl run` could not start its
/// services. Every variant is fatal for the process: it is reported (one line) and the
/// process exits 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: a configuration file cannot be read or is not valid.
    #[error("invalid config {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Bad input: `dctl run`'s manifest cannot be read or is not valid; nothing was started.
    #[error("invalid manifest {}: {reason}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why, on one line.
        reason: String,
    },
    /// A process (the node or a service of `dctl run`) could not be started: its command is
    /// not found or not executable, or its folder does not exist.
    #[error("cannot start {what}: {reason}")]
    Spawn {
        /// `the node` or `service NAME`.
        what: String,
        /// Why.
        reason: String,
    },
    /// The process cannot handle SIGINT or SIGTERM, so it could not stop its children.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    /// Bad input: a setting is out of range.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The log cannot be opened (locked by another process, damaged, unreadable).
    #[error("cannot open the log in {}: {source}", dir.display())]
    OpenLog {
        /// The data directory.
        dir: PathBuf,
        /// The log's error.
        source: draft_log::Error,
    },
    /// The JetStream cluster holding the log cannot be reached (or refused the credentials).
    #[error("cannot reach the log on JetStream: {0}")]
    ConnectLog(String),
    /// A service could not start on the log (reading it failed, or a checkpoint folder).
    #[error("cannot start the {service}: {reason}")]
    Start {
        /// `broker` or `registry`.
        service: &'static str,
        /// Why.
        reason: String,
    },
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// `api` or `ingress`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// With auth on and no valid token, the node could not make its first admin token (or
    /// write its secret to the file).
    #[error("cannot make the first admin token in {}: {reason}", path.display())]
    Bootstrap {
        /// The file its secret goes to.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The last fsync on the way down failed: appends acknowledged in `buffered` mode since
    /// the last flush may be lost.
    #[error("final fsync failed: {0}")]
    Sync(draft_log::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
