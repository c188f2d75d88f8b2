//! Blueprint: Draft's service registry and key/value configuration store.
//!
//! Not built yet (issue "Blueprint"). It will hold the registry and KV store as a pure
//! projection of the control partition `_draft` (`Projection::apply(&mut self, &Event)`),
//! leases kept in memory, point-in-time reads (`?at=`), watches, and the HTTP API as an axum
//! `Router`; see DESIGN.md §3-4.
