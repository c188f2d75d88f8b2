//! End-to-end tests of Draft: each test under `tests/tests/` starts real `dctl up` processes
//! (and real example services) on free ports and talks to them as a user would.
//!
//! Not built yet: the first ones come with the node (issue "Catalyst").
