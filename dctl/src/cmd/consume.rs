//! `dctl consume <channel> [--from ..] [--type ..] [--source ..] [--no-follow]`: one compact
//! JSON event per line.

use std::io::Write;

use anyhow::Context;
use draft_catalyst::client::{Client, ReadOptions};
use futures::StreamExt;

use crate::cli::ConsumeArgs;

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.remote.url);
    let default_from = if args.no_follow { "earliest" } else { "latest" };
    let options = ReadOptions {
        from: Some(args.from.clone().unwrap_or_else(|| default_from.to_owned())),
        types: args.types.clone(),
        sources: args.sources.clone(),
    };
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
