//! Query strings: repeated parameters (`type=a&type=b*`), unknown-parameter errors, and the
//! `from` position (`earliest`, `latest`, an offset, or an RFC 3339 time).

use std::collections::HashMap;

use draft_log::{LogBackend, Offset, PartitionHead, PartitionName, Timestamp};

use crate::cloudevent::{Filter, Pattern};
use crate::error::ApiError;

/// A parsed query string.
pub(crate) struct Query {
    params: HashMap<String, Vec<String>>,
}

impl Query {
    /// Parses `raw`, refusing parameters outside `allowed` so a typo is not silently ignored.
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut params: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::invalid_parameter(format!(
                    "unknown query parameter {k:?}; allowed: {}",
                    allowed.join(", ")
                )));
            }
            params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        Ok(Self { params })
    }

    /// The single value of `name`, if given; an error if given twice.
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.params.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v)),
            Some(_) => Err(ApiError::invalid_parameter(format!(
                "{name} may be given once"
            ))),
        }
    }

    /// The `type` and `source` filters. An empty value is refused: it would match nothing
    /// (every event has a non-empty type and source); `*` matches everything.
    pub(crate) fn filter(&self) -> Result<Filter, ApiError> {
        let patterns = |name: &str| -> Result<Vec<Pattern>, ApiError> {
            let values = self.params.get(name).map(Vec::as_slice).unwrap_or_default();
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
}

/// Where a read starts: `earliest`, `latest` (only what comes next), an offset, or the first
/// event at or after an RFC 3339 time.
pub(crate) async fn resolve_from(
    log: &dyn LogBackend,
    channel: &PartitionName,
    head: &PartitionHead,
    from: &str,
) -> Result<Offset, ApiError> {
    match from {
        "earliest" => Ok(head.first),
        "latest" => Ok(head.next),
        _ if from.bytes().all(|b| b.is_ascii_digit()) => from
            .parse()
            .map(Offset)
            .map_err(|_| ApiError::invalid_parameter(format!("offset {from:?} is too large"))),
        _ => {
            let time = chrono::DateTime::parse_from_rfc3339(from).map_err(|_| {
                ApiError::invalid_parameter(format!(
                    "from must be earliest, latest, an offset or an RFC 3339 time, not {from:?}"
                ))
            })?;
            let nanos = time.timestamp_nanos_opt().unwrap_or(0).max(0);
            let at = Timestamp::from_unix_nanos(u64::try_from(nanos).unwrap_or(0));
            let offset = log
                .offset_at_time(channel, at)
                .await
                .map_err(|e| ApiError::from_log(&e))?;
            Ok(offset.unwrap_or(head.next))
        }
    }
}
