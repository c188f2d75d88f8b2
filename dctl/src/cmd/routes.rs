//! `dctl routes [--at ..]` and `dctl routes explain <host> <path>`.

use anyhow::Context;
use clap::{Args, Subcommand};
use draft_fuse::RouteTable;

use crate::output::{self, Format};
use crate::remote::Remote;

/// `dctl routes`.
#[derive(Debug, Args)]
pub(crate) struct RoutesArgs {
    /// Explain one request instead of listing the table.
    #[command(subcommand)]
    pub(crate) command: Option<RoutesCommand>,
    /// As of a revision or an RFC 3339 time.
    #[arg(long, global = true)]
    pub(crate) at: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t, global = true)]
    pub(crate) output: Format,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// The routes subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RoutesCommand {
    /// Which route and instances a request would take, and why.
    Explain {
        /// The request's host (`-` for none).
        host: String,
        /// The request's path.
        path: String,
    },
}

async fn fetch(args: &RoutesArgs) -> anyhow::Result<RouteTable> {
    let mut url = format!("{}/v1/routes", args.remote.url.trim_end_matches('/'));
    if let Some(at) = &args.at {
        let encoded: String = at
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        url = format!("{url}?at={encoded}");
    }
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = args.remote.token()? {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {}", args.remote.url))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the node sent invalid JSON")?;
    if !status.is_success() {
        anyhow::bail!(
            "{} ({}, HTTP {})",
            body["error"]["message"].as_str().unwrap_or("error"),
            body["error"]["code"].as_str().unwrap_or("?"),
            status.as_u16()
        );
    }
    serde_json::from_value(body).context("the node sent an unexpected route table")
}

fn backends(route: &draft_fuse::RouteEntry) -> String {
    if route.backends.is_empty() {
        return "(none passing: 503)".to_owned();
    }
    route
        .backends
        .iter()
        .map(|b| format!("{}={}", b.instance, b.address))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) async fn run(args: RoutesArgs) -> anyhow::Result<()> {
    let table = fetch(&args).await?;
    match &args.command {
        None => {
            if args.output == Format::Json {
                return output::json(&table);
            }
            let rows: Vec<Vec<String>> = table
                .routes
                .iter()
                .map(|r| {
                    let conflicts = if r.conflicts.is_empty() {
                        String::new()
                    } else {
                        format!("CONFLICT with {}", r.conflicts.join(","))
                    };
                    let owner = match (&r.owner, r.owned_since) {
                        (Some(owner), Some(since)) => format!("{owner} (since {since})"),
                        (Some(owner), None) => owner.clone(),
                        (None, _) => "-".to_owned(),
                    };
                    vec![
                        r.host.clone().unwrap_or_else(|| "*".to_owned()),
                        r.prefix.clone(),
                        r.service.clone(),
                        owner,
                        if r.strip_prefix {
                            "yes".to_owned()
                        } else {
                            "no".to_owned()
                        },
                        backends(r),
                        conflicts,
                    ]
                })
                .collect();
            output::table(
                &[
                    "HOST",
                    "PREFIX",
                    "SERVICE",
                    "OWNER",
                    "STRIP",
                    "INSTANCES",
                    "NOTES",
                ],
                &rows,
            )
        }
        Some(RoutesCommand::Explain { host, path }) => {
            let host = (host != "-").then_some(host.as_str());
            let explanation = table.explain(host, path);
            if args.output == Format::Json {
                return output::json(&explanation);
            }
            match &explanation.chosen {
                Some(route) => println!(
                    "{}{path} -> service {} via route {}{} (instances, round robin: {})",
                    host.unwrap_or(""),
                    route.service,
                    route.host.as_deref().unwrap_or("*"),
                    route.prefix,
                    backends(route)
                ),
                None => println!("{}{path} -> no route (404)", host.unwrap_or("")),
            }
            let rows: Vec<Vec<String>> = explanation
                .considered
                .iter()
                .map(|(h, prefix, service, why)| {
                    vec![
                        h.clone().unwrap_or_else(|| "*".to_owned()),
                        prefix.clone(),
                        service.clone(),
                        why.clone(),
                    ]
                })
                .collect();
            output::table(&["HOST", "PREFIX", "SERVICE", "WHY"], &rows)
        }
    }
}
