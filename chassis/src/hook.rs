//! Event hooks: a handler the chassis runs for each event of a channel.
//!
//! With a group ([`Hook::group`]) a hook is a member of a durable consumer group: one replica
//! of the service is active and the others stand by; events come one at a time in offset
//! order, and each is acknowledged only after the handler returned `Ok` (or after it was sent
//! to the dead-letter channel), so delivery is at least once and resumes after a restart
//! where the group left off. Without a group every replica receives every event from `from`
//! (default `earliest`) on each start, without acknowledgements: the way to rebuild a
//! projection in memory.
//!
//! A retryable error is retried with back-off up to [`Retry::attempts`]; after the last
//! attempt, or at once for a permanent error, the event goes to the dead-letter channel
//! (default `<channel>.dlq`) with the original event, its offset and the reason.

mod acks;
pub(crate) mod runner;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::event::Event;
use crate::producer::Producer;
use crate::shared::Shared;

/// Retries of a failing handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included (default 5; at least 1).
    pub attempts: u32,
    /// The delay before the second attempt (default 100 ms); it doubles after each failure.
    pub first_delay: Duration,
    /// The longest delay (default 5 s). Keep `attempts` × `max_delay` under the group's
    /// timeout, or the group gives the event to a standby while the handler still retries.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// What a handler can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// Worth trying again (the database was down, the order is not known yet).
    Retry(String),
    /// Trying again cannot help (the event is malformed): dead-letter it at once.
    Permanent(String),
}

impl HookError {
    /// A retryable error with `reason`.
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        Self::Retry(reason.to_string())
    }

    /// A permanent error with `reason`.
    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }

    fn reason(&self) -> &str {
        match self {
            Self::Retry(r) | Self::Permanent(r) => r,
        }
    }
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HookError {}

/// What a handler returns.
pub type HookResult = Result<(), HookError>;

/// A hook's declaration: which channel, which events, which group.
#[derive(Debug, Clone)]
pub struct Hook {
    pub(crate) channel: String,
    pub(crate) types: Vec<String>,
    pub(crate) sources: Vec<String>,
    pub(crate) group: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Retry,
    pub(crate) dead_letter: Option<String>,
}

impl Hook {
    /// A hook on `channel` (every event, no group).
    #[must_use]
    pub fn on(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            types: Vec::new(),
            sources: Vec::new(),
            group: None,
            from: None,
            timeout: None,
            retry: Retry::default(),
            dead_letter: None,
        }
    }

    /// Only events of these types (exact, or a prefix ending in `*`).
    #[must_use]
    pub fn types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Only events from these sources.
    #[must_use]
    pub fn sources<S: Into<String>>(mut self, sources: impl IntoIterator<Item = S>) -> Self {
        self.sources = sources.into_iter().map(Into::into).collect();
        self
    }

    /// As a member of the durable consumer group `group`.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Where a new group (or, without a group, every start) begins: `earliest` (default),
    /// `latest`, an offset or an RFC 3339 time.
    #[must_use]
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// The group's timeout for a new group: an active member that owes an acknowledgement
    /// this long loses its place (default: the node's, 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How failing handlers are retried.
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The dead-letter channel (default `<channel>.dlq`).
    #[must_use]
    pub fn dead_letter(mut self, channel: impl Into<String>) -> Self {
        self.dead_letter = Some(channel.into());
        self
    }

    /// The hook's name in logs, metrics and `/readyz`: `channel` or `channel/group`.
    #[must_use]
    pub fn name(&self) -> String {
        match &self.group {
            Some(g) => format!("{}/{g}", self.channel),
            None => self.channel.clone(),
        }
    }

    pub(crate) fn dead_letter_channel(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.channel))
    }
}

/// What a handler gets beside the event.
#[derive(Clone)]
pub struct HookContext {
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for HookContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookContext")
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl HookContext {
    /// The service's producer to `channel` (see [`crate::Chassis::producer`]).
    ///
    /// # Errors
    /// The client's error if the producer cannot connect; return it as a retryable error.
    pub async fn producer(&self, channel: &str) -> Result<Producer, HookError> {
        self.shared
            .producer(channel)
            .await
            .map_err(HookError::retry)
    }

    /// The service's name.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.shared.service
    }
}

/// A handler with its type erased.
pub(crate) type Handler =
    Arc<dyn Fn(Event, HookContext) -> BoxFuture<'static, HookResult> + Send + Sync>;
