//! `dctl produce <channel> --type T --source S [--data JSON | --data-file F]`.

use anyhow::Context;
use draft_catalyst::client::Client;
use serde_json::{Map, Value, json};

use crate::cli::ProduceArgs;

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
    let client = Client::new(&args.remote.url);
    let response = client.produce(&args.channel, &event).await?;
    for offset in response.offsets {
        println!("{offset}");
    }
    Ok(())
}
