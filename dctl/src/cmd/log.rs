//! `dctl log tail [CHANNEL] [--from ..|--since 10m] [--follow] [--type ..] [-o json]`: the
//! audit trail (the control partition `_draft` by default) or any channel, one line an event:
//! time, actor, type and a summary (`old -> new` for KV changes, `channel/group` for consumer
//! groups).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use draft_blueprint::wire::base64_decode;
use draft_catalyst::client::ReadOptions;
use futures::StreamExt;
use serde_json::Value;

use crate::output::{Format, show};
use crate::remote::Remote;

/// `dctl log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: LogCommand,
}

/// The log subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Print the audit trail (or a channel's events).
    Tail(TailArgs),
}

/// `dctl log tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The channel (default: `_draft`, the audit trail of every control change).
    #[arg(default_value = "_draft")]
    pub(crate) channel: String,
    /// Start at: earliest, latest, an offset or an RFC 3339 time (default: earliest).
    #[arg(long, conflicts_with = "since")]
    pub(crate) from: Option<String>,
    /// Start this long ago: `30s`, `10m`, `2h`, `1d`.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Keep printing new events.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Only events of this type (`prefix*` for a prefix); repeatable.
    #[arg(long = "type")]
    pub(crate) types: Vec<String>,
    /// Output format (`json`: one event per line).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub(crate) output: Format,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Parses `30s`, `10m`, `2h`, `1d` (`--since`, and `dctl token create --expires`).
pub(crate) fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("{text:?}: expected a number and a unit, like 10m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("{text:?}: the unit is s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

/// Remembers the last value of each key, so a put can be shown as `old -> new`.
struct Summaries {
    values: HashMap<String, Vec<u8>>,
    client: draft_blueprint::client::Client,
}

impl Summaries {
    async fn summary(&mut self, event: &Value) -> String {
        let data = &event["data"];
        let revision = event["draftoffset"].as_u64().unwrap_or(0);
        match event["type"].as_str().unwrap_or("") {
            "io.draft.kv.put" | "io.draft.kv.deleted" => {
                let key = data["key"].as_str().unwrap_or("?").to_owned();
                let old = match self.values.get(&key) {
                    Some(v) => Some(v.clone()),
                    None if revision > 0 => self
                        .client
                        .get(&key, Some(&(revision - 1).to_string()))
                        .await
                        .ok()
                        .map(|v| v.bytes),
                    None => None,
                };
                let new = data["value_base64"].as_str().and_then(base64_decode);
                match &new {
                    Some(v) => self.values.insert(key.clone(), v.clone()),
                    None => self.values.remove(&key),
                };
                let show_opt =
                    |v: &Option<Vec<u8>>| v.as_deref().map_or_else(|| "(absent)".to_owned(), show);
                format!("{key}: {} -> {}", show_opt(&old), show_opt(&new))
            }
            "io.draft.instance.registered" => format!(
                "{}/{} at {} (ttl {} ms)",
                data["service"].as_str().unwrap_or("?"),
                data["instance"].as_str().unwrap_or("?"),
                data["address"].as_str().unwrap_or("?"),
                data["ttl_ms"]
            ),
            "io.draft.group.created" => format!(
                "{}/{} from {} (offset {})",
                data["channel"].as_str().unwrap_or("?"),
                data["group"].as_str().unwrap_or("?"),
                data["from"].as_str().unwrap_or("?"),
                data["start_offset"]
            ),
            "io.draft.group.deleted" => format!(
                "{}/{} (committed offset {})",
                data["channel"].as_str().unwrap_or("?"),
                data["group"].as_str().unwrap_or("?"),
                data["committed_offset"]
            ),
            "io.draft.instance.deregistered"
            | "io.draft.instance.expired"
            | "io.draft.instance.removed" => {
                format!(
                    "{}/{}",
                    data["service"].as_str().unwrap_or("?"),
                    data["instance"].as_str().unwrap_or("?")
                )
            }
            _ => {
                let mut text = format!(
                    "{} {}",
                    event["source"].as_str().unwrap_or(""),
                    event["id"].as_str().unwrap_or("")
                );
                if !data.is_null() {
                    text.push(' ');
                    text.push_str(&data.to_string());
                }
                text.chars().take(120).collect()
            }
        }
    }
}

async fn print(event: &Value, format: Format, summaries: &mut Summaries) -> anyhow::Result<()> {
    let line = match format {
        Format::Json => event.to_string(),
        Format::Table => {
            let time = event["time"].as_str().unwrap_or("-");
            let actor = event["draftactor"].as_str().unwrap_or("-");
            let offset = event["draftoffset"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |o| o.to_string());
            let ty = event["type"].as_str().unwrap_or("-");
            format!(
                "{offset:>6}  {time:<30}  {actor:<10}  {ty:<32}  {}",
                summaries.summary(event).await
            )
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

pub(crate) async fn run(args: LogArgs) -> anyhow::Result<()> {
    let LogCommand::Tail(args) = args.command;
    let from = match (&args.from, &args.since) {
        (Some(from), _) => from.clone(),
        (None, Some(since)) => {
            let at = chrono::Utc::now() - parse_duration(since).context("--since")?;
            at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        }
        (None, None) => "earliest".to_owned(),
    };
    let client = args.remote.catalyst()?;
    let mut summaries = Summaries {
        values: HashMap::new(),
        client: args.remote.blueprint()?,
    };
    let options = ReadOptions {
        from: Some(from),
        types: args.types.clone(),
        sources: Vec::new(),
    };
    if args.follow {
        let mut events = client.consume(&args.channel, &options).await?;
        while let Some(text) = events.next().await {
            let event: Value =
                serde_json::from_str(&text?).context("the node sent invalid JSON")?;
            print(&event, args.output, &mut summaries).await?;
        }
        return Ok(());
    }
    let mut pager = client.pager(&args.channel, options).await?;
    while let Some(events) = pager.next_page().await? {
        for event in &events {
            print(event, args.output, &mut summaries).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_duration("10m").expect("ok"), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").expect("ok"), Duration::from_secs(7200));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
