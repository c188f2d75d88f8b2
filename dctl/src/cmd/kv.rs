//! `dctl kv get|put|del|ls|history`.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use draft_blueprint::client::Client;
use draft_blueprint::wire::base64_decode;

use crate::output::{self, Format, show};
use crate::remote::Remote;

/// `dctl kv`.
#[derive(Debug, Args)]
pub(crate) struct KvArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: KvCommand,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// The KV subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KvCommand {
    /// Print a key's value (raw bytes).
    Get {
        /// The key.
        key: String,
        /// As of a revision or an RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
    },
    /// Set a key to VALUE (or the contents of --file); prints the new revision.
    Put {
        /// The key.
        key: String,
        /// The value.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Only if the key is at this revision (compare-and-set).
        #[arg(long)]
        if_revision: Option<u64>,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
    },
    /// List keys under a prefix.
    Ls {
        /// The prefix (default: every key).
        #[arg(default_value = "")]
        prefix: String,
        /// As of a revision or an RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Every change of a key: revision, time, actor, value.
    History {
        /// The key.
        key: String,
        /// As of a revision or an RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
}

pub(crate) async fn run(args: KvArgs) -> anyhow::Result<()> {
    let client = args.remote.blueprint()?;
    match args.command {
        KvCommand::Get { key, at } => {
            let value = client.get(&key, at.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&value.bytes).context("writing to stdout")?;
            out.flush().context("writing to stdout")
        }
        KvCommand::Put {
            key,
            value,
            file,
            if_revision,
        } => {
            let bytes = match (value, file) {
                (Some(v), _) => v.into_bytes(),
                (None, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => anyhow::bail!("give a VALUE or --file"),
            };
            let revision = client.put(&key, bytes, if_revision).await?;
            println!("{revision}");
            Ok(())
        }
        KvCommand::Del { key } => {
            let revision = client.delete(&key).await?;
            println!("{}", revision.map_or_else(String::new, |r| r.to_string()));
            Ok(())
        }
        KvCommand::Ls { prefix, at, output } => ls(&client, &prefix, at.as_deref(), output).await,
        KvCommand::History { key, at, output } => {
            history(&client, &key, at.as_deref(), output).await
        }
    }
}

/// `dctl kv ls`: every key under `prefix`, page by page.
async fn ls(client: &Client, prefix: &str, at: Option<&str>, output: Format) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = client.list(prefix, after.as_deref(), 1000, at).await?;
        entries.extend(page.entries);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if output == Format::Json {
        return output::json(&entries);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let value = base64_decode(&e.value_base64).unwrap_or_default();
            vec![
                e.key.clone(),
                e.revision.to_string(),
                e.updated.clone(),
                e.actor.clone(),
                show(&value),
            ]
        })
        .collect();
    output::table(&["KEY", "REVISION", "UPDATED", "ACTOR", "VALUE"], &rows)
}

/// `dctl kv history`: every change of `key`.
async fn history(
    client: &Client,
    key: &str,
    at: Option<&str>,
    output: Format,
) -> anyhow::Result<()> {
    let history = client.history(key, at).await?;
    if output == Format::Json {
        return output::json(&history);
    }
    let rows: Vec<Vec<String>> = history
        .changes
        .iter()
        .map(|c| {
            let value = c
                .value_base64
                .as_deref()
                .and_then(base64_decode)
                .map_or_else(String::new, |v| show(&v));
            vec![
                c.revision.to_string(),
                c.time.clone(),
                c.actor.clone(),
                c.op.clone(),
                value,
            ]
        })
        .collect();
    output::table(&["REVISION", "TIME", "ACTOR", "OP", "VALUE"], &rows)
}
