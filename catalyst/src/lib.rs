//! Catalyst: Draft's CloudEvents broker.
//!
//! Not built yet (issue "Catalyst"). It will hold produce over HTTP (structured, binary and
//! batch modes), consume over WebSocket with replay (`cloudevents.json` subprotocol), channel
//! statistics and the HTTP API as an axum `Router`, all on `draft-log`; see DESIGN.md §2-4.
