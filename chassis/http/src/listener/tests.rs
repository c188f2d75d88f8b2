//! The listener's deadlines, against a real socket on 127.0.0.1.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::*;

/// Serves `app` with `limits` on a free port; its address and the shutdown token.
async fn start(app: Router, limits: Limits) -> (SocketAddr, Shutdown) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    tokio::spawn(serve(listener, app, limits, shutdown.clone()));
    (addr, shutdown)
}

/// Everything the server sends until it closes the connection (or 5 s pass).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn app() -> Router {
    Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/extended",
            get(|deadline: axum::Extension<Deadline>| async move {
                deadline.extend_to(Instant::now() + Duration::from_secs(5));
                tokio::time::sleep(Duration::from_millis(600)).await;
                "allowed"
            }),
        )
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
}

fn short(role: Role) -> Limits {
    Limits {
        body_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        role,
        ..Limits::default()
    }
}

async fn get_path(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_all(&mut stream).await
}

#[tokio::test]
async fn a_response_not_started_by_the_deadline_is_503_or_on_a_gateway_504() {
    for (role, status, code) in [
        (Role::Origin, "503", "deadline_exceeded"),
        (Role::Gateway, "504", "upstream_timeout"),
    ] {
        let (addr, _shutdown) = start(app(), short(role)).await;
        let started = Instant::now();
        let response = get_path(addr, "/slow").await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{response}"
        );
        assert!(
            response.contains(&format!("\"code\":\"{code}\"")),
            "{response}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_handler_may_extend_its_deadline() {
    let (addr, _shutdown) = start(app(), short(Role::Origin)).await;
    let response = get_path(addr, "/extended").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("allowed"), "{response}");
}

#[tokio::test]
async fn a_trickled_body_is_408_and_the_connection_closes() {
    let (addr, _shutdown) = start(app(), short(Role::Origin)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .expect("write");
    let started = Instant::now();
    let response = read_all(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.contains("\"code\":\"request_timeout\""),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed, not held"
    );
}

#[tokio::test]
async fn a_body_that_arrives_in_time_is_served() {
    let (addr, _shutdown) = start(app(), short(Role::Origin)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nab",
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(b"cd").await.expect("write");
    let response = read_all(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("abcd"), "{response}");
}
