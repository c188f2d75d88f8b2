//! RFC 3339 times, as every Draft API writes and reads them (UTC, nanoseconds).

/// `unix_nanos` as RFC 3339 with as many fractional digits as it needs, UTC.
#[must_use]
pub fn rfc3339(unix_nanos: u64) -> String {
    let secs = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, (unix_nanos % 1_000_000_000) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An RFC 3339 time as unix nanoseconds; times before 1970 (and past year 2262) are clamped.
/// `None` if `text` is not RFC 3339.
#[must_use]
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = time
        .timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() < 0 { 0 } else { i64::MAX });
    Some(u64::try_from(nanos).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_utc_with_the_fraction_it_needs() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(rfc3339(1), "1970-01-01T00:00:00.000000001Z");
    }

    #[test]
    fn parses_offsets_and_refuses_the_rest() {
        assert_eq!(
            parse_rfc3339("1970-01-01T01:00:01+01:00"),
            Some(1_000_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(0));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("12"), None);
    }

    proptest! {
        #[test]
        fn round_trips(nanos in 0u64..=i64::MAX as u64) {
            prop_assert_eq!(parse_rfc3339(&rfc3339(nanos)), Some(nanos));
        }
    }
}
