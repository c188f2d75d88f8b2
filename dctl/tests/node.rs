//! The node as a library: opened and served in-process, ready once open, not ready (503) as
//! soon as it shuts down, and `serve` returning once its stop future resolves.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dctl::node::{Layer, Node, Settings};
use tower::ServiceExt as _;

fn settings(dir: &std::path::Path) -> Settings {
    let mut layer = Layer::default();
    layer.node.listen = Some(([127, 0, 0, 1], 0).into());
    layer.node.ingress = Some(([127, 0, 0, 1], 0).into());
    layer.node.data_dir = Some(dir.to_path_buf());
    Settings::resolve(layer, || "test-node".to_owned()).expect("valid settings")
}

async fn status_of(node: &Node, path: &str) -> (StatusCode, serde_json::Value) {
    let response = node
        .router()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test]
async fn ready_once_open_and_not_ready_once_shutting_down() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::open(settings(dir.path())).await.expect("open");
    let (status, body) = status_of(&node, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = status_of(&node, "/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["node"], "test-node");
    node.shutdown().trigger();
    let (status, body) = status_of(&node, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "shutting_down");
}

#[tokio::test]
async fn serves_until_its_stop_future_resolves() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::open(settings(dir.path())).await.expect("open");
    let url = format!("http://{}", node.api_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve(async {
        let _ = stopped.await;
    }));
    let ready = reqwest::get(format!("{url}/readyz")).await.expect("get");
    assert_eq!(ready.status(), 200);
    let unknown = reqwest::get(format!("{url}/nowhere")).await.expect("get");
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unknown_endpoint");
    stop.send(()).expect("serving");
    tokio::time::timeout(std::time::Duration::from_secs(10), serving)
        .await
        .expect("serve returns after stop")
        .expect("task")
        .expect("clean stop");
}
