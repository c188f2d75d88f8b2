//! The backend conformance suite, run against the embedded fjall log.

draft_log::conformance_suite!(draft_log::testing::FjallHarness::new());
