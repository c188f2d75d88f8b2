//! What validating events costs the broker, per event, without HTTP or the log: one
//! structured-mode event, and a batch of 100 (200-byte data, as in `dctl bench produce`).
//!
//! `cargo bench -p draft-catalyst --bench parse`

use criterion::{Criterion, Throughput};
use draft_catalyst::cloudevent::{MaxDepth, parse_batch, parse_structured};

fn event(i: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"bench-{i}","source":"/bench/parse","type":"bench.event","time":"2026-11-28T12:00:00Z","datacontenttype":"application/json","data":{{"pad":"{}"}}}}"#,
        "x".repeat(190)
    )
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let one = bytes::Bytes::from(event(0));
    let batch = bytes::Bytes::from(format!(
        "[{}]",
        (0..100).map(event).collect::<Vec<_>>().join(",")
    ));
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("structured event", |b| {
        b.iter(|| parse_structured(&one, MaxDepth::DEFAULT).expect("valid"));
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch of 100", |b| {
        b.iter(|| parse_batch(&batch, 1000, MaxDepth::DEFAULT).expect("valid"));
    });
    group.finish();
    c.final_summary();
}
