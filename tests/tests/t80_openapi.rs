//! `GET /v1/openapi.json` describes the node's API: it parses, and every path it lists is
//! served (no documented GET reaches the router's fallback 404).

use draft_tests::Node;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_path_is_served() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(format!("{}/v1/openapi.json", node.url))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15, "{} paths", paths.len());
    for (path, ops) in paths {
        if ops.get("get").is_none() {
            continue;
        }
        let concrete = path
            .replace("{channel}", "orders")
            .replace("{service}", "web")
            .replace("{instance}", "w1")
            .replace("{key}", "app/db");
        let response = client
            .get(format!("{}{concrete}", node.url))
            .send()
            .await
            .expect("get");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            body["error"]["code"] != "unknown_endpoint",
            "{path} is documented but not served: {status} {body}"
        );
    }
    let unknown = client
        .get(format!("{}/v1/nope", node.url))
        .send()
        .await
        .expect("get");
    assert_eq!(
        unknown.status().as_u16(),
        404,
        "the fallback itself still answers 404"
    );
}
