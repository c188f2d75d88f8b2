//! `dctl services [NAME] [--at ..] [-o json]`.

use clap::Args;

use crate::output::{self, Format};
use crate::remote::Remote;

/// `dctl services`.
#[derive(Debug, Args)]
pub(crate) struct ServicesArgs {
    /// One service's instances (default: every service).
    pub(crate) name: Option<String>,
    /// As of a revision or an RFC 3339 time.
    #[arg(long)]
    pub(crate) at: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Format,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

pub(crate) async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    let client = args.remote.blueprint()?;
    let at = args.at.as_deref();
    let Some(name) = &args.name else {
        let list = client.services(at).await?;
        if args.output == Format::Json {
            return output::json(&list);
        }
        let rows: Vec<Vec<String>> = list
            .services
            .iter()
            .map(|s| {
                vec![
                    s.service.clone(),
                    s.passing.to_string(),
                    s.critical.to_string(),
                ]
            })
            .collect();
        return output::table(&["SERVICE", "PASSING", "CRITICAL"], &rows);
    };
    let info = client.service(name, at).await?;
    if args.output == Format::Json {
        return output::json(&info);
    }
    let rows: Vec<Vec<String>> = info
        .instances
        .iter()
        .map(|i| {
            let routes: Vec<String> = i
                .routes
                .iter()
                .map(|r| format!("{}{}", r.host.as_deref().unwrap_or(""), r.prefix))
                .collect();
            vec![
                i.instance.clone(),
                i.address.clone(),
                format!("{:?}", i.health).to_lowercase(),
                routes.join(","),
                i.revision.to_string(),
            ]
        })
        .collect();
    output::table(
        &["INSTANCE", "ADDRESS", "HEALTH", "ROUTES", "REVISION"],
        &rows,
    )
}
