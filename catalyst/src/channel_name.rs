//! [`ChannelName`]: the name of a channel users may produce to.

use std::fmt;

use draft_log::PartitionName;

/// A channel users may produce to: a valid partition name that is not reserved, so
/// `[a-z0-9][a-z0-9._-]{0,127}`.
///
/// The rule is DESIGN.md §2's for channel names, `[a-z0-9][a-z0-9._-]{0,127}`, where names
/// starting with `_` are reserved for Draft itself (the control partition `_draft`). The log
/// checks the first part ([`PartitionName`], which admits `_` first so Draft can name its own
/// partitions) and this type adds the second; it was `channel::user_channel` before this
/// type. Reads (`GET /v1/channels/{channel}/events`, consumers) take any valid partition
/// name, reserved ones included, so `_draft` can be read but not produced to.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelName(PartitionName);

/// Why a name is not a channel users may produce to. The message is the one the HTTP API
/// answers with (400 `invalid_channel`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelNameError {
    /// Not a valid partition name (empty, too long, or a character outside `[a-z0-9._-]`).
    #[error(transparent)]
    Invalid(draft_log::Error),
    /// A valid partition name, but one reserved for Draft (it starts with `_`).
    #[error("channel names starting with '_' are reserved for Draft; {0:?} cannot be produced to")]
    Reserved(String),
}

impl ChannelName {
    /// Validates `name` as a channel users may produce to.
    ///
    /// # Errors
    /// [`ChannelNameError::Invalid`] if it is not a partition name,
    /// [`ChannelNameError::Reserved`] if it starts with `_`.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        PartitionName::new(name)
            .map_err(ChannelNameError::Invalid)?
            .try_into()
    }

    /// The name as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The channel's partition in the log.
    #[must_use]
    pub fn partition(&self) -> &PartitionName {
        &self.0
    }
}

impl TryFrom<PartitionName> for ChannelName {
    type Error = ChannelNameError;
    fn try_from(partition: PartitionName) -> Result<Self, ChannelNameError> {
        if partition.is_reserved() {
            return Err(ChannelNameError::Reserved(partition.as_str().to_owned()));
        }
        Ok(Self(partition))
    }
}

impl TryFrom<&str> for ChannelName {
    type Error = ChannelNameError;
    fn try_from(name: &str) -> Result<Self, ChannelNameError> {
        Self::parse(name)
    }
}

impl std::str::FromStr for ChannelName {
    type Err = ChannelNameError;
    fn from_str(name: &str) -> Result<Self, ChannelNameError> {
        Self::parse(name)
    }
}

impl From<ChannelName> for PartitionName {
    fn from(channel: ChannelName) -> Self {
        channel.0
    }
}

impl AsRef<PartitionName> for ChannelName {
    fn as_ref(&self) -> &PartitionName {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_channels_are_partition_names_not_starting_with_underscore() {
        let longest = "c".repeat(128);
        for ok in ["orders", "orders.v1", "0-a_b", "a_", longest.as_str()] {
            let channel = ChannelName::parse(ok).expect("valid");
            assert_eq!((channel.as_str(), channel.to_string()), (ok, ok.to_owned()));
            assert_eq!(PartitionName::from(channel).as_str(), ok);
        }
        let too_long = "c".repeat(129);
        for bad in [
            "",
            too_long.as_str(),
            "Orders",
            "a b",
            ".a",
            "-a",
            "a/b",
            "é",
        ] {
            assert!(
                matches!(ChannelName::parse(bad), Err(ChannelNameError::Invalid(_))),
                "{bad:?}"
            );
        }
        for reserved in ["_draft", "_", "_x.y"] {
            assert!(
                matches!(
                    ChannelName::parse(reserved),
                    Err(ChannelNameError::Reserved(_))
                ),
                "{reserved:?}"
            );
        }
    }

    #[test]
    fn errors_say_what_the_api_says() {
        let invalid = PartitionName::new("Orders").expect_err("invalid");
        assert_eq!(
            ChannelName::parse("Orders")
                .expect_err("invalid")
                .to_string(),
            invalid.to_string()
        );
        assert_eq!(
            ChannelName::parse("_draft")
                .expect_err("reserved")
                .to_string(),
            "channel names starting with '_' are reserved for Draft; \"_draft\" cannot be produced to"
        );
        let control = PartitionName::new("_draft").expect("the control partition");
        assert!(ChannelName::try_from(control).is_err());
    }

    proptest! {
        #[test]
        fn a_channel_is_a_partition_name_that_is_not_reserved(
            s in prop_oneof![any::<String>(), "[a-z0-9._-]{0,4}", "[_a-z0-9._A-Z-]{120,132}"]
        ) {
            let old = PartitionName::new(s.as_str()).is_ok_and(|p| !p.is_reserved());
            prop_assert_eq!(ChannelName::parse(&s).is_ok(), old);
        }
    }
}
