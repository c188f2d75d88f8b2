//! Every documented operation against every kind of credential.

use serde_json::{Value, json};

use draft_tests::Node;
use draft_tests::auth::{admin_token, create, send};

/// Every documented operation, with the path filled in.
async fn operations(node: &Node) -> Vec<(reqwest::Method, String, String)> {
    let doc: Value = reqwest::get(format!("{}/v1/openapi.json", node.url))
        .await
        .expect("document")
        .json()
        .await
        .expect("JSON");
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            if method == "parameters" {
                continue;
            }
            let concrete = path
                .replace("{channel}", "orders")
                .replace("{service}", "web")
                .replace("{instance}", "w1")
                .replace("{key}", "app/db")
                .replace("{group}", "g1")
                .replace("{name}", "nobody");
            let method: reqwest::Method = method.to_ascii_uppercase().parse().expect("method");
            out.push((method, path.clone(), concrete));
        }
    }
    assert!(out.len() >= 25, "{} operations", out.len());
    out
}

/// What a service policy of this test may do, by documented operation.
fn service_may(method: &reqwest::Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("GET" | "POST", "/v1/channels/{channel}/events")
            | (
                "GET",
                "/v1/channels/{channel}"
                    | "/v1/channels/{channel}/produce"
                    | "/v1/channels/{channel}/consume"
                    | "/v1/channels/{channel}/groups"
                    | "/v1/channels/{channel}/groups/{group}"
                    | "/v1/services/{service}"
                    | "/v1/kv/{key}"
                    | "/v1/kv/{key}/history"
            )
            | ("DELETE", "/v1/channels/{channel}/groups/{group}")
            | (
                "PUT" | "DELETE",
                "/v1/services/{service}/instances/{instance}" | "/v1/kv/{key}"
            )
            | (
                "POST",
                "/v1/services/{service}/instances/{instance}/heartbeat"
            )
    )
}

/// Every operation of the document, with no token, a wrong one, a revoked one and each role:
/// 401 for the first three, 403 for what a role may not do, an answer (not 401, 403 or 5xx)
/// otherwise. A documented endpoint the node has no decision for answers 500 and fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_every_credential() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let reader = create(&node, &admin, json!({"name": "ci", "role": "reader"})).await;
    let service = create(
        &node,
        &admin,
        json!({"name": "web", "policy": {
            "services": {"register": ["web"], "read": ["web"]},
            "kv": {"read": ["app/*"], "write": ["app/*"]},
            "channels": {"produce": ["orders"], "consume": ["orders"]}}}),
    )
    .await;
    let revoked = create(&node, &admin, json!({"name": "gone", "role": "admin"})).await;
    let (status, _) = send(
        reqwest::Method::DELETE,
        &format!("{}/v1/tokens/gone", node.url),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let wrong = format!("draft_{}", "A".repeat(43));
    let open = ["/healthz", "/readyz", "/v1/openapi.json"];
    for (method, path, concrete) in operations(&node).await {
        let url = format!("{}{concrete}", node.url);
        let is_open = open.contains(&path.as_str());
        for (who, token) in [
            ("no token", None),
            ("a wrong token", Some(wrong.as_str())),
            ("a revoked token", Some(revoked.as_str())),
        ] {
            let (status, body) = send(method.clone(), &url, token, "").await;
            if is_open {
                assert_eq!(status, 200, "{method} {path} with {who}: {body}");
            } else {
                assert_eq!(status, 401, "{method} {path} with {who}: {body}");
                assert_eq!(body["error"]["code"], "unauthenticated");
            }
        }
        let reader_may = method == reqwest::Method::GET && path != "/v1/channels/{channel}/produce";
        for (who, token, may) in [
            ("admin", &admin, true),
            ("reader", &reader, reader_may || is_open),
            ("service", &service, service_may(&method, &path) || is_open),
        ] {
            let (status, body) = send(method.clone(), &url, Some(token), "").await;
            if may {
                assert!(
                    !matches!(status, 401 | 403) && status < 500,
                    "{method} {path} as {who}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} as {who}: {body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains(" on "),
                    "names action and resource: {message}"
                );
            }
        }
    }
}
