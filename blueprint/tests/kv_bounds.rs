//! The KV store's bounds: its most keys and bytes (507 `quota_exceeded`, deletes make room),
//! and pages of lists and histories bounded by count and by bytes.

mod common;

use axum::http::StatusCode;
use common::{call, open_configured};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_past_the_most_keys_or_bytes_are_refused_and_deletes_make_room() {
    let h = open_configured(tempfile::tempdir().expect("dir"), 10_000, |c| {
        c.max_keys = 3;
        c.max_kv_bytes = 40;
    })
    .await;
    for k in ["a", "b", "c"] {
        assert_eq!(
            call(&h, "PUT", &format!("/v1/kv/{k}"), &[], "v")
                .await
                .status,
            200
        );
    }
    let refused = call(&h, "PUT", "/v1/kv/d", &[], "v").await;
    assert_eq!(refused.status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(refused.error_code(), "quota_exceeded");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 keys"))
    );
    // Overwriting an existing key is fine; a value that takes the store past 40 bytes is not.
    assert_eq!(call(&h, "PUT", "/v1/kv/a", &[], "w").await.status, 200);
    let big = call(&h, "PUT", "/v1/kv/a", &[], "x".repeat(40)).await;
    assert_eq!(
        big.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{:?}",
        big.json()
    );
    assert_eq!(
        call(&h, "GET", "/v1/kv/a", &[], "").await.body,
        b"w",
        "nothing changed"
    );
    assert_eq!(call(&h, "DELETE", "/v1/kv/b", &[], "").await.status, 200);
    assert_eq!(call(&h, "PUT", "/v1/kv/d", &[], "v").await.status, 200);

    // The count survives a restart (it is not in checkpoints: counted again).
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let h = open_configured(dir, 10_000, |c| {
        c.max_keys = 3;
        c.max_kv_bytes = 40;
    })
    .await;
    assert_eq!(
        h.blueprint
            .read(draft_blueprint::projection::Projection::kv_len),
        3
    );
    assert_eq!(
        call(&h, "PUT", "/v1/kv/e", &[], "v").await.status,
        StatusCode::INSUFFICIENT_STORAGE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_list_pages_are_bounded_and_follow_on() {
    let h = open_configured(tempfile::tempdir().expect("dir"), 10_000, |_| {}).await;
    for i in 0..250 {
        assert_eq!(
            call(&h, "PUT", "/v1/kv/k", &[], i.to_string()).await.status,
            200
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    let mut pages = 0;
    loop {
        let uri = match after {
            None => "/v1/kv/k/history?limit=100".to_owned(),
            Some(a) => format!("/v1/kv/k/history?limit=100&after={a}"),
        };
        let page = call(&h, "GET", &uri, &[], "").await.json();
        pages += 1;
        let changes = page["changes"].as_array().expect("changes").clone();
        assert!(changes.len() <= 100);
        seen.extend(
            changes
                .iter()
                .map(|c| c["revision"].as_u64().expect("revision")),
        );
        match page["next_after"].as_u64() {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (0..250).collect::<Vec<u64>>(),
        "every change once, in order"
    );
    for bad in ["limit=0", "limit=1001", "after=x"] {
        let r = call(&h, "GET", &format!("/v1/kv/k/history?{bad}"), &[], "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "invalid_parameter", "{bad}");
    }

    // Six values of 1 MiB: a page holds about 4 MiB of them, then says where to go on.
    let mib = "x".repeat(1024 * 1024);
    for i in 0..6 {
        assert_eq!(
            call(&h, "PUT", &format!("/v1/kv/big/{i}"), &[], mib.clone())
                .await
                .status,
            200
        );
    }
    let page = call(&h, "GET", "/v1/kv?prefix=big/&limit=100", &[], "")
        .await
        .json();
    let n = page["entries"].as_array().map(Vec::len);
    assert_eq!(n, Some(4), "{:?}", page["next_after"]);
    assert_eq!(page["next_after"], "big/3");
    let rest = call(
        &h,
        "GET",
        "/v1/kv?prefix=big/&limit=100&after=big/3",
        &[],
        "",
    )
    .await
    .json();
    assert_eq!(rest["entries"].as_array().map(Vec::len), Some(2));
    assert!(rest["next_after"].is_null());
}
