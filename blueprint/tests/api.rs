//! Every Blueprint endpoint and every error, through the router, on a real log.

// Each test is one scenario, told in order; splitting it would hide the story.
#![allow(clippy::too_many_lines)]

mod common;

use axum::http::StatusCode;
use common::{call, open};
use draft_blueprint::{Key, Revision};

const REG: &str = r#"{"address":"127.0.0.1:9000","routes":[{"prefix":"/api","host":"a.example","strip_prefix":true}],"metadata":{"zone":"a"},"ttl_ms":60000}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_endpoints_and_errors() {
    let h = open(10_000).await;
    let r = call(&h, "PUT", "/v1/services/web/instances/w1", &[], REG).await;
    assert_eq!(
        (r.status, r.json()["changed"].as_bool(), r.revision),
        (StatusCode::OK, Some(true), Some(0))
    );
    let r = call(&h, "PUT", "/v1/services/web/instances/w1", &[], REG).await;
    assert_eq!(
        r.json()["changed"],
        false,
        "same registration appends nothing"
    );
    assert_eq!(h.blueprint.revision(), Some(Revision::new(0)));

    let r = call(&h, "GET", "/v1/services/web", &[], "").await;
    let instance = &r.json()["instances"][0];
    assert_eq!(
        (instance["address"].as_str(), instance["health"].as_str()),
        (Some("127.0.0.1:9000"), Some("passing"))
    );
    assert_eq!(instance["routes"][0]["host"], "a.example");
    let r = call(&h, "GET", "/v1/services", &[], "").await;
    assert_eq!(r.json()["services"][0]["passing"], 1);
    assert_eq!(
        call(
            &h,
            "POST",
            "/v1/services/web/instances/w1/heartbeat",
            &[],
            ""
        )
        .await
        .status,
        StatusCode::OK
    );

    for (uri, body, code) in [
        (
            "/v1/services/web/instances/w2",
            "{not json",
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"nowhere","ttl_ms":1000}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":5}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":1000,"routes":[{"prefix":"api"}]}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":1000,"extra":1}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:0","ttl_ms":1000}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":1000,"routes":[{"prefix":"/a","strip_prefx":true}]}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":1000,"routes":[{"prefix":"/a","timeout_ms":0}]}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/web/instances/w2",
            r#"{"address":"h:1","ttl_ms":1000,"routes":[{"prefix":"/a","host":""}]}"#,
            "invalid_registration",
        ),
        (
            "/v1/services/bad%20name/instances/w2",
            REG,
            "invalid_parameter",
        ),
    ] {
        let r = call(&h, "PUT", uri, &[], body).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let r = call(
        &h,
        "PUT",
        "/v1/services/web/instances/w2",
        &[],
        "x".repeat(70_000),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        call(
            &h,
            "POST",
            "/v1/services/web/instances/nope/heartbeat",
            &[],
            ""
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, "DELETE", "/v1/services/web/instances/nope", &[], "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, "GET", "/v1/services/nope", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, "GET", "/v1/services?bogus=1", &[], "")
            .await
            .error_code(),
        "invalid_parameter"
    );
    assert_eq!(
        h.blueprint.revision(),
        Some(Revision::new(0)),
        "bad input appended nothing"
    );

    let r = call(&h, "DELETE", "/v1/services/web/instances/w1", &[], "").await;
    assert_eq!((r.status, r.revision), (StatusCode::OK, Some(1)));
    assert_eq!(
        call(&h, "GET", "/v1/services/web", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    let r = call(&h, "GET", "/v1/services/web?at=0", &[], "").await;
    assert_eq!(
        (r.status, r.revision),
        (StatusCode::OK, Some(0)),
        "as of revision 0 it was there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_another_service_owns_and_a_refused_address_are_400_and_409() {
    let h = open(10_000).await;
    let r = call(&h, "PUT", "/v1/services/web/instances/w1", &[], REG).await;
    assert_eq!(r.status, StatusCode::OK);
    let claim = r#"{"address":"127.0.0.1:9666","routes":[{"prefix":"/api/","host":"A.example:80"}],"ttl_ms":60000}"#;
    let r = call(&h, "PUT", "/v1/services/evil/instances/e1", &[], claim).await;
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::CONFLICT, "conflict"),
        "{message}"
    );
    assert!(
        message.contains("a.example/api") && message.contains("service web"),
        "{message}"
    );
    for (address, says) in [
        ("169.254.169.254:80", "link-local"),
        ("[::ffff:169.254.169.254]:80", "link-local"),
        ("0.0.0.0:9000", "unspecified"),
        ("224.0.0.1:9000", "multicast"),
    ] {
        let body = format!(r#"{{"address":"{address}","ttl_ms":60000}}"#);
        let r = call(&h, "PUT", "/v1/services/evil/instances/e2", &[], body).await;
        let message = r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_registration"),
            "{address}"
        );
        assert!(message.contains(says), "{address}: {message}");
    }
    assert_eq!(
        h.blueprint.revision(),
        Some(Revision::new(0)),
        "nothing appended"
    );
    let r = call(&h, "GET", "/v1/services/evil", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_endpoints_compare_and_set_and_errors() {
    let h = open(10_000).await;
    let r = call(&h, "PUT", "/v1/kv/app/db/url", &[], "one").await;
    assert_eq!(
        (r.status, r.etag.as_deref()),
        (StatusCode::OK, Some("\"0\""))
    );
    let r = call(&h, "GET", "/v1/kv/app/db/url", &[], "").await;
    assert_eq!(
        (r.body.as_slice(), r.etag.as_deref()),
        (&b"one"[..], Some("\"0\""))
    );

    let r = call(
        &h,
        "PUT",
        "/v1/kv/app/db/url",
        &[("if-match", "\"7\"")],
        "two",
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::PRECONDITION_FAILED, "precondition_failed")
    );
    let r = call(
        &h,
        "PUT",
        "/v1/kv/app/db/url",
        &[("if-match", "\"0\"")],
        "two",
    )
    .await;
    assert_eq!((r.status, r.revision), (StatusCode::OK, Some(1)));
    let r = call(
        &h,
        "PUT",
        "/v1/kv/app/db/url",
        &[("if-none-match", "*")],
        "three",
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = call(
        &h,
        "PUT",
        "/v1/kv/app/new",
        &[("if-none-match", "*")],
        vec![0u8, 255],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        call(&h, "GET", "/v1/kv/app/new", &[], "").await.body,
        vec![0u8, 255],
        "bytes round trip"
    );
    let r = call(&h, "PUT", "/v1/kv/app/missing", &[("if-match", "*")], "x").await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    for (method, uri, headers, code, status) in [
        (
            "PUT",
            "/v1/kv/bad%20key",
            vec![],
            "invalid_key",
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            "/v1/kv/a/history",
            vec![],
            "method_not_allowed",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "DELETE",
            "/v1/kv/a/history",
            vec![],
            "method_not_allowed",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "PUT",
            "/v1/kv/ok",
            vec![("if-match", "seven")],
            "invalid_precondition",
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            "/v1/kv/ok",
            vec![("if-match", "\"1\""), ("if-none-match", "*")],
            "invalid_precondition",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/kv/nope",
            vec![],
            "not_found",
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE",
            "/v1/kv/nope",
            vec![],
            "not_found",
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/kv/app/db/url?at=99",
            vec![],
            "invalid_parameter",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/kv/app/db/url?at=noon",
            vec![],
            "invalid_parameter",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/kv?limit=0",
            vec![],
            "invalid_parameter",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = call(&h, method, uri, &headers, "v").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{method} {uri}"
        );
    }
    let long_key = format!("/v1/kv/{}", "k".repeat(600));
    assert_eq!(
        call(&h, "PUT", &long_key, &[], "v").await.status,
        StatusCode::BAD_REQUEST
    );
    let big = vec![b'x'; 1024 * 1024 + 1];
    assert_eq!(
        call(&h, "PUT", "/v1/kv/big", &[], big).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        h.blueprint.revision(),
        Some(Revision::new(2)),
        "refused writes appended nothing"
    );

    let r = call(&h, "GET", "/v1/kv/app/db/url?at=0", &[], "").await;
    assert_eq!(r.body, b"one", "as of revision 0");
    for i in 0..5 {
        call(&h, "PUT", &format!("/v1/kv/list/k{i}"), &[], "v").await;
    }
    let page = call(&h, "GET", "/v1/kv?prefix=list/&limit=2", &[], "")
        .await
        .json();
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["next_after"], "list/k1");
    let page = call(&h, "GET", "/v1/kv?prefix=list/&after=list/k3", &[], "")
        .await
        .json();
    assert_eq!(page["entries"][0]["key"], "list/k4");
    assert_eq!(page["next_after"], serde_json::Value::Null);

    let r = call(
        &h,
        "DELETE",
        "/v1/kv/app/db/url",
        &[("if-match", "\"0\"")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        call(
            &h,
            "DELETE",
            "/v1/kv/app/db/url",
            &[("if-match", "\"1\"")],
            ""
        )
        .await
        .status,
        StatusCode::OK
    );
    let history = call(&h, "GET", "/v1/kv/app/db/url/history", &[], "")
        .await
        .json();
    let ops: Vec<(u64, &str)> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["revision"].as_u64().unwrap_or(99),
                c["op"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(ops, vec![(0, "put"), (1, "put"), (8, "delete")]);
    assert_eq!(history["changes"][0]["actor"], "anonymous");
    assert_eq!(history["changes"][1]["value_base64"], "dHdv");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_compare_and_set_lets_exactly_one_writer_win() {
    let h = open(10_000).await;
    call(&h, "PUT", "/v1/kv/counter", &[], "0").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let bp = h.blueprint.clone();
        tasks.push(tokio::spawn(async move {
            bp.put(
                &Key::parse("counter").expect("key"),
                i.to_string().into_bytes(),
                draft_blueprint::Condition::IfMatch(0),
                "t",
            )
            .await
            .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1, "If-Match on the same revision: one winner");
    assert_eq!(h.blueprint.revision(), Some(Revision::new(1)));
}
