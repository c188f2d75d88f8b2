//! The backend conformance suite, run against a real three-server JetStream cluster (R3).

draft_log::conformance_suite!(draft_log_jetstream::testing::JetStreamHarness::new());
