//! The one error type of Chassis.

use std::path::PathBuf;

/// What failed while a service started or ran.
///
/// Every variant is fatal to the service at start: `build` returns it, and a service's `main`
/// prints it on one line and exits 1 (see [`Error::exit`]). While serving, the chassis
/// recovers from what it can (an unreachable node, a dropped socket) by itself and logs it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `DRAFT_*` variable has a value that cannot be used.
    #[error("{variable}={value:?}: {reason}")]
    Setting {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The service's name is not one Blueprint accepts.
    #[error("service name {0:?}: {1}")]
    ServiceName(String, String),
    /// The configuration file cannot be read or parsed.
    #[error("config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The merged configuration (defaults, file, environment) does not fit the config type.
    #[error("configuration of {service}: {reason}")]
    Config {
        /// The service.
        service: String,
        /// The deserializer's reason, naming the field.
        reason: String,
    },
    /// A plugin failed to start.
    #[error("plugin {plugin} failed to start: {reason}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// Its error.
        reason: String,
    },
    /// The service's listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
    /// A hook is declared wrongly (for example two hooks with the same group).
    #[error("hook on {channel}: {reason}")]
    Hook {
        /// The hook's channel.
        channel: String,
        /// What is wrong.
        reason: String,
    },
    /// The node refused or could not be reached for something the service cannot start
    /// without.
    #[error("{what}: {source}")]
    Node {
        /// What the chassis was doing.
        what: String,
        /// The client's error.
        source: draft_http::ClientError,
    },
}

impl Error {
    /// Prints the error on one line to stderr and exits the process with 1: what a service's
    /// `main` does with an error from `build` or `serve`.
    pub fn exit(&self) -> ! {
        eprintln!("error: {self}");
        std::process::exit(1)
    }
}
