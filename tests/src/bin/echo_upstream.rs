//! A real upstream for Fuse's end-to-end tests: answers every request with what it received
//! (its name, method, path, every header, body length), echoes WebSocket messages on `/ws`,
//! waits `?sleep_ms=N` before answering, and adds `?header=NAME:VALUE` (repeatable) to its
//! answer. Prints `listening http://ADDR`.
//!
//! `echo-upstream <name> [listen-address]`

use std::collections::BTreeMap;
use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

async fn echo(State(name): State<String>, headers: HeaderMap, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or("");
    if let Some(ms) = query
        .split('&')
        .find_map(|p| p.strip_prefix("sleep_ms="))
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let body: Bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut received: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &headers {
        let v = v.to_str().unwrap_or("");
        received
            .entry(k.to_string())
            .and_modify(|all| {
                all.push_str(", ");
                all.push_str(v);
            })
            .or_insert_with(|| v.to_owned());
    }
    let mut response = axum::Json(serde_json::json!({
        "name": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": received,
        "body_len": body.len(),
    }))
    .into_response();
    for (k, v) in query
        .split('&')
        .filter_map(|p| p.strip_prefix("header="))
        .filter_map(|h| h.split_once(':'))
    {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

async fn ws(State(name): State<String>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                let reply = format!("{name}: {}", text.as_str());
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "upstream".to_owned());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo-upstream: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(addr) = listener.local_addr() else {
        return ExitCode::FAILURE;
    };
    println!("listening http://{addr}");
    let app = Router::new()
        .route("/ws", any(ws))
        .fallback(echo)
        .with_state(name);
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-upstream: {e}");
            ExitCode::FAILURE
        }
    }
}
