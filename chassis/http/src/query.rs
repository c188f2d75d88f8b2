//! Query strings, and the two positions every Draft read takes: `at` (state as of a revision
//! or a time) and `from` (where a stream or page starts).
//!
//! Parsing is pure; what a time means (which revision or offset was in force then) is for
//! the service that owns the log to resolve.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::time::parse_rfc3339;

/// A parsed query string: every parameter checked against the endpoint's list, so a typo is
/// refused rather than silently ignored; a parameter may repeat (`type=a&type=b*`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    params: HashMap<String, Vec<String>>,
}

impl Query {
    /// Parses `raw` (the part after `?`, if any), refusing parameters outside `allowed`.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the unknown parameter and the allowed ones.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
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

    /// The single value of `name`, if given.
    ///
    /// # Errors
    /// 400 `invalid_parameter` if it is given more than once.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.params.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v)),
            Some(_) => Err(ApiError::invalid_parameter(format!(
                "{name} may be given once"
            ))),
        }
    }

    /// Every value of `name`, in the order given.
    #[must_use]
    pub fn all(&self, name: &str) -> &[String] {
        self.params.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// `at`, parsed, if given once.
    ///
    /// # Errors
    /// 400 `invalid_parameter` for a repeated or malformed `at`.
    pub fn at(&self) -> Result<Option<At>, ApiError> {
        self.one("at")?.map(At::parse).transpose()
    }
}

/// `?at=`: a revision, or an RFC 3339 time (unix nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// As of this revision.
    Revision(u64),
    /// As of this time.
    Time(u64),
}

impl At {
    /// Parses `at`: digits are a revision, anything else must be RFC 3339.
    ///
    /// # Errors
    /// 400 `invalid_parameter`.
    pub fn parse(at: &str) -> Result<Self, ApiError> {
        if !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) {
            return at
                .parse()
                .map(Self::Revision)
                .map_err(|_| ApiError::invalid_parameter(format!("revision {at:?} is too large")));
        }
        parse_rfc3339(at).map(Self::Time).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "at must be a revision or an RFC 3339 time, not {at:?}"
            ))
        })
    }
}

/// `?from=`: where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest record still stored.
    Earliest,
    /// Only what is appended next.
    Latest,
    /// This offset.
    Offset(u64),
    /// The first record at or after this time (unix nanoseconds).
    Time(u64),
}

impl Start {
    /// Parses `from`: `earliest`, `latest`, an offset, or an RFC 3339 time.
    ///
    /// # Errors
    /// 400 `invalid_parameter`.
    pub fn parse(from: &str) -> Result<Self, ApiError> {
        match from {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            _ if !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit()) => from
                .parse()
                .map(Self::Offset)
                .map_err(|_| ApiError::invalid_parameter(format!("offset {from:?} is too large"))),
            _ => parse_rfc3339(from).map(Self::Time).ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "from must be earliest, latest, an offset or an RFC 3339 time, not {from:?}"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let e = Query::parse(Some("form=1"), &["from"]).expect_err("typo");
        assert!(
            e.message().contains("unknown query parameter \"form\""),
            "{e}"
        );
        let q = Query::parse(Some("type=a&type=b%2A"), &["type"]).expect("parses");
        assert_eq!(q.all("type"), ["a", "b*"]);
        assert!(q.one("type").is_err());
        assert_eq!(q.one("missing").expect("absent"), None);
    }

    #[test]
    fn at_is_a_revision_or_a_time() {
        assert_eq!(At::parse("12").expect("rev"), At::Revision(12));
        assert_eq!(
            At::parse("1970-01-01T00:00:02Z").expect("time"),
            At::Time(2_000_000_000)
        );
        for bad in ["", "-1", "99999999999999999999999", "soon"] {
            assert!(At::parse(bad).is_err(), "{bad:?}");
        }
        let q = Query::parse(Some("at=3"), &["at"]).expect("parses");
        assert_eq!(q.at().expect("at"), Some(At::Revision(3)));
    }

    #[test]
    fn start_positions() {
        assert_eq!(Start::parse("earliest").expect("ok"), Start::Earliest);
        assert_eq!(Start::parse("latest").expect("ok"), Start::Latest);
        assert_eq!(Start::parse("42").expect("ok"), Start::Offset(42));
        assert_eq!(
            Start::parse("1970-01-01T00:00:00.5Z").expect("ok"),
            Start::Time(500_000_000)
        );
        let e = Start::parse("first").expect_err("bad");
        assert!(e.message().starts_with("from must be earliest"), "{e}");
        let e = Start::parse("18446744073709551616").expect_err("too large");
        assert!(e.message().contains("too large"), "{e}");
    }
}
