//! Fuse: Draft's ingress router.
//!
//! Not built yet (issue "Fuse"). It will hold the route table, a pure function of Blueprint's
//! registry (`RouteTable::build`), and the reverse proxy that routes HTTP and WebSocket
//! requests to healthy instances by host and longest path prefix; see DESIGN.md §4.
