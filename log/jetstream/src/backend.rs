//! [`JetStream`]: the `LogBackend` on a NATS JetStream cluster.

use std::sync::Arc;

use draft_log::{
    AppendAck, AppendLimits, LogBackend, NewRecord, Offset, PartitionHead, PartitionName, Record,
    RecordStream, Retention, StorageFailure, Timestamp,
};
use futures::future::BoxFuture;

use crate::config::JetStreamConfig;
use crate::error::{Error, Result};
use crate::group::{GroupCommit, Grouper};
use crate::stream::Streams;
use crate::{api::Api, append, read, tail, trim};

/// The log on JetStream: one stream per partition (offset = sequence − 1), replicated as the
/// configuration says. Cheap to clone; every clone shares one connection.
///
/// Several nodes may open it on the same cluster: they see each other's appends (a tail on
/// one node follows what another appends), and compare-and-set and dedup ids are decided by
/// the stream's leader for all of them.
#[derive(Clone)]
pub struct JetStream {
    streams: Arc<Streams>,
    context: async_nats::jetstream::Context,
    limits: AppendLimits,
    grouper: Arc<Grouper>,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("urls", &self.streams.config().urls)
            .finish_non_exhaustive()
    }
}

impl JetStream {
    /// Connects to the cluster (retrying the servers until the configured deadline).
    ///
    /// # Errors
    /// [`Error::Connect`] if no server answers, or the credentials cannot be read or are
    /// refused.
    pub async fn connect(config: JetStreamConfig) -> Result<Self> {
        let urls = config.urls.join(",");
        let connect_error = |reason: String| Error::Connect {
            urls: urls.clone(),
            reason,
        };
        let mut options = async_nats::ConnectOptions::new()
            .name(config.name.clone())
            .connection_timeout(config.request_timeout)
            .request_timeout(Some(config.request_timeout))
            .retry_on_initial_connect()
            .max_reconnects(None);
        if let Some(creds) = &config.creds {
            options = options
                .credentials_file(creds)
                .await
                .map_err(|e| connect_error(format!("credentials {}: {e}", creds.display())))?;
        }
        let servers: Vec<async_nats::ServerAddr> = config
            .urls
            .iter()
            .map(|u| u.parse().map_err(|e| connect_error(format!("{u}: {e}"))))
            .collect::<Result<_>>()?;
        let unanswered = || {
            connect_error(format!(
                "no server answered within {:?}",
                config.unavailable_after
            ))
        };
        let client = tokio::time::timeout(
            config.unavailable_after,
            Box::pin(options.connect(servers.as_slice())),
        )
        .await
        .map_err(|_| unanswered())?
        .map_err(|e| connect_error(e.to_string()))?;
        // The client connects in the background with `retry_on_initial_connect`: wait for it.
        tokio::time::timeout(config.unavailable_after, client.flush())
            .await
            .map_err(|_| unanswered())?
            .map_err(|e| connect_error(e.to_string()))?;
        let limits = append::limits(client.server_info().max_payload);
        let api = Api {
            client: client.clone(),
            timeout: config.request_timeout,
            deadline: config.unavailable_after,
        };
        let streams = Arc::new(Streams::new(api, config));
        Ok(Self {
            grouper: Grouper::new(Arc::clone(&streams), limits),
            streams,
            context: async_nats::jetstream::new(client),
            limits,
        })
    }

    /// The NATS client (for checks of the servers, such as their durability settings).
    #[must_use]
    pub fn client(&self) -> &async_nats::Client {
        &self.streams.api.client
    }

    /// What group commit has done since it connected: how many groups of concurrent appends
    /// went out as one atomic batch, and how many were stored again append by append.
    #[must_use]
    pub fn group_commit(&self) -> GroupCommit {
        self.grouper.counts()
    }

    /// The configuration it was connected with.
    pub(crate) fn config(&self) -> &JetStreamConfig {
        self.streams.config()
    }

    async fn append_if(
        &self,
        partition: &PartitionName,
        expected: Option<Offset>,
        records: Vec<NewRecord>,
    ) -> draft_log::Result<AppendAck> {
        let ack = match expected {
            None => self.grouper.append(partition, records).await,
            Some(_) => {
                append::append(&self.streams, self.limits, partition, expected, records).await
            }
        };
        Ok(ack?)
    }
}

impl LogBackend for JetStream {
    fn append<'a>(
        &'a self,
        partition: &'a PartitionName,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, draft_log::Result<AppendAck>> {
        Box::pin(self.append_if(partition, None, records))
    }

    fn append_expecting<'a>(
        &'a self,
        partition: &'a PartitionName,
        expected_next: Offset,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, draft_log::Result<AppendAck>> {
        Box::pin(self.append_if(partition, Some(expected_next), records))
    }

    fn limits(&self) -> AppendLimits {
        self.limits
    }

    fn read<'a>(
        &'a self,
        partition: &'a PartitionName,
        from: Offset,
        limit: usize,
    ) -> BoxFuture<'a, draft_log::Result<Vec<Record>>> {
        Box::pin(async move { Ok(read::read(&self.streams, partition, from, limit).await?) })
    }

    fn offset_at_time<'a>(
        &'a self,
        partition: &'a PartitionName,
        time: Timestamp,
    ) -> BoxFuture<'a, draft_log::Result<Option<Offset>>> {
        Box::pin(async move { Ok(read::offset_at_time(&self.streams, partition, time).await?) })
    }

    fn tail(&self, partition: &PartitionName, from: Offset) -> RecordStream {
        tail::tail(
            Arc::clone(&self.streams),
            self.context.clone(),
            partition.clone(),
            from,
        )
    }

    fn head<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, draft_log::Result<Option<PartitionHead>>> {
        Box::pin(async move { Ok(self.streams.state(partition).await?.map(|s| s.head)) })
    }

    fn partitions(&self) -> BoxFuture<'_, draft_log::Result<Vec<PartitionHead>>> {
        Box::pin(async move { Ok(self.streams.partitions().await?) })
    }

    fn trim_before<'a>(
        &'a self,
        partition: &'a PartitionName,
        before: Offset,
    ) -> BoxFuture<'a, draft_log::Result<u64>> {
        Box::pin(async move { Ok(trim::trim_before(&self.streams, partition, before).await?) })
    }

    fn sync(&self) -> BoxFuture<'_, draft_log::Result<()>> {
        // JetStream acknowledges a publish once its replicas stored it (fsync'ed with
        // `sync_interval: always`): nothing is left to make durable here.
        Box::pin(async move {
            self.streams
                .api
                .client
                .flush()
                .await
                .map_err(|e| draft_log::Error::Unavailable(format!("flush: {e}")))
        })
    }

    fn set_retention<'a>(
        &'a self,
        partition: &'a PartitionName,
        retention: Option<Retention>,
    ) -> BoxFuture<'a, draft_log::Result<()>> {
        Box::pin(async move {
            let retention =
                retention.unwrap_or_else(|| self.streams.config().retention_of(partition));
            Ok(self.streams.set_retention(partition, retention).await?)
        })
    }

    fn retention<'a>(
        &'a self,
        partition: &'a PartitionName,
    ) -> BoxFuture<'a, draft_log::Result<Retention>> {
        Box::pin(async move {
            Ok(match self.streams.state(partition).await? {
                Some(state) => state.retention,
                None => self.streams.config().retention_of(partition),
            })
        })
    }

    fn storage_failure(&self) -> Option<StorageFailure> {
        // A remote engine has no sticky local failure: each call reports its own error
        // (unavailable while the cluster cannot answer).
        None
    }
}
