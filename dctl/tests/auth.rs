//! The node's authorization layer, in-process: the first admin token and its file, 401 with
//! `WWW-Authenticate`, 403 naming the action and resource, open probes, the 404 and 405 of
//! unknown routes and methods, `access_token` on upgrades only, the actor in the audit trail.
//! (A restart that reuses the token is `tests/tests/t75_auth.rs`, with real processes.)

use std::os::unix::fs::PermissionsExt as _;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dctl::node::{AuthMode, Layer, Node, Settings};
use tower::ServiceExt as _;

fn settings(dir: &std::path::Path, mode: Option<AuthMode>) -> Settings {
    let mut layer = Layer::default();
    layer.node.listen = Some(([127, 0, 0, 1], 0).into());
    layer.node.ingress = Some(([127, 0, 0, 1], 0).into());
    layer.node.data_dir = Some(dir.to_path_buf());
    layer.auth.mode = mode;
    Settings::resolve(layer, || "test-node".to_owned()).expect("valid settings")
}

struct Answer {
    status: StatusCode,
    authenticate: Option<String>,
    body: serde_json::Value,
}

async fn call(node: &Node, request: Request<Body>) -> Answer {
    let response = node.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let authenticate = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        authenticate,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

fn request(method: &str, path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(body.to_owned())).expect("request")
}

/// A node with auth on, and the secret of the admin token it made.
async fn node_with_auth(dir: &std::path::Path) -> (Node, String) {
    let node = Node::open(settings(dir, Some(AuthMode::On)))
        .await
        .expect("open");
    assert!(node.auth_enabled());
    let file = node
        .admin_token_file()
        .expect("made the first token")
        .to_path_buf();
    assert_eq!(file, dir.join("admin.token"));
    let permissions = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(permissions, 0o600);
    let admin = std::fs::read_to_string(&file)
        .expect("read")
        .trim()
        .to_owned();
    assert!(admin.starts_with("draft_"), "{admin}");
    (node, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_but_the_probes_needs_a_valid_token() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = node_with_auth(dir.path()).await;
    // Open: the probes and the document.
    for path in ["/healthz", "/readyz", "/v1/openapi.json"] {
        assert_eq!(
            call(&node, request("GET", path, None, "")).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    // 401, with the scheme, and nothing about whether a token exists.
    for token in [None, Some("draft_nope"), Some("a b")] {
        let a = call(&node, request("GET", "/v1/status", token, "")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(a.authenticate.as_deref(), Some("Bearer realm=\"draft\""));
        assert_eq!(a.body["error"]["code"], "unauthenticated");
    }
    let a = call(&node, request("GET", "/v1/status", Some(&admin), "")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Unknown routes and methods answer as before, token or not.
    assert_eq!(
        call(&node, request("GET", "/v1/nope", None, ""))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&node, request("PATCH", "/v1/status", None, ""))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_decides_and_the_token_is_the_actor() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = node_with_auth(dir.path()).await;
    // A reader reads, and is refused a write with the action and the resource named.
    let made = call(
        &node,
        request(
            "POST",
            "/v1/tokens",
            Some(&admin),
            r#"{"name":"ci","role":"reader"}"#,
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let reader = made.body["token"].as_str().expect("secret").to_owned();
    let a = call(
        &node,
        request("GET", "/v1/channels/_draft/events", Some(&reader), ""),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "reader reads the audit trail: {}",
        a.body
    );
    let a = call(&node, request("PUT", "/v1/kv/app/db", Some(&reader), "x")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["code"], "forbidden");
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kv.write") && message.contains("\"app/db\""),
        "{message}"
    );
    let a = call(
        &node,
        request(
            "POST",
            "/v1/tokens",
            Some(&reader),
            r#"{"name":"x","role":"admin"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "only admin makes tokens");

    // access_token: taken on an upgrade (so the endpoint does not see an unknown parameter),
    // not on plain requests.
    let upgrade = Request::get(format!("/v1/watch?prefix=a&access_token={admin}"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .expect("request");
    let a = call(&node, upgrade).await;
    assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_ne!(a.body["error"]["code"], "invalid_parameter", "{}", a.body);
    let plain = call(
        &node,
        request("GET", &format!("/v1/kv?access_token={admin}"), None, ""),
    )
    .await;
    assert_eq!(plain.status, StatusCode::UNAUTHORIZED);

    // The actor: the token's name, in the audit trail.
    let a = call(&node, request("PUT", "/v1/kv/app/db", Some(&admin), "v")).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(
        &node,
        request("GET", "/v1/kv/app/db/history", Some(&reader), ""),
    )
    .await;
    assert_eq!(a.body["changes"][0]["actor"], "admin");
}

#[tokio::test]
async fn with_auth_off_every_request_passes_as_anonymous() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::open(settings(dir.path(), None)).await.expect("open");
    assert!(!node.auth_enabled(), "auto on loopback is off");
    assert!(node.admin_token_file().is_none());
    let a = call(
        &node,
        request("GET", "/v1/status", Some("draft_anything"), ""),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "a token is ignored");
    let a = call(&node, request("PUT", "/v1/kv/k", None, "v")).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(&node, request("GET", "/v1/kv/k/history", None, "")).await;
    assert_eq!(a.body["changes"][0]["actor"], "anonymous");
}
