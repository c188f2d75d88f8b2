//! [`GroupName`]: the name of a consumer group, `[a-z0-9][a-z0-9._-]{0,127}` (the rule of
//! channel names users may produce to).

use std::fmt;

use draft_http::{ApiError, Code};

/// The longest group name, in bytes.
const MAX_LEN: usize = 128;

/// A valid consumer group name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GroupName(String);

impl GroupName {
    /// Validates `name`.
    ///
    /// # Errors
    /// 400 `invalid_group`, saying the rule.
    pub(crate) fn parse(name: &str) -> Result<Self, ApiError> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_LEN
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(ApiError::new(
                Code::InvalidGroup,
                format!(
                    "group {name:?} must be 1-{MAX_LEN} of [a-z0-9._-], starting with a letter \
                     or digit"
                ),
            ))
        }
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_channel_rule() {
        let longest = "g".repeat(128);
        for ok in ["billing", "0", "a.b-c_d", longest.as_str()] {
            assert_eq!(GroupName::parse(ok).expect(ok).as_str(), ok);
        }
        let too_long = "g".repeat(129);
        for bad in [
            "",
            "_billing",
            ".a",
            "-a",
            "Billing",
            "a b",
            "a/b",
            "é",
            too_long.as_str(),
        ] {
            let e = GroupName::parse(bad).expect_err(bad);
            assert_eq!(e.code(), Code::InvalidGroup, "{bad:?}");
            assert_eq!(e.status().as_u16(), 400);
        }
    }

    proptest! {
        #[test]
        fn a_group_name_is_a_user_channel_name(
            s in prop_oneof![any::<String>(), "[a-z0-9._-]{0,4}", "[_a-z0-9._A-Z-]{120,132}"]
        ) {
            prop_assert_eq!(
                GroupName::parse(&s).is_ok(),
                crate::ChannelName::parse(&s).is_ok()
            );
        }
    }
}
