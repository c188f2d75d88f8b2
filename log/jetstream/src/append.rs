//! Appends: one message, or one atomic batch (ADR-50) for several records; dedup ids as
//! `Nats-Msg-Id`, so a retry of an append whose acknowledgement was lost lands exactly once;
//! compare-and-set as `Nats-Expected-Last-Sequence`.
//!
//! The batch protocol: the first message (`Nats-Batch-Id`, `Nats-Batch-Sequence: 1`, and the
//! expectations, which JetStream only takes on the first) is a request JetStream answers with
//! an empty message or an error; the middle ones are published without a reply; the last
//! (`Nats-Batch-Commit: 1`) is a request answered with the publish acknowledgement of the
//! whole batch, whose sequence is the last message's. JetStream stores all or none of it. A
//! batch that JetStream abandoned (a leader change while it was staged, the in-flight limit)
//! is sent again under a new batch id with the same message ids; one that JetStream says it
//! already holds is looked for (`locate.rs`).

use std::time::Duration;

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use draft_log::{AppendAck, AppendLimits, NewRecord, Offset, PartitionName, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{Step, api_error, codes};
use crate::body;
use crate::config::ACK_ALLOWANCE_PER_MIB;
use crate::error::{Error, Result};
use crate::locate;
use crate::name;
use crate::read;
use crate::stream::Streams;

/// The most messages JetStream takes in one atomic batch (its default limit).
pub const MAX_BATCH: usize = 1000;

/// The most bytes one append may hold in all.
pub const MAX_APPEND_BYTES: u64 = 64 * 1024 * 1024;

/// Room left in a message for its headers.
const HEADER_ROOM: usize = 1024;

/// The limits of appends on a server whose messages take at most `max_payload` bytes.
pub(crate) fn limits(max_payload: usize) -> AppendLimits {
    AppendLimits {
        max_records: Some(MAX_BATCH),
        max_record_bytes: max_payload.saturating_sub(body::OVERHEAD + HEADER_ROOM) as u64,
        max_append_bytes: MAX_APPEND_BYTES,
    }
}

/// The `Nats-Msg-Id` of a record: from its dedup id (hashed, so any bytes make a valid header
/// and ids of every length weigh the same in the duplicate window), else one made for this
/// call, so the backend's own retries land once too.
fn msg_id(record: &NewRecord, call: &str, index: usize) -> String {
    match &record.dedup_id {
        Some(id) => {
            let digest = Sha256::digest(id);
            format!(
                "d{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
            )
        }
        None => format!("u{call}-{index}"),
    }
}

/// How long one attempt waits for the acknowledgement of an append of `bytes` in all: the
/// configured ack timeout, plus [`ACK_ALLOWANCE_PER_MIB`] for each MiB.
fn ack_wait(ack_timeout: Duration, bytes: usize) -> Duration {
    let nanos = ACK_ALLOWANCE_PER_MIB.as_nanos() * bytes as u128 / (1024 * 1024);
    ack_timeout + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// What one attempt found.
enum Landed {
    /// The last message of the append is at this sequence (`duplicate`: it was there before).
    At(u64),
    /// JetStream says the batch repeats ids it holds: find where.
    DuplicateBatch,
}

/// Appends `records` to `partition`, if its next offset is `expected` when one is given. A
/// batch that JetStream says repeats ids it holds is looked for: it is a retry, answered
/// with where it was stored, or [`draft_log::Error::DuplicateMismatch`].
pub(crate) async fn append(
    streams: &Streams,
    limits: AppendLimits,
    partition: &PartitionName,
    expected: Option<Offset>,
    records: Vec<NewRecord>,
) -> Result<AppendAck> {
    let count = records.len() as u64;
    let last = match publish_all(streams, limits, partition, expected, records).await? {
        Published::Empty(ack) => return Ok(ack),
        Published::At(last) => last,
        Published::Repeats { stream, ids, .. } => {
            locate::locate(streams, partition, &stream, &ids).await?
        }
    };
    acknowledged(streams, partition, last, count).await
}

/// [`append`] for a group of appends (see `group.rs`): `None` if JetStream refused the
/// group's first attempt because some of its ids are stored already. Then nothing of the
/// group was stored (no earlier attempt of it could have been), and each append must be
/// sent alone to get its own answer.
pub(crate) async fn append_group(
    streams: &Streams,
    limits: AppendLimits,
    partition: &PartitionName,
    records: Vec<NewRecord>,
) -> Result<Option<AppendAck>> {
    let count = records.len() as u64;
    let last = match publish_all(streams, limits, partition, None, records).await? {
        Published::Empty(ack) => return Ok(Some(ack)),
        Published::At(last) => last,
        Published::Repeats {
            first_attempt: true,
            ..
        } => return Ok(None),
        Published::Repeats { stream, ids, .. } => {
            locate::locate(streams, partition, &stream, &ids).await?
        }
    };
    acknowledged(streams, partition, last, count)
        .await
        .map(Some)
}

/// What publishing an append found.
enum Published {
    /// Nothing to publish: the head, as an acknowledgement of no records.
    Empty(AppendAck),
    /// Its last message is at this sequence.
    At(u64),
    /// JetStream says the batch repeats ids it holds (`first_attempt`: on the first attempt,
    /// so not ids an earlier attempt of this call stored).
    Repeats {
        stream: String,
        ids: Vec<String>,
        first_attempt: bool,
    },
}

/// Checks and publishes an append, retrying until it lands or the deadline.
async fn publish_all(
    streams: &Streams,
    limits: AppendLimits,
    partition: &PartitionName,
    expected: Option<Offset>,
    records: Vec<NewRecord>,
) -> Result<Published> {
    check_limits(limits, &records)?;
    streams.ensure(partition, None).await?;
    let stream = name::stream_name(partition.as_str());
    if records.is_empty() {
        let head = streams
            .state(partition)
            .await?
            .map_or(Offset(0), |s| s.head.next);
        if let Some(expected) = expected.filter(|e| *e != head) {
            return Err(conflict(partition, expected, head.0));
        }
        return Ok(Published::Empty(AppendAck {
            first: head,
            count: 0,
            time: Timestamp::now(),
        }));
    }
    let call = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..records.len())
        .map(|i| msg_id(&records[i], &call, i))
        .collect();
    let bodies: Vec<Bytes> = records
        .iter()
        .enumerate()
        .map(|(i, r)| body::encode(r.key.as_deref(), &r.payload, i as u32))
        .collect();
    let subject = name::subject(&stream);
    let mut attempts = 0u32;
    let landed = streams
        .api
        .retrying("append", &stream, || {
            attempts += 1;
            publish(
                streams, partition, &stream, &subject, expected, &ids, &bodies,
            )
        })
        .await?;
    Ok(match landed {
        Landed::At(last) => Published::At(last),
        Landed::DuplicateBatch => Published::Repeats {
            stream,
            ids,
            first_attempt: attempts == 1,
        },
    })
}

/// The acknowledgement of `count` records whose last is at sequence `last`.
async fn acknowledged(
    streams: &Streams,
    partition: &PartitionName,
    last: u64,
    count: u64,
) -> Result<AppendAck> {
    let time = read::appended_time(streams, partition, last).await?;
    Ok(AppendAck {
        first: Offset(last - count),
        count,
        time,
    })
}

fn check_limits(limits: AppendLimits, records: &[NewRecord]) -> Result<()> {
    if let Some(limit) = limits.max_records.filter(|l| records.len() > *l) {
        return Err(Error::Log(draft_log::Error::TooMany {
            count: records.len(),
            limit,
        }));
    }
    let size = |r: &NewRecord| (r.payload.len() + r.key.as_ref().map_or(0, Bytes::len)) as u64;
    if let Some(bytes) = records
        .iter()
        .map(size)
        .find(|b| *b > limits.max_record_bytes)
    {
        let limit = limits.max_record_bytes;
        return Err(Error::Log(draft_log::Error::TooLarge { bytes, limit }));
    }
    let bytes: u64 = records.iter().map(size).sum();
    if bytes > limits.max_append_bytes {
        let limit = limits.max_append_bytes;
        return Err(Error::Log(draft_log::Error::TooLarge { bytes, limit }));
    }
    Ok(())
}

fn conflict(partition: &PartitionName, expected: Offset, last_seq: u64) -> Error {
    Error::Conflict {
        partition: partition.to_string(),
        expected,
        next: Offset(last_seq),
    }
}

/// One attempt at the whole append.
async fn publish(
    streams: &Streams,
    partition: &PartitionName,
    stream: &str,
    subject: &str,
    expected: Option<Offset>,
    ids: &[String],
    bodies: &[Bytes],
) -> Result<Landed, Step> {
    let batch = (bodies.len() > 1).then(|| uuid::Uuid::new_v4().simple().to_string());
    let last = bodies.len() - 1;
    let ack_timeout = streams.config().ack_timeout;
    let whole = ack_wait(ack_timeout, bodies.iter().map(Bytes::len).sum());
    for (i, body) in bodies.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", ids[i].as_str());
        if i == 0 {
            headers.insert("Nats-Expected-Stream", stream);
            if let Some(expected) = expected {
                headers.insert(
                    "Nats-Expected-Last-Sequence",
                    expected.0.to_string().as_str(),
                );
            }
        }
        if let Some(batch) = &batch {
            headers.insert("Nats-Batch-Id", batch.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i == last {
                headers.insert("Nats-Batch-Commit", "1");
            }
        }
        if i != 0 && i != last {
            streams
                .api
                .client
                .publish_with_headers(subject.to_owned(), headers, body.clone())
                .await
                .map_err(|e| Step::Transient(e.to_string()))?;
            continue;
        }
        // The start of a batch is answered at once; the commit (or a single message) once
        // the whole append is stored on its replicas.
        let wait = if i == last { whole } else { ack_timeout };
        let reply = streams
            .api
            .request_within(subject.to_owned(), Some(headers), body.clone(), wait)
            .await?;
        if i != last {
            // The start of a batch: an empty reply, or an error.
            if reply.payload.is_empty() {
                continue;
            }
        }
        let ack: Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            Step::Fail(Error::Protocol {
                op: "append",
                reason: format!("publish reply is not JSON: {e}"),
            })
        })?;
        if let Some(e) = api_error(&ack) {
            return Err(match e.err_code {
                codes::WRONG_LAST_SEQUENCE => {
                    let next = e
                        .description
                        .rsplit(':')
                        .next()
                        .and_then(|n| n.trim().parse().ok());
                    match (expected, next) {
                        (Some(expected), Some(next)) => {
                            Step::Fail(conflict(partition, expected, next))
                        }
                        _ => Step::Fail(e.refused("append", stream)),
                    }
                }
                codes::BATCH_DUPLICATE => return Ok(Landed::DuplicateBatch),
                codes::BATCH_TOO_LARGE => Step::Fail(Error::Log(draft_log::Error::TooMany {
                    count: bodies.len(),
                    limit: MAX_BATCH,
                })),
                _ if e.is_transient() => Step::Transient(e.description),
                _ => Step::Fail(e.refused("append", stream)),
            });
        }
        if i != last {
            return Err(Step::Fail(Error::Protocol {
                op: "append",
                reason: "the start of a batch was acknowledged as a whole publish".into(),
            }));
        }
        let seq = ack.get("seq").and_then(Value::as_u64).ok_or_else(|| {
            Step::Fail(Error::Protocol {
                op: "append",
                reason: format!("publish acknowledgement without a sequence: {ack}"),
            })
        })?;
        return Ok(Landed::At(seq));
    }
    unreachable!("an append has at least one record")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_come_from_dedup_ids_or_the_call() {
        let with = NewRecord::new("x").with_dedup_id("source\0id\r\n");
        let a = msg_id(&with, "call1", 0);
        assert_eq!(
            a,
            msg_id(&with, "call2", 5),
            "a dedup id names the record whatever the call"
        );
        assert!(
            a.len() < 64
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        );
        let without = NewRecord::new("x");
        assert_eq!(msg_id(&without, "call1", 2), "ucall1-2");
        assert_ne!(msg_id(&without, "call1", 2), msg_id(&without, "call2", 2));
    }

    #[test]
    fn an_acknowledgement_is_awaited_longer_for_a_bigger_append() {
        let base = Duration::from_millis(500);
        assert_eq!(ack_wait(base, 0), base);
        assert_eq!(ack_wait(base, 1024 * 1024), base + ACK_ALLOWANCE_PER_MIB);
        let largest = ack_wait(base, MAX_APPEND_BYTES as usize);
        assert_eq!(largest, base + ACK_ALLOWANCE_PER_MIB * 64);
        assert!(ack_wait(base, 1000) < base + Duration::from_millis(1));
    }

    #[test]
    fn appends_over_the_limits_are_refused_before_sending() {
        let limits = limits(1024 * 1024);
        assert!(limits.max_record_bytes < 1024 * 1024);
        let many: Vec<NewRecord> = (0..=MAX_BATCH).map(|_| NewRecord::new("x")).collect();
        assert!(matches!(
            check_limits(limits, &many),
            Err(Error::Log(draft_log::Error::TooMany {
                count: 1001,
                limit: 1000
            }))
        ));
        let big = vec![NewRecord::new(vec![
            0u8;
            limits.max_record_bytes as usize + 1
        ])];
        assert!(matches!(
            check_limits(limits, &big),
            Err(Error::Log(draft_log::Error::TooLarge { .. }))
        ));
        let fine = vec![NewRecord::new(vec![0u8; limits.max_record_bytes as usize])];
        assert!(check_limits(limits, &fine).is_ok());
    }
}
