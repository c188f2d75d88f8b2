//! [`AppendLimits`]: the most one append may hold, as a backend declares it.

/// The largest append a backend takes: bigger ones are refused with
/// [`Error::TooLarge`](crate::Error::TooLarge) or [`Error::TooMany`](crate::Error::TooMany)
/// before anything is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendLimits {
    /// The most records one append may have (`None`: no limit of its own, only bytes).
    pub max_records: Option<usize>,
    /// The most bytes (key and payload) one record may have.
    pub max_record_bytes: u64,
    /// The most bytes (keys and payloads) one append may have in all.
    pub max_append_bytes: u64,
}
