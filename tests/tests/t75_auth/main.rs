//! Tokens and policies on real `dctl up` processes: every documented operation against every
//! kind of credential (`matrix.rs`); the first admin token and a restart that reuses it,
//! revocation and expiry at once, `dctl token` (`tokens.rs`); Draft's own channels, the actor
//! in `_draft` and on produced events, route claims, `access_token` on WebSockets
//! (`channels.rs`); a Chassis service with its token (`service.rs`). Helpers are in
//! `draft_tests::auth`.

// A matrix is one long table; the scenarios read in order.
#![allow(clippy::too_many_lines)]

mod channels;
mod matrix;
mod service;
mod tokens;
