//! Produce: `POST /v1/channels/{channel}/events` in structured, binary or batch mode.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draft_log::NewRecord;

use draft_http::{ApiError, Code};

use crate::broker::Catalyst;
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

/// The handler.
pub(crate) async fn produce(
    State(state): State<Catalyst>,
    Path(channel): Path<String>,
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
    let events = match mode {
        Mode::Structured => vec![cloudevent::parse_structured(&body)?],
        Mode::Binary => vec![cloudevent::parse_binary(&headers, &body)?],
        Mode::Batch => {
            let events = cloudevent::parse_batch(&body, config.max_batch_events)?;
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
            events
        }
    };
    let (status, offsets) = append(&state, &channel, events).await?;
    let response = ProduceResponse {
        channel: channel.to_string(),
        offsets,
    };
    Ok((status, Json(response)).into_response())
}

/// Appends the events that are not duplicates, atomically; answers 201 if anything was
/// stored, 200 if every event was a duplicate.
async fn append(
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
        .map(|(e, _)| NewRecord {
            key: Some(e.record_key()),
            payload: e.json.clone(),
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
