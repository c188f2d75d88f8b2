//! `dctl produce <channel> --type T --source S [--data JSON | --data-file F] [--ws]`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use draft_catalyst::client::ProducerOptions;
use serde_json::{Map, Value, json};

use crate::remote::Remote;

/// `dctl produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The channel.
    pub(crate) channel: String,
    /// The event's `type`.
    #[arg(long = "type")]
    pub(crate) ty: String,
    /// The event's `source`.
    #[arg(long, default_value = "/dctl")]
    pub(crate) source: String,
    /// The event's `id` (default: a new UUID v7).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// The event's data, as JSON.
    #[arg(long, conflicts_with = "data_file")]
    pub(crate) data: Option<String>,
    /// A file whose contents are the data (JSON as is; anything else as binary).
    #[arg(long)]
    pub(crate) data_file: Option<PathBuf>,
    /// Send the event over a WebSocket producer (`GET …/produce`) instead of `POST …/events`.
    #[arg(long)]
    pub(crate) ws: bool,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Builds the structured-mode event of the arguments.
fn event(args: &ProduceArgs) -> anyhow::Result<Value> {
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut event = Map::new();
    event.insert("specversion".into(), json!("1.0"));
    event.insert("id".into(), json!(id));
    event.insert("source".into(), json!(args.source));
    event.insert("type".into(), json!(args.ty));
    event.insert(
        "time".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    if let Some(data) = &args.data {
        let data: Value = serde_json::from_str(data)
            .context("--data must be JSON (quote strings: '\"text\"')")?;
        event.insert("datacontenttype".into(), json!("application/json"));
        event.insert("data".into(), data);
    } else if let Some(path) = &args.data_file {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Ok(data) = serde_json::from_slice::<Value>(&bytes) {
            event.insert("datacontenttype".into(), json!("application/json"));
            event.insert("data".into(), data);
        } else {
            event.insert("datacontenttype".into(), json!("application/octet-stream"));
            event.insert(
                "data_base64".into(),
                json!(draft_blueprint::wire::base64_encode(&bytes)),
            );
        }
    }
    Ok(Value::Object(event))
}

pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let event = event(&args)?;
    let client = args.remote.catalyst()?;
    if args.ws {
        let producer = client
            .producer(&args.channel, ProducerOptions::default())
            .await?;
        let offset = producer.send(event.to_string()).await?;
        producer.close().await;
        println!("{offset}");
        return Ok(());
    }
    let response = client.produce(&args.channel, &event).await?;
    for offset in response.offsets {
        println!("{offset}");
    }
    Ok(())
}
