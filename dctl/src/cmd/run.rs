//! `dctl run`: a manifest's services beside a node (started from the same manifest unless one
//! already answers), their output prefixed, stopped in reverse order on Ctrl-C or SIGTERM.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use dctl::run::{Manifest, NodePlan, Outcome, Plan, node, supervise};

/// `dctl run`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each [services.NAME] table of the manifest names a command (no shell; found on PATH unless \
it has a '/'), its args, env, cwd, restart (\"never\" or \"on-failure\") and grace_ms. \
A service's relative command and cwd resolve against the manifest's folder. The node is \
`dctl up --config MANIFEST`, its output prefixed with `node`. Every \
service gets DRAFT_URL (and DRAFT_CA with --ca), runs in its own process group, and has its output prefixed with its \
name. Ctrl-C or SIGTERM stops the services in reverse order (SIGTERM, then SIGKILL after the \
grace period), then the node; a second one kills everything at once. A service that fails \
with restart = \"never\" stops the rest, and dctl run exits 1.")]
pub(crate) struct RunArgs {
    /// The manifest: the services, and the settings of the node it starts.
    #[arg(long, default_value = "draft.toml")]
    pub(crate) manifest: PathBuf,
    /// A node to use if it answers GET /healthz; else one is started from the manifest
    /// (default: the manifest's `[node] listen`, else `http://127.0.0.1:7070`).
    #[arg(long, env = "DRAFT_URL")]
    pub(crate) url: Option<String>,
    /// How long each process has to exit after SIGTERM before SIGKILL, in milliseconds (a
    /// service's `grace_ms` wins).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) grace_ms: u64,
    /// A PEM file of the certificate authority that signed an `https://` node's
    /// certificate: dctl run trusts it, and every service gets its path as `DRAFT_CA` (a
    /// service's own env wins).
    #[arg(long, env = "DRAFT_CA")]
    pub(crate) ca: Option<PathBuf>,
}

/// Runs the manifest's services until they are done, one fails, or a signal stops them.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let ca = args
        .ca
        .map(|path| std::path::absolute(&path).unwrap_or(path));
    let pem = ca
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))
        })
        .transpose()?;
    let probe = node::Probe::new(pem.as_deref())?;
    let tls = manifest.node.node.tls_cert.is_some();
    let url = args
        .url
        .or_else(|| node::default_url(manifest.node.node.listen, tls));
    let node = match url {
        Some(url) if probe.answers(&url).await => NodePlan::Use { url },
        _ => NodePlan::Start {
            exe: std::env::current_exe().context("cannot find dctl's own binary")?,
        },
    };
    let plan = Plan {
        manifest,
        node,
        grace: Duration::from_millis(args.grace_ms),
        colour: colour(),
        ca,
        probe,
    };
    match supervise(plan).await? {
        Outcome::Finished | Outcome::Stopped => Ok(()),
        Outcome::Failed(reason) => bail!(reason),
        Outcome::Killed => bail!("killed every process at once on a second signal"),
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set (<https://no-color.org>).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
