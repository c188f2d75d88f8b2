//! Helpers for the tests of tokens (`t75_auth`): the node's first admin token, requests with
//! a bearer token, tokens made through the API, `dctl up` with its output read, and `dctl`
//! with a token.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::{Node, dctl, event};

/// The structured content type.
const STRUCTURED: &str = "application/cloudevents+json";

/// The node's first admin token, from the file it wrote (which only its owner may read).
///
/// # Panics
/// If the file is missing or readable by others.
#[must_use]
pub fn admin_token(node: &Node) -> String {
    let path = node.data_dir.join("admin.token");
    let mode = std::fs::metadata(&path)
        .expect("admin.token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads it");
    std::fs::read_to_string(path)
        .expect("read")
        .trim()
        .to_owned()
}

/// `method url` with `token` as a bearer token and `body`; the status and the JSON answer
/// (`null` if it is not JSON). A 401 must name the bearer scheme.
///
/// # Panics
/// If the node cannot be reached, or a 401 has no `WWW-Authenticate: Bearer`.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .body(body.to_owned());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"draft\""),
            "{url}"
        );
    }
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Makes a token with `admin` (`body` is `POST /v1/tokens`'s); returns its secret.
///
/// # Panics
/// If the node refuses.
pub async fn create(node: &Node, admin: &str, body: Value) -> String {
    let (status, answer) = send(
        reqwest::Method::POST,
        &format!("{}/v1/tokens", node.url),
        Some(admin),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().expect("secret").to_owned()
}

/// Produces the test event `id` to `channel` with `token`; the status and the answer.
///
/// # Panics
/// If the node cannot be reached.
pub async fn produce(node: &Node, channel: &str, token: Option<&str>, id: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/channels/{channel}/events", node.url))
        .header("content-type", STRUCTURED)
        .body(event(id, "t").to_string());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("produce");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `dctl up` in `dir` with `args` (the ingress on a free port); returns the process and
/// its stdout lines up to and with the address line. Its stderr is piped: read it with
/// [`stop`].
///
/// # Panics
/// If it cannot be started.
#[must_use]
pub fn up_and_read(dir: &std::path::Path, args: &[&str]) -> (Child, Vec<String>) {
    let mut child = Command::new(dctl())
        .args(["up", "--ingress", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dctl up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let done = line.starts_with("listening ");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

/// Stops a process of [`up_and_read`] with SIGTERM; returns what it wrote to stderr.
///
/// # Panics
/// If it cannot be waited for.
#[must_use]
pub fn stop(child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `dctl` against `node` with `args` and extra variables.
///
/// # Panics
/// If it cannot be run.
#[must_use]
pub fn cli(node: &Node, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(dctl())
        .args(args)
        .env("DRAFT_URL", &node.url)
        .envs(env.iter().copied())
        .output()
        .expect("run dctl")
}

/// The stdout of a `dctl` that succeeded.
///
/// # Panics
/// If it failed (with its stderr).
#[must_use]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "dctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
