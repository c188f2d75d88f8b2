//! Produce: `POST /v1/channels/{channel}/events` in structured, binary or batch mode, and
//! [`store`], what every produce does (the WebSocket producers of `produce_socket.rs` too).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use draft_log::NewRecord;

use draft_http::{Actor, ApiError, Code};

use crate::broker::{Catalyst, CatalystConfig};
use crate::channel_name::ChannelName;
use crate::cloudevent::{self, ParsedEvent};
use crate::dedup::Decision;
use crate::error::log_error;
use crate::wire::{BATCH, ProduceResponse, STRUCTURED};

/// The content mode of a produce request (CloudEvents HTTP binding §3).
enum Mode {
    Structured,
    Batch,
    Binary,
}

fn mode(headers: &HeaderMap) -> Result<Mode, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some(STRUCTURED) => Ok(Mode::Structured),
        Some(BATCH) => Ok(Mode::Batch),
        _ if headers.contains_key("ce-specversion") => Ok(Mode::Binary),
        other => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "content type {:?} is not a CloudEvents mode: send {STRUCTURED}, {BATCH}, \
                 or binary mode with ce-* headers",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// What a producer sent: one event or a batch, in a content mode.
pub(crate) enum Payload {
    /// One structured-mode event (a JSON object).
    Structured(Bytes),
    /// A JSON array of structured events, appended atomically.
    Batch(Bytes),
    /// A binary-mode event: its attributes in `ce-*` headers, and its data.
    Binary(HeaderMap, Bytes),
}

impl Payload {
    /// A WebSocket text frame: a batch if it is a JSON array, else one structured event.
    pub(crate) fn of_frame(frame: Bytes) -> Self {
        match frame.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Self::Batch(frame),
            _ => Self::Structured(frame),
        }
    }

    /// The largest such payload.
    fn limit(&self, config: &CatalystConfig) -> usize {
        match self {
            Self::Batch(_) => config.max_batch_bytes,
            Self::Structured(_) | Self::Binary(..) => config.max_event_bytes,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Structured(body) | Self::Batch(body) | Self::Binary(_, body) => body.len(),
        }
    }
}

/// The handler.
pub(crate) async fn produce(
    State(state): State<Catalyst>,
    Path(channel): Path<String>,
    actor: Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let channel = ChannelName::parse(&channel)?;
    let mode = mode(&headers)?;
    let config = state.config();
    let limit = match mode {
        Mode::Batch => config.max_batch_bytes,
        Mode::Structured | Mode::Binary => config.max_event_bytes,
    };
    let body = to_bytes(body, limit).await.map_err(|_| {
        ApiError::too_large(format!(
            "the request body is over the limit of {limit} bytes for this content mode"
        ))
    })?;
    let payload = match mode {
        Mode::Structured => Payload::Structured(body),
        Mode::Batch => Payload::Batch(body),
        Mode::Binary => Payload::Binary(headers, body),
    };
    let (status, offsets) = store(&state, &channel, payload, &actor).await?;
    let response = ProduceResponse {
        channel: channel.to_string(),
        offsets,
    };
    Ok((status, Json(response)).into_response())
}

/// What every produce does, over HTTP or a WebSocket: validates the events, names the
/// producer's token in them (`draftactor`, when it presented one), drops those the duplicate
/// window has seen, appends the others atomically (durable before this returns, by the log's
/// durability), and remembers their keys. Answers one offset per event sent, and 201 if
/// anything was stored, 200 if every event was a duplicate.
pub(crate) async fn store(
    state: &Catalyst,
    channel: &ChannelName,
    payload: Payload,
    actor: &Actor,
) -> Result<(StatusCode, Vec<u64>), ApiError> {
    let mut events = validate(state.config(), payload)?;
    stamp(&mut events, actor);
    append(state, channel, events).await
}

/// Puts the producer's actor into each event, unless it presented no token (auth off):
/// `anonymous` on every event would say nothing and cost bytes on disk.
fn stamp(events: &mut [ParsedEvent], actor: &Actor) {
    if actor.is_anonymous() {
        return;
    }
    for event in events {
        event.json = cloudevent::with_actor(&event.json, actor.name());
    }
}

/// [`store`] for several payloads (a WebSocket producer's frames) with one append: each payload
/// is validated on its own (a bad one gets its own error), the events of the valid ones are
/// appended together (each payload's events contiguous and in order), and each payload gets
/// its offsets, or the append's error.
pub(crate) async fn store_many(
    state: &Catalyst,
    channel: &ChannelName,
    payloads: Vec<Result<Payload, ApiError>>,
    actor: &Actor,
) -> Vec<Result<Vec<u64>, ApiError>> {
    let mut results = Vec::with_capacity(payloads.len());
    let mut events = Vec::new();
    // (index in `results`, first event, events) of each valid payload.
    let mut spans = Vec::new();
    for payload in payloads {
        match payload.and_then(|p| validate(state.config(), p)) {
            Ok(valid) => {
                spans.push((results.len(), events.len(), valid.len()));
                events.extend(valid);
                results.push(Ok(Vec::new()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    if events.is_empty() {
        return results;
    }
    stamp(&mut events, actor);
    // In the caller's task, not one of its own: a connection's groups must reach the log in
    // the order the pipeline polls them, which keeps its offsets in frame order.
    match append_to_completion(state, channel, events).await {
        Ok((_, offsets)) => {
            for (i, first, n) in spans {
                results[i] = Ok(offsets[first..first + n].to_vec());
            }
        }
        Err(e) => {
            for (i, _, _) in spans {
                results[i] = Err(e.clone());
            }
        }
    }
    results
}

/// The events of a payload, each checked against the CloudEvents rules, the size limits and
/// the depth limit.
fn validate(config: &CatalystConfig, payload: Payload) -> Result<Vec<ParsedEvent>, ApiError> {
    let limit = payload.limit(config);
    if payload.len() > limit {
        return Err(ApiError::too_large(format!(
            "{} bytes is over the limit of {limit} bytes for this content mode",
            payload.len()
        )));
    }
    let depth = config.max_json_depth;
    match payload {
        Payload::Structured(body) => Ok(vec![cloudevent::parse_structured(&body, depth)?]),
        Payload::Binary(headers, body) => {
            Ok(vec![cloudevent::parse_binary(&headers, &body, depth)?])
        }
        Payload::Batch(body) => {
            let events = cloudevent::parse_batch(&body, config.max_batch_events, depth)?;
            if let Some((i, e)) = events
                .iter()
                .enumerate()
                .find(|(_, e)| e.json.len() > config.max_event_bytes)
            {
                return Err(ApiError::too_large(format!(
                    "event {i} of the batch is {} bytes, over the limit of {} bytes",
                    e.json.len(),
                    config.max_event_bytes
                )));
            }
            Ok(events)
        }
    }
}

/// Appends `events` (those not already stored) atomically, for an HTTP request; answers 201
/// and every event's offset if anything was stored, 200 if every event was a duplicate.
///
/// The work runs in a task of its own: when a client disconnects mid-request, hyper drops
/// the handler, but an append already queued still commits, and its duplicate-window entry
/// must then record the offset, or the client's retry would be stored a second time. (A
/// WebSocket producer's frames go through [`store_many`] instead, in the connection's task,
/// which answers the frames in flight before it stops.)
async fn append(
    state: &Catalyst,
    channel: &ChannelName,
    events: Vec<ParsedEvent>,
) -> Result<(StatusCode, Vec<u64>), ApiError> {
    let (state, channel) = (state.clone(), channel.clone());
    tokio::spawn(async move { append_to_completion(&state, &channel, events).await })
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::internal(
                Code::Internal,
                "the append failed",
                format!("append task: {e}"),
            ))
        })
}

/// Reserves `events`' dedup keys, appends those that are new, records their offsets in the
/// duplicate window, and answers with every event's offset (a duplicate's first one).
async fn append_to_completion(
    state: &Catalyst,
    channel: &ChannelName,
    events: Vec<ParsedEvent>,
) -> Result<(StatusCode, Vec<u64>), ApiError> {
    let keys: Vec<_> = events
        .iter()
        .map(|e| crate::dedup::key(e.source_and_id()))
        .collect();
    let (decisions, reservation) = state.dedup().reserve(channel.as_str(), &keys).await;
    let records: Vec<NewRecord> = events
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| **d == Decision::Append)
        .map(|(e, _)| {
            let record = NewRecord::new(e.json.clone()).with_key(e.record_key());
            if state.config().log_dedup {
                record.with_dedup_id(Bytes::copy_from_slice(e.source_and_id()))
            } else {
                record
            }
        })
        .collect();
    let appended: Vec<u64> = if records.is_empty() {
        Vec::new()
    } else {
        let ack = state
            .log()
            .append(channel.partition(), records)
            .await
            .map_err(|e| log_error(&e))?;
        ack.offsets().map(|o| o.0).collect()
    };
    reservation.complete(&appended);
    let mut next_new = appended.iter();
    let mut offsets: Vec<u64> = Vec::with_capacity(decisions.len());
    for decision in &decisions {
        let offset = match *decision {
            Decision::Append => next_new.next().copied().unwrap_or_default(),
            Decision::Duplicate(o) => o,
            Decision::SameAs(j) => offsets[j],
        };
        offsets.push(offset);
    }
    state.metrics().events_produced(appended.len() as u64);
    let status = if appended.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudevent::MaxDepth;

    fn event(id: &str, data_depth: usize) -> String {
        let data = format!("{}{}", "[".repeat(data_depth), "]".repeat(data_depth));
        format!(r#"{{"specversion":"1.0","id":"{id}","source":"/deep","type":"t","data":{data}}}"#)
    }

    fn binary(data_depth: usize) -> Payload {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "b"),
            ("ce-source", "/deep"),
            ("ce-type", "t"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, value.parse().expect("header value"));
        }
        let data = format!("{}{}", "[".repeat(data_depth), "]".repeat(data_depth));
        Payload::Binary(headers, Bytes::from(data))
    }

    /// The broker's setting reaches every payload a producer can send: structured and batch
    /// over HTTP, the same as WebSocket frames, and binary mode.
    #[test]
    fn the_configured_depth_limit_holds_for_every_payload() {
        let config = CatalystConfig {
            max_json_depth: MaxDepth::new(8).expect("in range"),
            ..CatalystConfig::default()
        };
        // The event counts as one level: data 7 deep is 8 levels.
        for (data_depth, fits) in [(7, true), (8, false)] {
            let payloads = [
                Payload::Structured(Bytes::from(event("s", data_depth))),
                Payload::of_frame(Bytes::from(event("w", data_depth))),
                Payload::Batch(Bytes::from(format!("[{}]", event("b", data_depth)))),
                Payload::of_frame(Bytes::from(format!(" [{}]", event("wb", data_depth)))),
                binary(data_depth),
            ];
            for (i, payload) in payloads.into_iter().enumerate() {
                match validate(&config, payload) {
                    Ok(events) => {
                        assert!(fits, "payload {i}, data {data_depth} deep: stored");
                        assert_eq!(events.len(), 1);
                    }
                    Err(e) => {
                        assert!(!fits, "payload {i}, data {data_depth} deep: {e:?}");
                        assert_eq!(e.code(), Code::InvalidEvent);
                        assert!(
                            e.message().contains("data is nested deeper than 8 levels"),
                            "payload {i}: {}",
                            e.message()
                        );
                    }
                }
            }
        }
    }
}
