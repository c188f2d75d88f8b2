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
//! is sent again under a new batch id with the same message ids.

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
use crate::name;
use crate::read::{self, CHUNK};
use crate::stream::Streams;

/// The most messages JetStream takes in one atomic batch (its default limit).
pub const MAX_BATCH: usize = 1000;

/// The most bytes one append may hold in all.
pub const MAX_APPEND_BYTES: u64 = 64 * 1024 * 1024;

/// Room left in a message for its headers.
const HEADER_ROOM: usize = 1024;

/// How far back from the head a batch that JetStream says it already holds is looked for.
const MAX_SCAN: u64 = 64 * CHUNK as u64;

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

/// Appends `records` to `partition`, if its next offset is `expected` when one is given.
pub(crate) async fn append(
    streams: &Streams,
    limits: AppendLimits,
    partition: &PartitionName,
    expected: Option<Offset>,
    records: Vec<NewRecord>,
) -> Result<AppendAck> {
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
        return Ok(AppendAck {
            first: head,
            count: 0,
            time: Timestamp::now(),
        });
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
    let landed = streams
        .api
        .retrying("append", &stream, || {
            publish(
                streams, partition, &stream, &subject, expected, &ids, &bodies,
            )
        })
        .await?;
    let last = match landed {
        Landed::At(last) => last,
        Landed::DuplicateBatch => locate(streams, partition, &stream, &ids).await?,
    };
    let count = records.len() as u64;
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

/// Where a batch JetStream already holds (it said some of its ids are in the stream) was
/// stored: the sequence of its last message, found by reading back from the leader's head for
/// the newest message with one of its ids and checking that every id is there, in order,
/// around it. A batch only partly there (its ids stored before in another grouping) is
/// [`draft_log::Error::DuplicateMismatch`]. A replica behind the leader may not show it yet:
/// then it is looked for again, until the deadline.
async fn locate(
    streams: &Streams,
    partition: &PartitionName,
    stream: &str,
    ids: &[String],
) -> Result<u64> {
    let mismatch = |offset: u64| {
        Step::Fail(Error::Log(draft_log::Error::DuplicateMismatch {
            partition: partition.to_string(),
            offset: Offset(offset),
        }))
    };
    streams
        .api
        .retrying("find a retried append", stream, || async {
            let head = streams.state(partition).await?.map_or(0, |s| s.head.next.0);
            let (seq, index) = match find_back(streams, stream, head, ids).await? {
                Scan::Found { seq, index } => (seq, index),
                Scan::Unsure => {
                    return Err(Step::Transient("a replica behind the head".into()));
                }
                // Repeated, JetStream says, but older than the scan reaches: not a retry of
                // this batch, which would be near the head.
                Scan::Absent => return Err(mismatch(head.saturating_sub(1))),
            };
            let Some(at) = seq.checked_sub(index as u64).filter(|at| *at >= 1) else {
                return Err(mismatch(seq - 1));
            };
            let run = read::direct_batch(streams, stream, at, ids.len()).await?;
            if run.len() < ids.len() && at + run.len() as u64 <= head {
                return Err(Step::Transient("a replica behind the head".into()));
            }
            let matches =
                run.len() == ids.len()
                    && run.iter().zip(ids).enumerate().all(|(i, (m, id))| {
                        m.seq == at + i as u64 && m.msg_id.as_deref() == Some(id)
                    });
            if matches {
                return Ok(at + ids.len() as u64 - 1);
            }
            // The first of the ids stored, where the run would have started.
            let first = run
                .iter()
                .filter(|m| m.seq <= seq)
                .find(|m| m.msg_id.as_ref().is_some_and(|id| ids.contains(id)))
                .map_or(seq, |m| m.seq);
            Err(mismatch(first - 1))
        })
        .await
}

/// What reading back from the head found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The newest message with one of the ids: its sequence, and which id it has.
    Found { seq: u64, index: usize },
    /// None within [`MAX_SCAN`] messages of the head, every one of them read.
    Absent,
    /// The replica that answered was behind the head: ask again.
    Unsure,
}

/// The newest message with one of `ids`, read back from `head` at most [`MAX_SCAN`] messages.
async fn find_back(
    streams: &Streams,
    stream: &str,
    head: u64,
    ids: &[String],
) -> Result<Scan, Step> {
    let mut hi = head;
    while hi > 0 && head - hi < MAX_SCAN {
        let lo = hi.saturating_sub(CHUNK as u64 - 1).max(1);
        let chunk = read::direct_batch(streams, stream, lo, (hi - lo + 1) as usize).await?;
        if chunk.last().is_none_or(|m| m.seq < hi) {
            return Ok(Scan::Unsure);
        }
        let found = chunk.iter().rev().find_map(|m| {
            let id = m.msg_id.as_deref()?;
            let index = ids.iter().position(|i| i == id)?;
            Some(Scan::Found { seq: m.seq, index })
        });
        if let Some(found) = found {
            return Ok(found);
        }
        hi = lo - 1;
    }
    Ok(Scan::Absent)
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
