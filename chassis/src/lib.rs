//! Chassis: the library a Draft service embeds.
//!
//! Not built yet. It will hold the service builder: registration and heartbeats, typed
//! configuration from files, `DRAFT_*` variables and Blueprint KV, event hooks that resume
//! from the last handled offset, a producer, plugins and graceful shutdown; see DESIGN.md §5.
