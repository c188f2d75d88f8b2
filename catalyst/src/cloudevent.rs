//! CloudEvents in and out of the log: parsing and validating the three HTTP content modes,
//! the bytes that are stored, and the bytes that consumers receive.
//!
//! What is stored is what was received: a structured-mode event is stored as the exact JSON
//! object the producer sent (with `draftactor` put first when the producer presented a token,
//! `stamp.rs`); a binary-mode event (CloudEvents HTTP binding §3.1) becomes the
//! structured JSON of its attributes, with the body as `data` when it is JSON or text and as
//! `data_base64` otherwise (JSON format §3.1). Every event is validated by cloudevents-sdk's
//! rules: structured events first by a fast path that borrows from the body (`fast.rs`, held to
//! the SDK's verdicts by a property test), and by the SDK itself whenever that path cannot
//! vouch for an event; binary-mode events by the SDK.
//!
//! One concept a file: `parse.rs` reads the content modes into a [`ParsedEvent`] (`event.rs`)
//! once the checks of `validate.rs` pass and `depth.rs` finds it nested no deeper than its
//! [`MaxDepth`], `whitespace.rs` trims JSON; `deliver.rs` makes what
//! consumers receive and `filter.rs` holds their filters.

mod deliver;
mod depth;
mod event;
mod fast;
mod filter;
mod parse;
mod stamp;
mod validate;
mod whitespace;

#[cfg(test)]
mod tests;

pub use self::deliver::delivered;
pub use self::depth::{MaxDepth, MaxDepthError};
pub use self::event::ParsedEvent;
pub use self::filter::{Filter, Pattern};
pub use self::parse::{parse_batch, parse_binary, parse_structured};
pub use self::stamp::with_actor;
pub use self::validate::{EventError, RESERVED_EXTENSIONS};
/// Splits a record key made by [`ParsedEvent::record_key`] into `(type, source, id)`.
pub use draft_log::split_event_key as split_record_key;
