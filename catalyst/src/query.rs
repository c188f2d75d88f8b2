//! Catalyst's query parameters: the `type` / `source` filters, and `from` resolved to an
//! offset of a channel (parsing itself is `draft_http`'s).

use draft_http::{ApiError, Query, Start};
use draft_log::{LogBackend, Offset, PartitionHead, PartitionName, Timestamp};

use crate::cloudevent::{Filter, Pattern};
use crate::error::log_error;

/// The `type` and `source` filters. An empty value is refused: it would match nothing
/// (every event has a non-empty type and source); `*` matches everything.
pub(crate) fn filter(query: &Query) -> Result<Filter, ApiError> {
    let patterns = |name: &str| -> Result<Vec<Pattern>, ApiError> {
        let values = query.all(name);
        if values.iter().any(String::is_empty) {
            return Err(ApiError::invalid_parameter(format!(
                "{name} must not be empty: give an exact {name}, a prefix ending in *, or \
                 leave {name} out"
            )));
        }
        Ok(values.iter().map(|v| Pattern::parse(v)).collect())
    };
    Ok(Filter {
        types: patterns("type")?,
        sources: patterns("source")?,
    })
}

/// Where a consumer starts on `channel`, which need not exist yet (it then waits for its
/// first event): `from` resolved against the channel's head.
pub(crate) async fn resolve_start(
    log: &dyn LogBackend,
    channel: &PartitionName,
    from: &str,
) -> Result<Offset, ApiError> {
    let head = log
        .head(channel)
        .await
        .map_err(|e| log_error(&e))?
        .unwrap_or_else(|| PartitionHead {
            partition: channel.clone(),
            first: Offset(0),
            next: Offset(0),
            bytes: 0,
            last_append: None,
        });
    resolve_from(log, channel, &head, from).await
}

/// Where a read starts: `earliest`, `latest` (only what comes next), an offset, or the first
/// event at or after an RFC 3339 time.
pub(crate) async fn resolve_from(
    log: &dyn LogBackend,
    channel: &PartitionName,
    head: &PartitionHead,
    from: &str,
) -> Result<Offset, ApiError> {
    match Start::parse(from)? {
        Start::Earliest => Ok(head.first),
        Start::Latest => Ok(head.next),
        Start::Offset(offset) => Ok(Offset(offset)),
        Start::Time(nanos) => {
            let offset = log
                .offset_at_time(channel, Timestamp::from_unix_nanos(nanos))
                .await
                .map_err(|e| log_error(&e))?;
            Ok(offset.unwrap_or(head.next))
        }
    }
}
