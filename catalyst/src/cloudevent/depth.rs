//! How deeply a JSON text nests, without parsing it: every consumer's parser has a limit
//! (`serde_json`'s is 128, Go's decoder stops at 10,000, Python's `json` at its recursion
//! limit), so an event nested past the common one is refused at the door instead of stored
//! for every reader to fail on. [`MaxDepth`] is that limit, as a setting.

use std::fmt;

/// The deepest an event may nest, the event object itself counting as one: 1 to
/// [`MaxDepth::MOST`] levels, [`MaxDepth::DEFAULT`] (the most) unless set lower.
///
/// Every content mode and both of the structured mode's paths (the fast one and the SDK's)
/// check it the same way, before either parses the event (`parse.rs`): structured and
/// WebSocket events as they are, each event of a batch without the array around it, and a
/// binary-mode JSON body one level down (it becomes the event's `data`; a body of another
/// media type is stored as one string and does not nest).
///
/// Why at most 127, and not a larger setting: it is what `serde_json` parses with its default
/// recursion limit of 128, and `serde_json` is what the SDK's path reads events with, as do
/// Draft's own clients and most Rust consumers. A larger limit would let the fast path store
/// events that the SDK's path refuses for a reason of its own (and that consumers cannot
/// read). Lifting `serde_json`'s limit (its `unbounded_depth` feature) would lift it on this
/// node only, not on its consumers, and trade the limit for the stack's.
///
/// # Examples
/// ```
/// use draft_catalyst::cloudevent::MaxDepth;
///
/// assert_eq!(MaxDepth::default().get(), 127);
/// assert_eq!(MaxDepth::new(16).map(MaxDepth::get), Ok(16));
/// assert!(MaxDepth::new(0).is_err() && MaxDepth::new(128).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxDepth(usize);

impl MaxDepth {
    /// The largest limit that can be set: what `serde_json` accepts by default (its recursion
    /// limit of 128 allows 127 levels).
    pub const MOST: usize = 127;

    /// The default: [`MaxDepth::MOST`], so the fast path and the SDK's path (`serde_json`)
    /// refuse exactly the same events.
    pub const DEFAULT: Self = Self(Self::MOST);

    /// A limit of `levels`, the event object itself counting as one.
    ///
    /// # Errors
    /// [`MaxDepthError`] unless `levels` is 1 to [`MaxDepth::MOST`].
    pub const fn new(levels: usize) -> Result<Self, MaxDepthError> {
        if levels == 0 || levels > Self::MOST {
            return Err(MaxDepthError(levels));
        }
        Ok(Self(levels))
    }

    /// The limit, in levels.
    #[must_use]
    pub const fn get(self) -> usize {
        self.0
    }
}

impl Default for MaxDepth {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<usize> for MaxDepth {
    type Error = MaxDepthError;
    fn try_from(levels: usize) -> Result<Self, MaxDepthError> {
        Self::new(levels)
    }
}

impl fmt::Display for MaxDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} levels", self.0)
    }
}

/// A depth limit that cannot be set: 0, or more than [`MaxDepth::MOST`]. Bad input, never
/// retryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the max JSON depth must be 1 to {most} levels (the most serde_json parses by default); \
     {0} is not",
    most = MaxDepth::MOST
)]
pub struct MaxDepthError(usize);

impl MaxDepthError {
    /// The limit that was asked for.
    #[must_use]
    pub const fn levels(&self) -> usize {
        self.0
    }
}

/// Whether `json` nests arrays and objects more than `limit` deep (brackets inside strings
/// do not count). Linear in the length, constant memory; meant for text that is otherwise
/// valid JSON, and harmless on text that is not. (Measured with `benches/parse.rs`: with the
/// openers counted first and strings skipped by memchr, validating one event went from 733 to
/// 403 ns, a batch of 100 from 81 to 54 µs; the byte-by-byte scan was a third of it.)
#[must_use]
pub(crate) fn deeper_than(json: &[u8], limit: usize) -> bool {
    // The depth never exceeds the number of `[` and `{`: most events hold far fewer than the
    // limit, and memchr finds those few many bytes at a time.
    memchr::memchr2_iter(b'[', b'{', json).nth(limit).is_some() && deeper_than_exactly(json, limit)
}

/// [`deeper_than`], counting only brackets outside strings; a string's contents are skipped
/// to its next quote or backslash at a time.
fn deeper_than_exactly(json: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                // Past the end (a backslash last): an unterminated string, nothing deeper.
                let Some(at) = json
                    .get(i..)
                    .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                else {
                    return false;
                };
                i += at + 1;
                if json[i - 1] == b'"' {
                    break;
                }
                // A backslash: the next byte is escaped, whatever it is.
                i += 1;
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests;
