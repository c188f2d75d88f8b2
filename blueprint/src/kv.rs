//! KV endpoints: get, put (compare-and-set with `If-Match` / `If-None-Match`), delete, list,
//! history.
//!
//! The state (now or `?at=`) says which keys exist and at which revision; every value
//! answered is read from the control log at its put's revision
//! ([`kv_values`](crate::kv_values)), through the value cache for single keys, after the
//! state's lock is let go, and a page's values are bounded from their lengths before any is
//! read.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draft_http::{Actor, ApiError, Code, Query};

use crate::applier::{Condition, Outcome};
use crate::blueprint::Blueprint;
use crate::names::{HISTORY, Key, Revision};
use crate::projection::KvMeta;
use crate::respond::{json, name_error, value_error, view, with_revision, write_error};
use crate::wire::{KvChange, KvEntry, KvHistory, KvList, base64_encode};

/// Keys per page of `GET /v1/kv` by default, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 10_000;
/// The most changes one page of a key's history holds.
const MAX_HISTORY_PAGE: usize = 1000;
/// About how many value bytes one page holds (a page has at least one entry).
const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The key in a request's path, or 400 `invalid_key` with the rule it breaks (see [`Key`]).
fn parse_key(key: &str) -> Result<Key, ApiError> {
    Key::parse(key).map_err(|e| name_error(&e))
}

/// The answer to `PUT` or `DELETE` on `{key}/history`, which is read-only: 405 with
/// `Allow: GET, HEAD`.
fn history_is_read_only(key: &str, method: &str) -> Option<Response> {
    key.ends_with(HISTORY).then(|| {
        let mut response = ApiError::new(
            Code::MethodNotAllowed,
            format!("{key} is a key's history, which is read-only: {method} is not allowed"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        response
    })
}

fn etag(revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `If-Match: "N"` / `If-Match: *` / `If-None-Match: *`.
fn condition(headers: &HeaderMap) -> Result<Condition, ApiError> {
    let bad = |m: String| ApiError::new(Code::InvalidPrecondition, m);
    if headers.contains_key(header::IF_NONE_MATCH) && headers.contains_key(header::IF_MATCH) {
        return Err(bad(
            "send If-Match (the key exists, at a revision) or If-None-Match: * (it does not \
             exist), not both"
                .into(),
        ));
    }
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        return match v.to_str() {
            Ok("*") => Ok(Condition::IfAbsent),
            _ => Err(bad("If-None-Match supports only *".into())),
        };
    }
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(Condition::None);
    };
    let text = v
        .to_str()
        .map_err(|_| bad("If-Match is not text".into()))?
        .trim();
    if text == "*" {
        return Ok(Condition::IfPresent);
    }
    let revision = text.trim_start_matches("W/").trim_matches('"');
    revision.parse().map(Condition::IfMatch).map_err(|_| {
        bad(format!(
            "If-Match must be a revision as sent in ETag, like \"12\", not {text:?}"
        ))
    })
}

fn entry(key: String, v: &KvMeta, value: &[u8]) -> KvEntry {
    KvEntry {
        key,
        value_base64: base64_encode(value),
        revision: v.revision,
        create_revision: v.create_revision,
        updated: draft_http::rfc3339(v.time_nanos),
        actor: v.actor.clone(),
    }
}

/// `GET /v1/kv/{key}[?at=]`: the raw value, its revision as `ETag`; or `…/history`.
pub(crate) async fn get(
    State(bp): State<Blueprint>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(key) = key.strip_suffix(HISTORY) {
        return history(&bp, key, raw.as_deref()).await;
    }
    let key = parse_key(&key)?;
    let q = Query::parse(raw.as_deref(), &["at", "min_revision"])?;
    let view = view(&bp, &q).await?;
    let Some(meta) = view.with(|p| p.get(&key).cloned()) else {
        return Err(ApiError::new(
            Code::NotFound,
            format!("key {key:?} does not exist"),
        ));
    };
    let value = bp.value(&key, &meta).await.map_err(|e| value_error(&e))?;
    let mut response = value.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ETAG, etag(meta.revision));
    Ok(with_revision(response, view.revision()))
}

/// `PUT /v1/kv/{key}`: the body is the value.
pub(crate) async fn put(
    State(bp): State<Blueprint>,
    Path(key): Path<String>,
    actor: Actor,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(refusal) = history_is_read_only(&key, "PUT") {
        return Ok(refusal);
    }
    let key = parse_key(&key)?;
    let condition = condition(&headers)?;
    let limit = bp.config().max_value_bytes;
    let value = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(format!("a value is at most {limit} bytes")))?;
    let outcome = bp
        .put(&key, value.to_vec(), condition, actor.name())
        .await
        .map_err(|e| write_error(e, &format!("key {key:?}")))?;
    let Outcome::Appended(revision) = outcome else {
        return Err(ApiError::new(
            Code::Internal,
            "a put always changes the key",
        ));
    };
    let mut response = json(
        StatusCode::OK,
        &serde_json::json!({"key": key, "revision": revision}),
    );
    response
        .headers_mut()
        .insert(header::ETAG, etag(revision.get()));
    Ok(with_revision(response, Some(revision)))
}

/// `DELETE /v1/kv/{key}`.
pub(crate) async fn delete(
    State(bp): State<Blueprint>,
    Path(key): Path<String>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(refusal) = history_is_read_only(&key, "DELETE") {
        return Ok(refusal);
    }
    let key = parse_key(&key)?;
    let condition = condition(&headers)?;
    let outcome = bp
        .delete(&key, condition, actor.name())
        .await
        .map_err(|e| write_error(e, &format!("key {key:?}")))?;
    let revision = match outcome {
        Outcome::Appended(r) => Some(r),
        Outcome::Unchanged => bp.revision(),
    };
    Ok(with_revision(
        json(
            StatusCode::OK,
            &serde_json::json!({"key": key, "revision": revision}),
        ),
        revision,
    ))
}

/// `GET /v1/kv?prefix=&after=&limit=&at=`.
pub(crate) async fn list(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(
        raw.as_deref(),
        &["prefix", "after", "limit", "at", "min_revision"],
    )?;
    let limit = match q.one("limit")? {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| ApiError::invalid_parameter(format!("limit must be 1..={MAX_PAGE}")))?,
    };
    let prefix = q.one("prefix")?.unwrap_or("");
    let view = view(&bp, &q).await?;
    let after = q.one("after")?;
    // At most `limit` entries and about PAGE_BYTES of values (at least one entry), counted
    // from their lengths before any is read: a page of 1 MiB values is not held ten
    // thousand times over.
    let (page, more) = view.with(|p| {
        let mut page: Vec<(String, KvMeta)> = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for (k, v) in p.range(prefix, after, limit + 1) {
            if page.len() == limit || (!page.is_empty() && bytes >= PAGE_BYTES as u64) {
                more = true;
                break;
            }
            bytes += v.value_len;
            page.push((k.clone(), v.clone()));
        }
        (page, more)
    });
    let next_after = more.then(|| page.last().map(|(k, _)| k.clone()));
    // Each value is encoded as soon as it is read: the page holds its values once.
    let reader = bp.shared.values();
    let mut entries: Vec<KvEntry> = Vec::with_capacity(page.len());
    for (key, meta) in page {
        let value = reader
            .scan_value(&key, &meta)
            .await
            .map_err(|e| value_error(&e))?;
        entries.push(entry(key, &meta, &value));
    }
    let revision = view.revision();
    let page = KvList {
        entries,
        next_after: next_after.flatten(),
        revision: revision.map(Revision::get),
    };
    Ok(with_revision(json(StatusCode::OK, &page), revision))
}

/// `GET /v1/kv/{key}/history[?after=&limit=&at=]`: the key's changes after revision `after`,
/// oldest first, with revision, time and actor: at most `limit` (default 100, at most
/// [`MAX_HISTORY_PAGE`]) and about [`PAGE_BYTES`] of values; `next_after` says where the next
/// page starts.
async fn history(bp: &Blueprint, key: &str, raw: Option<&str>) -> Result<Response, ApiError> {
    let key = parse_key(key)?;
    let q = Query::parse(raw, &["after", "limit", "at", "min_revision"])?;
    let limit = match q.one("limit")? {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=MAX_HISTORY_PAGE).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("limit must be 1..={MAX_HISTORY_PAGE}"))
            })?,
    };
    let after: Option<u64> = match q.one("after")? {
        None => None,
        Some(a) => Some(a.parse().map_err(|_| {
            ApiError::invalid_parameter("after must be a revision (an unsigned integer)")
        })?),
    };
    let view = view(bp, &q).await?;
    let (revisions, ever_written) = view.with(|p| {
        let all = p.history(&key);
        let from = after.map_or(0, |a| all.partition_point(|r| *r <= a));
        (
            all[from..]
                .iter()
                .take(limit + 1)
                .copied()
                .collect::<Vec<u64>>(),
            !all.is_empty(),
        )
    });
    if !ever_written {
        return Err(ApiError::new(
            Code::NotFound,
            format!("key {key:?} was never written"),
        ));
    }
    let mut changes = Vec::with_capacity(revisions.len().min(limit));
    let mut bytes = 0;
    let mut next_after = None;
    for revision in revisions {
        if changes.len() == limit || (!changes.is_empty() && bytes >= PAGE_BYTES) {
            next_after = changes.last().map(|c: &KvChange| c.revision);
            break;
        }
        let change = bp
            .shared
            .values()
            .change(&key, revision)
            .await
            .map_err(|e| value_error(&e))?;
        // Counted as held: base64 text.
        bytes += change.value_base64.as_ref().map_or(0, String::len);
        changes.push(change);
    }
    Ok(with_revision(
        json(
            StatusCode::OK,
            &KvHistory {
                key: key.as_str().to_owned(),
                changes,
                next_after,
            },
        ),
        view.revision(),
    ))
}
