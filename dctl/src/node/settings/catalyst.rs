//! `[catalyst]` resolved: the broker's settings and the channels' default retention, with
//! defaults, checked.

use std::time::Duration;

use draft_catalyst::CatalystConfig;
use draft_catalyst::cloudevent::MaxDepth;
use draft_log::Retention;

use super::CatalystLayer;
use crate::node::Error;

/// `[catalyst]`, with defaults, checked: the broker's settings and the channels' default
/// retention.
pub(super) fn broker(catalyst: &CatalystLayer) -> Result<(CatalystConfig, Retention), Error> {
    let invalid = |what: &str| Error::Settings(what.to_owned());
    let retention = Retention {
        max_age: catalyst.retention_age_secs.map(Duration::from_secs),
        max_bytes: catalyst.retention_bytes,
    };
    if retention.max_age.is_some_and(|a| a.is_zero()) || retention.max_bytes == Some(0) {
        return Err(invalid(
            "the default retention's age and bytes must be positive",
        ));
    }
    let defaults = CatalystConfig::default();
    // At most 127: what serde_json reads by default (see `MaxDepth`).
    let max_json_depth = catalyst
        .max_json_depth
        .map_or(Ok(defaults.max_json_depth), MaxDepth::new)
        .map_err(|e| invalid(&e.to_string()))?;
    let catalyst = CatalystConfig {
        max_event_bytes: catalyst.max_event_bytes.unwrap_or(defaults.max_event_bytes),
        max_batch_bytes: catalyst.max_batch_bytes.unwrap_or(defaults.max_batch_bytes),
        max_json_depth,
        dedup_window: catalyst
            .dedup_window_secs
            .map_or(defaults.dedup_window, Duration::from_secs),
        produce_window_frames: catalyst
            .produce_window_frames
            .unwrap_or(defaults.produce_window_frames),
        produce_window_bytes: catalyst
            .produce_window_bytes
            .unwrap_or(defaults.produce_window_bytes),
        group_timeout: catalyst
            .group_timeout_ms
            .map_or(defaults.group_timeout, Duration::from_millis),
        group_commit_interval: catalyst
            .group_commit_interval_ms
            .map_or(defaults.group_commit_interval, Duration::from_millis),
        ..defaults
    };
    if catalyst.max_event_bytes == 0 || catalyst.max_batch_bytes < catalyst.max_event_bytes {
        return Err(invalid(
            "max event bytes must be positive and at most max batch bytes",
        ));
    }
    if catalyst.produce_window_frames == 0 || catalyst.produce_window_bytes == 0 {
        return Err(invalid("the WebSocket producers' window must be positive"));
    }
    let timeout = catalyst.group_timeout.as_millis();
    if !(100..=3_600_000).contains(&timeout) {
        return Err(invalid("the group timeout must be 100 ms to 1 hour"));
    }
    let commit = catalyst.group_commit_interval.as_millis();
    if !(1..=10_000).contains(&commit) || commit >= timeout {
        return Err(invalid(
            "the group commit interval must be 1 ms to 10 s, and shorter than the group timeout",
        ));
    }
    Ok((catalyst, retention))
}
