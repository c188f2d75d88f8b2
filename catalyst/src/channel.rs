//! Channels: name checks, statistics, and paged reads (`GET …/events`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use draft_log::{Offset, PartitionHead, PartitionName};

use crate::broker::Catalyst;
use crate::channel_name::ChannelName;
use crate::cloudevent::Filter;
use crate::read_size::{READ_BYTES, ReadSize};
use crate::retention;
use axum::body::{Body, to_bytes};
use draft_http::{Actor, ApiError, Code, Query, rfc3339};

use crate::error::{channel_not_found, invalid_channel, log_error};
use crate::feed::delivered_text;
use crate::query::{filter, resolve_from};
use crate::wire::{
    BATCH, ChannelInfo, ChannelList, ChannelSettings, ChannelSettingsApplied, NEXT_OFFSET_HEADER,
    Retention,
};

/// The most events one page returns.
pub const MAX_PAGE: usize = 10_000;
/// Events per page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;
/// The largest body of `PUT /v1/channels/{channel}`.
const SETTINGS_BODY_BYTES: usize = 4096;

/// A channel name from a URL, for reading: any valid name, reserved ones included. Names
/// users may produce to are [`ChannelName`](crate::channel_name::ChannelName)s.
pub(crate) fn channel(name: &str) -> Result<PartitionName, ApiError> {
    PartitionName::new(name).map_err(|e| invalid_channel(e.to_string()))
}

/// What `GET /v1/channels/{channel}` says of the channel whose head is `head`.
async fn info(state: &Catalyst, head: &PartitionHead) -> Result<ChannelInfo, ApiError> {
    let (retention, retention_set) = retention_of(state, &head.partition).await?;
    Ok(ChannelInfo {
        channel: head.partition.to_string(),
        first_offset: head.first.0,
        last_offset: head.last().map(|o| o.0),
        count: head.count(),
        bytes: head.bytes,
        last_append_time: head.last_append.map(|t| rfc3339(t.as_unix_nanos())),
        retention,
        retention_set,
    })
}

/// The retention in force for `channel`, and whether it is the channel's own.
async fn retention_of(
    state: &Catalyst,
    channel: &PartitionName,
) -> Result<(Retention, bool), ApiError> {
    // Another node on the same log may have changed it.
    state
        .retentions()
        .refresh()
        .await
        .map_err(|e| log_error(&e))?;
    if let Some(own) = state.retentions().own(channel.as_str()) {
        return Ok((own, true));
    }
    let default = state
        .log()
        .retention(channel)
        .await
        .map_err(|e| log_error(&e))?;
    Ok((retention::from_log(default), false))
}

/// `GET /v1/channels`: every user channel (reserved partitions are Draft's own).
pub(crate) async fn list(State(state): State<Catalyst>) -> Result<Json<ChannelList>, ApiError> {
    let heads = state.log().partitions().await.map_err(|e| log_error(&e))?;
    let mut channels = Vec::new();
    for head in heads.iter().filter(|h| !h.partition.is_reserved()) {
        channels.push(info(&state, head).await?);
    }
    Ok(Json(ChannelList { channels }))
}

/// `PUT /v1/channels/{channel}`: sets the channel's own retention (`{"retention": null}`:
/// back to the node's default), recorded as `io.draft.channel.configured`. The channel need
/// not have events yet. Reserved channels keep everything: 400.
pub(crate) async fn configure(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    actor: Actor,
    body: Body,
) -> Result<Json<ChannelSettingsApplied>, ApiError> {
    let channel = ChannelName::parse(&name)?;
    let bytes = to_bytes(body, SETTINGS_BODY_BYTES).await.map_err(|_| {
        ApiError::too_large(format!(
            "channel settings are at most {SETTINGS_BODY_BYTES} bytes"
        ))
    })?;
    let invalid =
        |m: String| ApiError::new(Code::InvalidSettings, format!("channel settings: {m}"));
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    // Objects only: serde would also read a struct from an array of its fields.
    let retention_is_object = value
        .get("retention")
        .is_none_or(|r| r.is_object() || r.is_null());
    if !value.is_object() || !retention_is_object {
        return Err(invalid(
            "an object, with `retention` an object or null".to_owned(),
        ));
    }
    let settings: ChannelSettings =
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let revision = state
        .retentions()
        .set(&channel, settings.retention, &actor)
        .await?;
    let (retention, retention_set) = retention_of(&state, channel.partition()).await?;
    Ok(Json(ChannelSettingsApplied {
        channel: channel.to_string(),
        retention,
        retention_set,
        revision,
    }))
}

/// `GET /v1/channels/{channel}`.
pub(crate) async fn get(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
) -> Result<Json<ChannelInfo>, ApiError> {
    let channel = channel(&name)?;
    let head = state
        .log()
        .head(&channel)
        .await
        .map_err(|e| log_error(&e))?;
    let head = head.ok_or_else(|| channel_not_found(&name))?;
    Ok(Json(info(&state, &head).await?))
}

/// `GET /v1/channels/{channel}/events?from=&limit=&type=&source=`: a page of events as a
/// CloudEvents batch; `draft-next-offset` says where the next page starts.
pub(crate) async fn events(
    State(state): State<Catalyst>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let channel = channel(&name)?;
    let query = Query::parse(raw.as_deref(), &["from", "limit", "type", "source"])?;
    let filter = filter(&query)?;
    let limit = match query.one("limit")? {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("limit must be 1..={MAX_PAGE}, not {l:?}"))
            })?,
    };
    let log = state.log();
    let Some(head) = log.head(&channel).await.map_err(|e| log_error(&e))? else {
        return Err(channel_not_found(&name));
    };
    let mut next = resolve_from(
        log,
        &channel,
        &head,
        query.one("from")?.unwrap_or("earliest"),
    )
    .await?;
    let (page, next) = read_page(&state, &channel, &mut next, limit, &filter).await?;
    let body = format!("[{}]", page.join(","));
    let mut response = ([(header::CONTENT_TYPE, BATCH)], body).into_response();
    response
        .headers_mut()
        .insert(NEXT_OFFSET_HEADER, HeaderValue::from(next.0));
    Ok(response)
}

/// Reads up to `limit` matching events from `next`, and about [`READ_BYTES`] of them at
/// most (a page of large events ends early; the next offset says where to go on); with a
/// filter, scans at most `10 × limit` records so one request stays bounded.
async fn read_page(
    state: &Catalyst,
    channel: &PartitionName,
    next: &mut Offset,
    limit: usize,
    filter: &Filter,
) -> Result<(Vec<String>, Offset), ApiError> {
    let mut page = Vec::new();
    let mut page_bytes = 0usize;
    let mut budget = limit.saturating_mul(10);
    let mut size = ReadSize::new(1024, READ_BYTES);
    'reading: while page.len() < limit && budget > 0 {
        let want = if filter.is_empty() {
            limit - page.len()
        } else {
            budget.min(1024)
        };
        let records = state
            .log()
            .read(channel, *next, want.min(size.next()))
            .await
            .map_err(|e| log_error(&e))?;
        size.observe(records.len(), records.iter().map(|r| r.payload.len()).sum());
        let Some(last) = records.last().map(|r| r.offset) else {
            break;
        };
        for record in &records {
            if !page.is_empty() && page_bytes + record.payload.len() > READ_BYTES {
                break 'reading;
            }
            *next = record.offset.next();
            budget -= 1;
            if filter.matches_key(record.key.as_deref()) {
                let text = delivered_text(channel, record).to_string();
                page_bytes += text.len();
                page.push(text);
                if page.len() == limit {
                    break;
                }
            }
        }
        debug_assert!(*next <= last.next());
    }
    Ok((page, *next))
}
