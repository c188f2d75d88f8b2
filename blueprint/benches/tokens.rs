//! What checking a token costs on the hot path, without HTTP: `Blueprint::authenticate` of a
//! token seen before (SHA-256 of the secret, then the cache), of a secret that is not a token
//! (SHA-256 and a read of the projection), and `authorize` of a service policy.
//!
//! `cargo bench -p draft-blueprint --bench tokens`. The budget (issue 15): checking tokens
//! costs at most 5% of single-event produce throughput; compare these figures with the time
//! per produce request of `scripts/bench-catalyst.sh` on the same machine.

use std::sync::Arc;
use std::time::Duration;

use std::hint::black_box;

use criterion::Criterion;
use draft_blueprint::{Blueprint, BlueprintConfig, TokenName};
use draft_http::auth::{Action, Policy, Resource, authorize};
use draft_log::{Log, LogConfig};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("log");
    let log = Log::open(LogConfig::new(path)).expect("log");
    let bp = rt
        .block_on(Blueprint::open(
            Arc::new(log),
            BlueprintConfig::new("bench", dir.path().join("checkpoints")),
        ))
        .expect("blueprint");
    let policy = Policy::from_json(
        r#"{"channels": {"produce": ["orders", "orders.*"], "consume": ["payments"]},
            "kv": {"read": ["config/orders/*"]}}"#,
    )
    .expect("policy");
    let mut secrets = Vec::new();
    for i in 0..100 {
        let name = TokenName::parse(&format!("t{i}")).expect("name");
        let made = rt
            .block_on(bp.create_token(&name, policy.clone(), None, "bench"))
            .expect("token");
        secrets.push(made.secret.expose().to_owned());
    }
    let secret = secrets[42].clone();
    assert!(bp.authenticate(&secret).is_some());
    let unknown = format!("draft_{}", "A".repeat(43));

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    c.bench_function("authenticate_cached", |b| {
        b.iter(|| bp.authenticate(black_box(&secret)).expect("valid"));
    });
    c.bench_function("authenticate_unknown", |b| {
        b.iter(|| bp.authenticate(black_box(&unknown)));
    });
    c.bench_function("authorize_service_policy", |b| {
        b.iter(|| {
            authorize(
                black_box(&policy),
                Action::ChannelsProduce,
                &Resource::Name(black_box("orders.dlq")),
            )
        });
    });
    c.final_summary();
}
