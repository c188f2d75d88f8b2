//! `dctl groups [CHANNEL] [-o json]`: consumer groups, their committed offsets, lag and
//! members.

use clap::Args;
use draft_catalyst::wire::GroupInfo;

use crate::output::{self, Format};
use crate::remote::Remote;

/// `dctl groups`.
#[derive(Debug, Args)]
pub(crate) struct GroupsArgs {
    /// One channel's groups (default: every channel's).
    pub(crate) channel: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Format,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

pub(crate) async fn run(args: GroupsArgs) -> anyhow::Result<()> {
    let list = args
        .remote
        .catalyst()?
        .groups(args.channel.as_deref())
        .await?;
    if args.output == Format::Json {
        return output::json(&list);
    }
    let rows: Vec<Vec<String>> = list.groups.iter().map(row).collect();
    output::table(
        &[
            "CHANNEL",
            "GROUP",
            "COMMITTED",
            "LAG",
            "ACTIVE",
            "SINCE",
            "STANDBYS",
            "LAST ACK",
        ],
        &rows,
    )
}

/// One group as a table row.
fn row(g: &GroupInfo) -> Vec<String> {
    let dash = || "-".to_owned();
    vec![
        g.channel.clone(),
        g.group.clone(),
        g.committed_offset.map_or_else(dash, |o| o.to_string()),
        g.lag.to_string(),
        g.active.as_ref().map_or_else(dash, |m| m.address.clone()),
        g.active.as_ref().map_or_else(dash, |m| m.since.clone()),
        g.standbys.len().to_string(),
        g.last_ack_time.clone().unwrap_or_else(dash),
    ]
}
