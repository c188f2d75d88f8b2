//! [`Pattern`]: what a policy lists per action: a name, or a prefix ending in `*`.
//!
//! Only a trailing `*` is special, so what a pattern grants can be read off it (`orders`,
//! `orders.*`, `config/orders/*`, `/orders*`, `*`), and the question "does this pattern grant
//! every name starting with P" (a list or a watch of a prefix) has an exact answer.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::policy::PolicyError;

/// A name a policy grants an action on: exactly `name`, or, written `prefix*`, every name
/// starting with `prefix` (`*` alone is every name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern(String);

impl Pattern {
    /// The longest pattern, in bytes (as long as a route prefix).
    pub const MAX_BYTES: usize = 1024;

    /// Checks `text` as a pattern: 1 to [`Pattern::MAX_BYTES`] bytes of visible ASCII, with
    /// `*` at most once, at the end.
    ///
    /// # Errors
    /// A [`PolicyError`] saying which rule `text` breaks.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.is_empty() || text.len() > Self::MAX_BYTES {
            return Err(PolicyError::new(format!(
                "pattern {text:?} must be 1 to {} bytes",
                Self::MAX_BYTES
            )));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PolicyError::new(format!(
                "pattern {text:?} must be visible ASCII (no spaces)"
            )));
        }
        if text.trim_end_matches('*').contains('*') || text.ends_with("**") {
            return Err(PolicyError::new(format!(
                "pattern {text:?} may hold '*' only once, at its end (a prefix)"
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of a `prefix*` pattern (`None` for an exact name).
    fn stem(&self) -> Option<&str> {
        self.0.strip_suffix('*')
    }

    /// Whether the pattern grants `name`.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        match self.stem() {
            Some(stem) => name.starts_with(stem),
            None => self.0 == name,
        }
    }

    /// Whether the pattern grants every name starting with `prefix` (a list or a watch of a
    /// prefix). An exact name never does; `stem*` does when `prefix` starts with `stem`.
    #[must_use]
    pub fn covers(&self, prefix: &str) -> bool {
        self.stem().is_some_and(|stem| prefix.starts_with(stem))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).expect("valid pattern")
    }

    #[test]
    fn exact_names_prefixes_and_everything() {
        assert!(p("orders").matches("orders"));
        assert!(!p("orders").matches("orders.dlq"));
        assert!(p("orders.*").matches("orders.dlq"));
        assert!(!p("orders.*").matches("orders"));
        assert!(p("*").matches(""));
        assert!(p("config/orders/*").covers("config/orders/"));
        assert!(p("config/orders/*").covers("config/orders/db"));
        assert!(
            !p("config/orders/*").covers("config/orders"),
            "config/orders-evil/ is not granted"
        );
        assert!(
            !p("orders").covers("orders"),
            "an exact name grants no prefix"
        );
        assert!(p("*").covers(""));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_rule() {
        for (bad, says) in [
            ("", "1 to"),
            ("a b", "visible ASCII"),
            ("a*b", "only once"),
            ("**", "only once"),
            ("*a", "only once"),
        ] {
            let e = Pattern::parse(bad).expect_err(bad);
            assert!(e.to_string().contains(says), "{bad:?}: {e}");
        }
        assert!(Pattern::parse(&"a".repeat(1025)).is_err());
        let json: Result<Pattern, _> = serde_json::from_str("\"x*y\"");
        assert!(json.is_err());
    }

    proptest! {
        /// `covers` is sound: a pattern that covers a prefix grants every name under it.
        #[test]
        fn covering_a_prefix_grants_every_name_under_it(
            stem in "[a-z/]{0,6}",
            exact in any::<bool>(),
            prefix in "[a-z/]{0,8}",
            rest in "[a-z/]{0,4}",
        ) {
            let pattern = if exact { p(&format!("x{stem}")) } else { p(&format!("{stem}*")) };
            if pattern.covers(&prefix) {
                let name = format!("{prefix}{rest}");
                prop_assert!(pattern.matches(&name));
            }
        }

        #[test]
        fn the_text_round_trips(text in "[!-)+-~]{1,20}\\*?") {
            let pattern = p(&text);
            let json = serde_json::to_string(&pattern).expect("json");
            prop_assert_eq!(serde_json::from_str::<Pattern>(&json).expect("back"), pattern);
        }
    }
}
