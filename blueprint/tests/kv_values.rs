//! Values are read from the control log by the revision of their put: reads of the past see
//! the value of then, history shows every value, and a state that disagrees with the log is
//! a 500, never a wrong value.

mod common;

use axum::http::StatusCode;
use common::{call, open, open_in};

async fn put(h: &common::Harness, key: &str, value: &str) -> u64 {
    let answer = call(h, "PUT", &format!("/v1/kv/{key}"), &[], value.to_owned()).await;
    assert_eq!(answer.status, StatusCode::OK, "put {key}");
    answer.json()["revision"].as_u64().expect("revision")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_a_revision_and_history_give_the_values_of_then() {
    let h = open(3).await;
    let first = put(&h, "app/db", "postgres://one").await;
    put(&h, "app/other", "x").await;
    let second = put(&h, "app/db", "postgres://two").await;
    let deleted = call(&h, "DELETE", "/v1/kv/app/other", &[], "").await;
    assert_eq!(deleted.status, StatusCode::OK);
    put(&h, "app/db", "postgres://three").await;

    let now = call(&h, "GET", "/v1/kv/app/db", &[], "").await;
    assert_eq!(now.body, b"postgres://three");
    let then = call(&h, "GET", &format!("/v1/kv/app/db?at={first}"), &[], "").await;
    assert_eq!(
        (then.status, then.body.as_slice(), then.etag.as_deref()),
        (
            StatusCode::OK,
            &b"postgres://one"[..],
            Some(format!("\"{first}\"").as_str())
        )
    );
    let list = call(
        &h,
        "GET",
        &format!("/v1/kv?prefix=app/&at={second}"),
        &[],
        "",
    )
    .await
    .json();
    let values: Vec<(&str, &str)> = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["key"].as_str().expect("key"),
                e["value_base64"].as_str().expect("value"),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![("app/db", "cG9zdGdyZXM6Ly90d28="), ("app/other", "eA==")],
        "the values at revision {second}"
    );

    let history = call(&h, "GET", "/v1/kv/app/db/history", &[], "")
        .await
        .json();
    let changes: Vec<&str> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["value_base64"].as_str().expect("a put"))
        .collect();
    assert_eq!(
        changes,
        vec![
            "cG9zdGdyZXM6Ly9vbmU=",
            "cG9zdGdyZXM6Ly90d28=",
            "cG9zdGdyZXM6Ly90aHJlZQ=="
        ]
    );
    let other = call(&h, "GET", "/v1/kv/app/other/history", &[], "")
        .await
        .json();
    let ops: Vec<&str> = other["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["op"].as_str().expect("op"))
        .collect();
    assert_eq!(ops, vec!["put", "delete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_disagrees_with_the_log_gives_a_500_not_a_wrong_value() {
    // A checkpoint every 2 events: after these it holds both keys.
    let h = open(2).await;
    let a = put(&h, "a", "value of a").await;
    let b = put(&h, "b", "value of b").await;
    let checkpoint = h.dir.path().join(format!("checkpoints/rev-{b:020}.json"));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !checkpoint.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let dir = h.dir;
    drop((h.blueprint, h.log));

    // Point key a at b's put (same length): the record there is not a's.
    let text = std::fs::read_to_string(&checkpoint).expect("checkpoint");
    let mut saved: serde_json::Value = serde_json::from_str(&text).expect("json");
    saved["kv"]["a"]["revision"] = b.into();
    std::fs::write(&checkpoint, saved.to_string()).expect("write");
    let h = open_in(dir, 2).await;
    let answer = call(&h, "GET", "/v1/kv/a", &[], "").await;
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "storage_error")
    );
    assert!(
        !String::from_utf8_lossy(&answer.body).contains("value of b"),
        "no value answered"
    );
    let list = call(&h, "GET", "/v1/kv", &[], "").await;
    assert_eq!(list.status, StatusCode::INTERNAL_SERVER_ERROR);
    let fine = call(&h, "GET", "/v1/kv/b", &[], "").await;
    assert_eq!(fine.body, b"value of b", "the other key reads");
    assert!(a < b);
}
