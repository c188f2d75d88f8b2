//! Tails: an ordered pull consumer per tail (JetStream recreates it at the right place after
//! a leader change or a lost message), with Draft checking that offsets stay contiguous
//! itself. A partition whose stream does not exist yet is waited for.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use draft_log::{Offset, PartitionName, Record, RecordStream, Timestamp};
use futures::StreamExt;

use crate::body;
use crate::error::Error;
use crate::name;
use crate::stream::Streams;

/// How long a tail waits before looking again for a stream that does not exist yet, or
/// before reopening a consumer that failed.
const PAUSE: Duration = Duration::from_millis(200);

struct Tail {
    streams: Arc<Streams>,
    context: async_nats::jetstream::Context,
    partition: PartitionName,
    next: Offset,
    messages: Option<pull::Ordered>,
    failed: bool,
}

/// Tails `partition` from `from`.
pub(crate) fn tail(
    streams: Arc<Streams>,
    context: async_nats::jetstream::Context,
    partition: PartitionName,
    from: Offset,
) -> RecordStream {
    let state = Tail {
        streams,
        context,
        partition,
        next: from,
        messages: None,
        failed: false,
    };
    futures::stream::unfold(state, |mut tail| async move {
        if tail.failed {
            return None;
        }
        let item = tail.next_record().await;
        tail.failed = item.is_err();
        Some((item, tail))
    })
    .boxed()
}

impl Tail {
    async fn next_record(&mut self) -> draft_log::Result<Record> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                self.open().await;
                continue;
            };
            let message = match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::debug!(partition = %self.partition, error = %e, "tail consumer failed, reopening");
                    self.messages = None;
                    tokio::time::sleep(PAUSE).await;
                    continue;
                }
                None => {
                    self.messages = None;
                    continue;
                }
            };
            let info = message.info().map_err(|e| {
                draft_log::Error::Backend(format!(
                    "tail of {}: no message info: {e}",
                    self.partition
                ))
            })?;
            let offset = Offset(info.stream_sequence.saturating_sub(1));
            let nanos = u64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(0);
            if offset < self.next {
                continue;
            }
            if offset > self.next {
                self.check_gap(offset).await?;
            }
            let decoded = body::decode(&message.payload).map_err(|reason| {
                draft_log::Error::from(Error::Corrupt {
                    partition: self.partition.to_string(),
                    offset,
                    reason: reason.to_owned(),
                })
            })?;
            self.next = offset.next();
            return Ok(Record {
                partition: self.partition.clone(),
                offset,
                time: Timestamp::from_unix_nanos(nanos),
                key: decoded.key,
                payload: decoded.payload,
            });
        }
    }

    /// A jump ahead is right only when retention removed the records in between.
    async fn check_gap(&mut self, offset: Offset) -> draft_log::Result<()> {
        let first = self
            .streams
            .state(&self.partition)
            .await?
            .map_or(Offset(0), |s| s.head.first);
        if first >= offset {
            return Ok(());
        }
        Err(draft_log::Error::Backend(format!(
            "tail of {} skipped offsets {} to {}, which the stream still holds",
            self.partition, self.next, offset
        )))
    }

    /// Opens an ordered consumer from `next`, waiting while the stream does not exist.
    async fn open(&mut self) {
        let stream = name::stream_name(self.partition.as_str());
        loop {
            match open_consumer(self.context.clone(), stream.clone(), self.next).await {
                Ok(messages) => {
                    self.messages = Some(messages);
                    return;
                }
                Err(e) => tracing::trace!(stream, error = %e, "tail waits for its stream"),
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
}

/// An ordered consumer of `stream` from `next` (it owns what it uses: a tail's state is not
/// `Sync`, and this future must be `Send`).
async fn open_consumer(
    context: async_nats::jetstream::Context,
    stream: String,
    next: Offset,
) -> Result<pull::Ordered, async_nats::Error> {
    let stream = context.get_stream(stream).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: next.0 + 1,
            },
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}
