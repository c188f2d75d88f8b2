//! `dctl status`.

use clap::Args;

use crate::output::{self, Format};
use crate::remote::Remote;

/// `dctl status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Format,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let status = args.remote.blueprint()?.status().await?;
    if args.output == Format::Json {
        return output::json(&status);
    }
    let rows: Vec<Vec<String>> = status
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            ]
        })
        .collect();
    output::table(&["FIELD", "VALUE"], &rows)
}
