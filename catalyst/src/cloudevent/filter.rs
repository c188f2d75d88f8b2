//! Consumers' filters on `type` and `source`, matched against the record key without parsing
//! the payload.

use draft_log::split_event_key;

/// One `type`/`source` filter value: exact, or a prefix when it ends with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Matches this value only.
    Exact(String),
    /// Matches values starting with this.
    Prefix(String),
}

impl Pattern {
    /// `value*` is a prefix pattern; anything else is exact.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        match value.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(value.to_owned()),
        }
    }

    /// Whether `value` matches.
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(v) => v == value,
            Self::Prefix(p) => value.starts_with(p.as_str()),
        }
    }
}

/// A consumer's filter: an event passes when it matches any `type` pattern (or there are
/// none) and any `source` pattern (or there are none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Patterns for `type`.
    pub types: Vec<Pattern>,
    /// Patterns for `source`.
    pub sources: Vec<Pattern>,
}

impl Filter {
    /// Whether the filter lets everything through.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.sources.is_empty()
    }

    /// Whether an event with this type and source passes.
    #[must_use]
    pub fn matches(&self, ty: &str, source: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|p| p.matches(ty)))
            && (self.sources.is_empty() || self.sources.iter().any(|p| p.matches(source)))
    }

    /// Whether the record with this key passes (records without a valid key pass only an
    /// empty filter).
    #[must_use]
    pub fn matches_key(&self, key: Option<&[u8]>) -> bool {
        if self.is_empty() {
            return true;
        }
        key.and_then(split_event_key)
            .is_some_and(|(ty, source, _)| self.matches(ty, source))
    }
}
