//! A Blueprint on a real log in a temporary directory, and HTTP calls through its router.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use draft_blueprint::{Blueprint, BlueprintConfig, InstanceId, ServiceName};
use draft_log::{Log, LogConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub log: Log,
    pub blueprint: Blueprint,
}

pub async fn open_in(dir: tempfile::TempDir, checkpoint_every: u64) -> Harness {
    open_configured(dir, checkpoint_every, |_| {}).await
}

/// [`open_in`], with `configure` given the settings last.
pub async fn open_configured(
    dir: tempfile::TempDir,
    checkpoint_every: u64,
    configure: impl FnOnce(&mut BlueprintConfig),
) -> Harness {
    // A Blueprint dropped just before may still be closing its log: retry while it is locked.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let path = dir.path().join("log");
        match tokio::task::spawn_blocking(move || Log::open(LogConfig::new(path)))
            .await
            .expect("task")
        {
            Ok(log) => break log,
            Err(draft_log::Error::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("open the log: {e}"),
        }
    };
    let mut config = BlueprintConfig::new("test", dir.path().join("checkpoints"));
    config.checkpoint_every = checkpoint_every;
    config.lease_check = std::time::Duration::from_millis(20);
    configure(&mut config);
    let blueprint = Blueprint::open(Arc::new(log.clone()), config)
        .await
        .expect("blueprint");
    Harness {
        dir,
        log,
        blueprint,
    }
}

pub async fn open(checkpoint_every: u64) -> Harness {
    open_in(tempfile::tempdir().expect("dir"), checkpoint_every).await
}

/// A service name the test knows is valid.
pub fn service(name: &str) -> ServiceName {
    ServiceName::parse(name).expect("service name")
}

/// An instance id the test knows is valid.
pub fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).expect("instance id")
}

/// A response: status, headers of interest, body bytes.
pub struct Answer {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub revision: Option<u64>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("JSON body ({e}): {:?}", String::from_utf8_lossy(&self.body))
        })
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn call(
    h: &Harness,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = draft_blueprint::router(h.blueprint.clone())
        .oneshot(request.body(body.into()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header("etag");
    let revision = header(draft_blueprint::REVISION_HEADER).and_then(|r| r.parse().ok());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        etag,
        revision,
        body,
    }
}
