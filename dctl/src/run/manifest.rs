//! [`Manifest`]: the `draft.toml` that `dctl run` reads, parsed and checked. Pure: the text in,
//! a manifest or one line saying what is wrong out; [`Manifest::load`] only reads the file.
//!
//! ```toml
//! [node]                      # the node's settings, as `dctl up --config` reads them
//! listen = "127.0.0.1:7070"
//!
//! [services.orders]           # one table per service, started in this order
//! command = "../target/debug/orders"   # no shell: a program, found on PATH unless it has a '/'
//! args = ["--port", "9001"]
//! env = { RUST_LOG = "info" }
//! cwd = "."                   # default: the manifest's folder
//! restart = "on-failure"      # or "never" (the default)
//! grace_ms = 5000             # SIGTERM to SIGKILL (default: dctl run --grace-ms)
//! ```
//!
//! A service's relative paths (`command` with a '/', `cwd`) resolve against the manifest's
//! folder, wherever `dctl run` is started from. The node's settings mean what they mean to
//! `dctl up --config MANIFEST` started where `dctl run` is (a relative `data_dir` too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::Error;
use crate::node::{AuthLayer, CatalystLayer, FuseLayer, Layer, LogLayer, NodeLayer, Settings};
use crate::run::restart::Restart;

/// The label of the node's output lines, so no service may take it.
pub const NODE_LABEL: &str = "node";

/// The longest service name: it prefixes every line of output.
const MAX_NAME: usize = 32;

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file, as given.
    pub path: PathBuf,
    /// Its folder (absolute): where the services' relative paths resolve.
    pub dir: PathBuf,
    /// `[node]`, `[catalyst]` and `[auth]`: the settings of a node `dctl run` starts.
    pub node: Layer,
    /// The services, in the order the manifest lists them (the order they start in).
    pub services: Vec<Service>,
}

/// One `[services.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The table's name: `[A-Za-z0-9._-]`, 1 to 32 of them, not `node`.
    pub name: String,
    /// What to run.
    pub program: Program,
    /// Its arguments, as they are (no shell).
    pub args: Vec<String>,
    /// Variables set for it, over dctl's own environment and `DRAFT_URL`.
    pub env: BTreeMap<String, String>,
    /// Its working folder (absolute).
    pub cwd: PathBuf,
    /// Whether a failure restarts it.
    pub restart: Restart,
    /// How long it has from SIGTERM to exit before SIGKILL; `None`: `dctl run --grace-ms`.
    pub grace: Option<Duration>,
}

/// A service's `command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A command with a '/': this file (relative ones joined to the service's `cwd`).
    Path(PathBuf),
    /// A bare name, looked up on `PATH` when the service starts.
    Search(String),
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Search(name) => f.write_str(name),
        }
    }
}

/// The file as it reads: the node's layer beside the services.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    node: NodeLayer,
    #[serde(default)]
    catalyst: CatalystLayer,
    #[serde(default)]
    fuse: FuseLayer,
    #[serde(default)]
    auth: AuthLayer,
    #[serde(default)]
    log: LogLayer,
    /// Spanned keys keep the manifest's order, which a map would lose.
    #[serde(default)]
    services: BTreeMap<Spanned<String>, RawService>,
}

/// `[services.NAME]` as it reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    #[serde(default)]
    restart: Restart,
    grace_ms: Option<u64>,
}

impl Manifest {
    /// Reads and checks the manifest at `path`.
    ///
    /// # Errors
    /// [`Error::Manifest`] if it cannot be read or is not valid.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        let absolute = std::path::absolute(path).map_err(|e| invalid(e.to_string()))?;
        let dir = absolute.parent().unwrap_or(Path::new("/"));
        Self::parse(&text, path, dir)
    }

    /// The manifest `text` says, with relative paths resolved against `dir`; `path` names it
    /// in errors.
    ///
    /// # Errors
    /// [`Error::Manifest`], on one line, for invalid TOML, an unknown or mistyped field, a node
    /// setting out of range, no services, or a service without a command or with a bad name.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(one_line(&e, text)))?;
        let node = Layer {
            node: raw.node,
            catalyst: raw.catalyst,
            fuse: raw.fuse,
            auth: raw.auth,
            log: raw.log,
        };
        // The node would refuse these at start; refuse them before anything starts.
        Settings::resolve(node.clone(), || "draft".to_owned())
            .map_err(|e| invalid(e.to_string()))?;
        if raw.services.is_empty() {
            return Err(invalid(
                "no services: add a [services.NAME] table with a command".to_owned(),
            ));
        }
        let mut services: Vec<(usize, Service)> = raw
            .services
            .into_iter()
            .map(|(name, raw)| {
                let at = name.span().start;
                let name = name.into_inner();
                service(name.clone(), raw, dir)
                    .map(|s| (at, s))
                    .map_err(|reason| invalid(format!("[services.{name}]: {reason}")))
            })
            .collect::<Result<_, _>>()?;
        services.sort_by_key(|(at, _)| *at);
        Ok(Self {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            node,
            services: services.into_iter().map(|(_, s)| s).collect(),
        })
    }
}

/// One service, checked.
fn service(name: String, raw: RawService, dir: &Path) -> Result<Service, String> {
    if !is_name(&name) {
        return Err(format!("a service name is 1-{MAX_NAME} of [A-Za-z0-9._-]"));
    }
    if name == NODE_LABEL {
        return Err(format!(
            "the name `{NODE_LABEL}` labels the node's output; rename the service"
        ));
    }
    let command = raw.command.trim();
    if command.is_empty() {
        return Err("`command` is empty".to_owned());
    }
    let strings = std::iter::once(command)
        .chain(raw.args.iter().map(String::as_str))
        .chain(raw.env.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
    if strings.into_iter().any(|s| s.contains('\0')) {
        return Err("`command`, `args` and `env` may not contain NUL bytes".to_owned());
    }
    if let Some(bad) = raw.env.keys().find(|k| k.is_empty() || k.contains('=')) {
        return Err(format!(
            "`env` key {bad:?}: a variable name is non-empty, without '='"
        ));
    }
    let cwd = raw
        .cwd
        .map_or_else(|| dir.to_path_buf(), |cwd| dir.join(cwd));
    let program = if command.contains('/') {
        Program::Path(cwd.join(command))
    } else {
        Program::Search(command.to_owned())
    };
    Ok(Service {
        name,
        program,
        args: raw.args,
        env: raw.env,
        cwd,
        restart: raw.restart,
        grace: raw.grace_ms.map(Duration::from_millis),
    })
}

/// Service names: `[A-Za-z0-9._-]{1,32}`.
fn is_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A TOML error on one line, with where it is (toml's own rendering spans several lines).
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests;
