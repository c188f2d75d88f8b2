//! How Catalyst's failures are answered over HTTP: the broker's own [`ApiError`]s (channel
//! names, refused events) and a failure of the log.

use draft_http::{ApiError, Code};

use crate::channel_name::ChannelNameError;
use crate::cloudevent::EventError;

/// 400 `invalid_channel`.
pub(crate) fn invalid_channel(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidChannel, message)
}

/// 404 `channel_not_found`.
pub(crate) fn channel_not_found(channel: &str) -> ApiError {
    ApiError::new(
        Code::ChannelNotFound,
        format!("channel {channel:?} does not exist; it is created by its first event"),
    )
}

/// The answer for a failure of the log: 503 `shutting_down` while the node stops, 503
/// `storage_failed` once a write to disk failed (the node is read-only), 503
/// `log_unavailable` while a clustered log cannot answer, 413 for an append over the log's
/// limits, otherwise a 500 that names no internals (the error goes to the
/// node's log, once, through `draft_http::log_server_errors`).
pub(crate) fn log_error(e: &draft_log::Error) -> ApiError {
    match e {
        draft_log::Error::Closed => ApiError::shutting_down(),
        draft_log::Error::ReadOnly(failure) => ApiError::storage_failed(failure.reason()),
        draft_log::Error::TooLarge { bytes, limit } => ApiError::too_large(format!(
            "{bytes} bytes is over the log's limit of {limit} bytes"
        )),
        draft_log::Error::TooMany { count, limit } => ApiError::too_large(format!(
            "{count} records is over the log's limit of {limit} records in one append"
        )),
        draft_log::Error::Unavailable(reason) => ApiError::log_unavailable(reason),
        // Some events of the append were stored before (through another node) and others
        // not, or not together: nothing was stored now.
        draft_log::Error::DuplicateMismatch { offset, .. } => ApiError::new(
            Code::Conflict,
            format!(
                "some of these events were stored before, not as this same batch (the first \
                 at offset {}); nothing was stored: send the new ones apart",
                offset.0
            ),
        ),
        _ => ApiError::storage(e),
    }
}

/// 400 `invalid_channel`: a channel users may not produce to.
impl From<ChannelNameError> for ApiError {
    fn from(e: ChannelNameError) -> Self {
        invalid_channel(e.to_string())
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        Self::new(Code::InvalidEvent, e.message)
    }
}

#[cfg(test)]
mod tests {
    use draft_log::StorageFailure;

    use super::*;

    #[test]
    fn a_read_only_log_is_a_503_storage_failed_and_other_storage_errors_stay_500() {
        let full = StorageFailure::from_io("append", &std::io::ErrorKind::StorageFull.into());
        let e = log_error(&draft_log::Error::ReadOnly(full));
        assert_eq!((e.code(), e.status().as_u16()), (Code::StorageFailed, 503));
        assert!(e.message().contains("the disk is full"), "{}", e.message());
        let e = log_error(&draft_log::Error::Backend("a read failed".into()));
        assert_eq!((e.code(), e.status().as_u16()), (Code::StorageError, 500));
        assert_eq!(
            log_error(&draft_log::Error::Closed).code(),
            Code::ShuttingDown
        );
        let e = log_error(&draft_log::Error::Unavailable("no responders".into()));
        assert_eq!((e.code(), e.status().as_u16()), (Code::LogUnavailable, 503));
        assert!(
            !e.message().contains("no responders"),
            "no internals in the answer"
        );
        let e = log_error(&draft_log::Error::TooMany {
            count: 1001,
            limit: 1000,
        });
        assert_eq!(e.status().as_u16(), 413);
    }
}
