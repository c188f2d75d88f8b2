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
            event.insert("data_base64".into(), json!(base64(&bytes)));
        }
    }
    Ok(Value::Object(event))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
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
