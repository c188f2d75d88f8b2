//! `dctl consume <channel> [--from ..] [--type ..] [--source ..] [--no-follow]
//! [--group NAME [--timeout-ms N]]`: one compact JSON event per line. With `--group`, as a
//! member of a durable consumer group, acknowledging each event once it is printed.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use draft_catalyst::client::{Client, ReadOptions};
use futures::StreamExt;

use crate::remote::Remote;

/// `dctl consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The channel.
    pub(crate) channel: String,
    /// Where to start: earliest, latest, an offset or an RFC 3339 time (default: latest when
    /// following, earliest with --no-follow).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Only events of this type (`prefix*` for a prefix); repeatable.
    #[arg(long = "type")]
    pub(crate) types: Vec<String>,
    /// Only events from this source (`prefix*` for a prefix); repeatable.
    #[arg(long = "source")]
    pub(crate) sources: Vec<String>,
    /// Stop once caught up instead of following new events.
    #[arg(long, conflicts_with = "group")]
    pub(crate) no_follow: bool,
    /// Consume as a member of this durable consumer group: resume after its last
    /// acknowledged event, acknowledge each event once printed (a new group starts at
    /// --from, default latest; its filters and timeout are fixed from then on).
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// A new group's timeout: how long its active member may owe an acknowledgement before
    /// a standby takes over, in milliseconds (default: the node's, 30000).
    #[arg(long, requires = "group")]
    pub(crate) timeout_ms: Option<u64>,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.remote.catalyst()?;
    let default_from = if args.no_follow { "earliest" } else { "latest" };
    let options = ReadOptions {
        from: Some(args.from.clone().unwrap_or_else(|| default_from.to_owned())),
        types: args.types.clone(),
        sources: args.sources.clone(),
    };
    if let Some(group) = &args.group {
        return member(&client, &args, group, &options).await;
    }
    let stdout = std::io::stdout();
    if args.no_follow {
        let mut pager = client.pager(&args.channel, options).await?;
        while let Some(events) = pager.next_page().await? {
            let mut out = stdout.lock();
            for event in &events {
                writeln!(out, "{event}").context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
        }
        return Ok(());
    }
    let mut events = client.consume(&args.channel, &options).await?;
    while let Some(text) = events.next().await {
        let text = text?;
        // Normalise to one compact line whatever whitespace the producer sent.
        let value: serde_json::Value =
            serde_json::from_str(&text).context("the node sent invalid JSON")?;
        let mut out = stdout.lock();
        writeln!(out, "{value}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    Ok(())
}

/// Prints a group's events and acknowledges each once it is written out.
async fn member(
    client: &Client,
    args: &ConsumeArgs,
    group: &str,
    options: &ReadOptions,
) -> anyhow::Result<()> {
    let mut consumer = client
        .consume_group(&args.channel, group, options, args.timeout_ms)
        .await?;
    let stdout = std::io::stdout();
    while let Some(text) = consumer.next().await {
        let value: serde_json::Value =
            serde_json::from_str(&text?).context("the node sent invalid JSON")?;
        let offset = value["draftoffset"]
            .as_u64()
            .context("the node sent an event without draftoffset")?;
        {
            let mut out = stdout.lock();
            writeln!(out, "{value}").context("writing to stdout")?;
            out.flush().context("writing to stdout")?;
        }
        consumer.ack(offset).await?;
    }
    Ok(())
}
