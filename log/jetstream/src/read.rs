//! Reads: ranges by batch direct get (answered by any replica), checked against the leader's
//! head because a follower may not have applied the newest appends yet; the time of a message
//! just appended from the leader, or by direct get from any replica while the leader does not
//! answer; single messages and time lookups by message get (answered by the leader).

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use draft_log::{Offset, PartitionName, Record, Timestamp};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::{Step, codes};
use crate::body;
use crate::error::{Error, Result};
use crate::name;
use crate::stream::{Streams, parse_time};

/// The most messages one direct get asks for.
pub(crate) const CHUNK: usize = 256;
/// The most bytes one direct get asks for.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// A message as JetStream stored it.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) seq: u64,
    pub(crate) time: Timestamp,
    pub(crate) msg_id: Option<String>,
    pub(crate) body: Bytes,
}

impl Raw {
    /// The record it holds.
    pub(crate) fn record(&self, partition: &PartitionName) -> Result<Record> {
        let offset = Offset(self.seq.saturating_sub(1));
        let decoded = body::decode(&self.body).map_err(|reason| Error::Corrupt {
            partition: partition.to_string(),
            offset,
            reason: reason.to_owned(),
        })?;
        Ok(Record {
            partition: partition.clone(),
            offset,
            time: self.time,
            key: decoded.key,
            payload: decoded.payload,
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(async_nats::HeaderValue::as_str)
}

/// The time JetStream stored message `seq` of `partition` with, just after an append of it
/// was acknowledged: asked of the leader, which holds every acknowledged message, for at
/// most the ack timeout; then, if the leader did not answer (lost right after it
/// acknowledged), of any replica by direct get (a quorum holds the message; one behind is
/// asked again). A message already gone (retention) has the time of now.
pub(crate) async fn appended_time(
    streams: &Streams,
    partition: &PartitionName,
    seq: u64,
) -> Result<Timestamp> {
    let stream = name::stream_name(partition.as_str());
    let leader = format!("$JS.API.STREAM.MSG.GET.{stream}");
    let replicas = format!("$JS.API.DIRECT.GET.{stream}");
    let body = json!({"seq": seq});
    let wait = streams.config().ack_timeout;
    let protocol = |reason: &str| {
        Step::Fail(Error::Protocol {
            op: "read the append time",
            reason: reason.to_owned(),
        })
    };
    streams
        .api
        .retrying("read the append time", &stream, || async {
            match streams.api.call_once_within(&leader, &body, wait).await {
                Ok(Ok(reply)) => {
                    return reply["message"]["time"]
                        .as_str()
                        .and_then(parse_time)
                        .ok_or_else(|| protocol("a message without its time"));
                }
                Ok(Err(e)) if e.err_code == codes::NO_MESSAGE => return Ok(Timestamp::now()),
                Ok(Err(e)) => return Err(Step::Fail(e.refused("read the append time", &stream))),
                Err(Step::Fail(e)) => return Err(Step::Fail(e)),
                Err(Step::Transient(_)) => {}
            }
            let payload = Bytes::from(body.to_string());
            let reply = streams
                .api
                .request_within(replicas.clone(), None, payload, wait)
                .await?;
            match reply.status.map(|s| s.as_u16()) {
                None | Some(200) => {}
                // The acknowledgement says a quorum holds it: a replica behind. Ask again;
                // the leader, once it answers, also says if retention removed it.
                Some(404) => {
                    return Err(Step::Transient(format!(
                        "no leader, and a replica without message {seq} yet"
                    )));
                }
                Some(code) => return Err(Step::Transient(format!("direct get status {code}"))),
            }
            let headers = reply.headers.unwrap_or_default();
            header(&headers, "Nats-Time-Stamp")
                .and_then(parse_time)
                .ok_or_else(|| protocol("a message without its time"))
        })
        .await
}

/// One batch direct get: up to `count` messages from `seq` on (fewer at the end of what this
/// replica holds).
pub(crate) async fn direct_batch(
    streams: &Streams,
    stream: &str,
    seq: u64,
    count: usize,
) -> Result<Vec<Raw>, Step> {
    let client = &streams.api.client;
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| Step::Transient(e.to_string()))?;
    let body = json!({"seq": seq, "batch": count, "max_bytes": CHUNK_BYTES});
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            Bytes::from(body.to_string()),
        )
        .await
        .map_err(|e| Step::Transient(e.to_string()))?;
    let mut out = Vec::new();
    while out.len() < count {
        let message = match tokio::time::timeout(streams.api.timeout, replies.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(Step::Transient("direct get subscription closed".into())),
            Err(_) => return Err(Step::Transient("direct get timed out".into())),
        };
        match message.status.map(|s| s.as_u16()) {
            // 204: the end of the batch; 404: nothing at or after `seq`.
            Some(204 | 404) => break,
            Some(503) => return Err(Step::Transient("no responders for direct get".into())),
            Some(408) => return Err(Step::Transient("direct get timed out on the server".into())),
            Some(code) => {
                return Err(Step::Fail(Error::Protocol {
                    op: "direct get",
                    reason: format!("status {code}: {:?}", message.description),
                }));
            }
            None => {}
        }
        let headers = message.headers.unwrap_or_default();
        let parsed = header(&headers, "Nats-Sequence")
            .and_then(|s| s.parse::<u64>().ok())
            .zip(header(&headers, "Nats-Time-Stamp").and_then(parse_time));
        let Some((seq, time)) = parsed else {
            return Err(Step::Fail(Error::Protocol {
                op: "direct get",
                reason: "a message without its sequence or time".into(),
            }));
        };
        out.push(Raw {
            seq,
            time,
            msg_id: header(&headers, "Nats-Msg-Id").map(str::to_owned),
            body: message.payload,
        });
    }
    Ok(out)
}

/// Up to `limit` records of `partition` from `from` on.
pub(crate) async fn read(
    streams: &Streams,
    partition: &PartitionName,
    from: Offset,
    limit: usize,
) -> Result<Vec<Record>> {
    let Some(state) = streams.state(partition).await? else {
        return Ok(Vec::new());
    };
    // The leader's head at the start: every record below it must be read.
    let (first, end) = (state.head.first.max(from), state.head.next);
    let stream = name::stream_name(partition.as_str());
    let mut records = Vec::new();
    let mut next = first;
    while next < end && records.len() < limit {
        let want = (limit - records.len())
            .min(CHUNK)
            .min((end.0 - next.0) as usize);
        let chunk = streams
            .api
            .retrying("read", &stream, || async {
                let raw = direct_batch(streams, &stream, next.0 + 1, want).await?;
                if !raw.is_empty() {
                    return Ok((raw, next));
                }
                // Nothing: retention removed those records meanwhile, or the replica that
                // answered is behind the leader (ask again: any replica may answer).
                let first = streams
                    .state(partition)
                    .await?
                    .map_or(end, |s| s.head.first);
                if first > next {
                    return Ok((raw, first));
                }
                Err(Step::Transient(format!("replica behind the head {end}")))
            })
            .await;
        let (chunk, first_kept) = chunk?;
        next = next.max(first_kept);
        for raw in chunk {
            let record = raw.record(partition)?;
            // Retention may remove records while we read: the next one we find is the first.
            if record.offset < next {
                continue;
            }
            next = record.offset.next();
            records.push(record);
        }
    }
    Ok(records)
}

/// The message at `seq` from the leader, or `None` if there is none.
pub(crate) async fn message(streams: &Streams, stream: &str, seq: u64) -> Result<Option<Raw>> {
    message_by(streams, stream, &json!({"seq": seq})).await
}

/// The first message at or after `time`.
pub(crate) async fn offset_at_time(
    streams: &Streams,
    partition: &PartitionName,
    time: Timestamp,
) -> Result<Option<Offset>> {
    let stream = name::stream_name(partition.as_str());
    let nanos = i64::try_from(time.as_unix_nanos()).unwrap_or(i64::MAX);
    let start = chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let found = message_by(streams, &stream, &json!({"start_time": start})).await?;
    Ok(found.map(|raw| Offset(raw.seq - 1)))
}

async fn message_by(streams: &Streams, stream: &str, body: &Value) -> Result<Option<Raw>> {
    let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
    let reply = match streams
        .api
        .call("get message", stream, &subject, body)
        .await?
    {
        Ok(reply) => reply,
        Err(e) if matches!(e.err_code, codes::NO_MESSAGE | codes::STREAM_NOT_FOUND) => {
            return Ok(None);
        }
        Err(e) => return Err(e.refused("get message", stream)),
    };
    let message = &reply["message"];
    let protocol = |reason: &str| Error::Protocol {
        op: "get message",
        reason: reason.to_owned(),
    };
    let seq = message["seq"].as_u64().ok_or_else(|| protocol("no seq"))?;
    let time = message["time"]
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| protocol("no time"))?;
    let data = message["data"].as_str().unwrap_or("");
    let body = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| protocol("data is not base64"))?;
    Ok(Some(Raw {
        seq,
        time,
        msg_id: None,
        body: Bytes::from(body),
    }))
}
