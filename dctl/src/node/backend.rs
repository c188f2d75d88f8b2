//! Opens the engine the settings name: the embedded fjall log, or a JetStream cluster (and
//! what can be checked of its servers' durability).

use std::sync::Arc;
use std::time::Duration;

use draft_log::{Log, LogBackend, LogConfig};
use draft_log_jetstream::{JetStream, JetStreamConfig};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::node::cluster::Cluster;
use crate::node::{BackendSettings, Settings};

/// The log writer thread's nice value (see `LogConfig::writer_nice`).
const WRITER_NICE: i32 = -2;

/// How long the node waits for servers to answer the durability check.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The backend `settings` name, opened, and on JetStream this node's place in the cluster
/// of nodes sharing it.
pub(crate) async fn open(
    settings: &Settings,
) -> Result<(Arc<dyn LogBackend>, Option<Arc<Cluster>>)> {
    match &settings.backend {
        BackendSettings::Fjall => Ok((Arc::new(open_fjall(settings).await?), None)),
        BackendSettings::JetStream {
            urls,
            creds,
            replicas,
            keeper_ttl,
            ack_timeout,
        } => {
            let mut config = JetStreamConfig::new(urls.clone())
                .replicas(*replicas)
                .ack_timeout(*ack_timeout)
                .default_retention(settings.retention)
                .name(format!("draft-{}", settings.name));
            if let Some(creds) = creds {
                config = config.creds(creds);
            }
            let log = JetStream::connect(config)
                .await
                .map_err(|e| Error::ConnectLog(e.to_string()))?;
            info!(servers = %urls.join(","), replicas, "log on JetStream");
            check_durability(log.client()).await;
            let cluster = Cluster::join(&log, &settings.name, *keeper_ttl).await?;
            Ok((Arc::new(log), Some(cluster)))
        }
    }
}

async fn open_fjall(settings: &Settings) -> Result<Log> {
    // The log's writer is the one thread every append goes through; on 2 busy cores it
    // waited for a core a quarter of its time. A slightly larger share where the process
    // may ask for it (BENCHMARKS.md: -2 helped batch produce as much as -10, which took
    // enough CPU from a load generator on the same cores to cost it 10%).
    let config = LogConfig::new(&settings.data_dir)
        .durability(settings.durability)
        .default_retention(settings.retention)
        .writer_nice(WRITER_NICE);
    let dir = settings.data_dir.clone();
    tokio::task::spawn_blocking(move || Log::open(config))
        .await
        .map_err(|e| Error::OpenLog {
            dir: dir.clone(),
            source: draft_log::Error::Backend(format!("log open task failed: {e}")),
        })?
        .map_err(|source| Error::OpenLog { dir, source })
}

/// Asks the servers for their JetStream settings (`$SYS.REQ.SERVER.PING.VARZ`, answered only
/// to a user of the system account) and warns about every one without `sync_interval:
/// always`; warns that it could not tell when nobody answers. A server that fsyncs on an
/// interval acknowledges writes it may lose on power loss (Jepsen, NATS 2.12.1).
async fn check_durability(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let Ok(mut replies) = client.subscribe(inbox.clone()).await else {
        return;
    };
    let asked = client
        .publish_with_reply("$SYS.REQ.SERVER.PING.VARZ", inbox, bytes::Bytes::new())
        .await;
    let mut answered = 0;
    if asked.is_ok() {
        use futures::StreamExt;
        while let Ok(Some(reply)) = tokio::time::timeout(CHECK_TIMEOUT, replies.next()).await {
            let Ok(varz) = serde_json::from_slice::<serde_json::Value>(&reply.payload) else {
                continue;
            };
            let server = varz["server"]["name"].as_str().unwrap_or("?").to_owned();
            let Some(config) = varz["data"]["jetstream"].get("config") else {
                continue;
            };
            answered += 1;
            if !config["sync_always"].as_bool().unwrap_or(false) {
                warn!(
                    server,
                    "this NATS server does not fsync every write (sync_interval is not `always`): \
                     it acknowledges writes a power loss can lose"
                );
            }
        }
    }
    if answered == 0 {
        warn!(
            "cannot read the NATS servers' JetStream settings (that needs the system account): \
             make sure every server runs with `jetstream {{ sync_interval: always }}`, or a \
             power loss can lose acknowledged writes"
        );
    }
}
