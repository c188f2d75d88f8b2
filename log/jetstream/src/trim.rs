//! `trim_before` on JetStream: a purge of the sequences before the offset, moved back to the
//! start of the append the offset is in (its records share a body's `index`), so appends go
//! whole. Only on streams created without `deny_purge` (see
//! [`JetStreamConfig::trimmable`](crate::JetStreamConfig::trimmable)); any other is answered
//! as unsupported, because purging is what `deny_purge` forbids every client.

use draft_log::{Offset, PartitionName};

use crate::body;
use crate::error::{Error, Result};
use crate::name;
use crate::read;
use crate::stream::Streams;

/// Removes the records of `partition` before `before`, whole appends at a time.
pub(crate) async fn trim_before(
    streams: &Streams,
    partition: &PartitionName,
    before: Offset,
) -> Result<u64> {
    let Some(state) = streams.state(partition).await? else {
        return Ok(0);
    };
    if state.deny_purge {
        return Err(Error::Unsupported {
            op: "trim_before",
            partition: partition.to_string(),
            reason: "its stream denies purges (only trimmable partitions, such as _groups, can be trimmed)",
        });
    }
    let mut cut = before.min(state.head.next);
    if cut <= state.head.first {
        return Ok(0);
    }
    if cut < state.head.next {
        let stream = name::stream_name(partition.as_str());
        if let Some(raw) = read::message(streams, &stream, cut.0 + 1).await? {
            let decoded = body::decode(&raw.body).map_err(|reason| Error::Corrupt {
                partition: partition.to_string(),
                offset: cut,
                reason: reason.to_owned(),
            })?;
            cut = Offset(cut.0 - u64::from(decoded.index));
        }
    }
    if cut <= state.head.first {
        return Ok(0);
    }
    streams.purge_before(partition, cut).await
}
