//! The first admin token, revocation and expiry, and `dctl token`.

use std::time::Duration;

use serde_json::{Value, json};

use draft_tests::Node;
use draft_tests::auth::{admin_token, cli, create, ok, send, stop, up_and_read};

/// The first start with auth on makes one admin token and prints where its secret is, never
/// the secret; a restart reuses it. `auto` on a public address is on; `off` there is explicit
/// and warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_token_is_made_once_and_its_secret_never_printed() {
    let dir = tempfile::tempdir().expect("dir");
    let (child, lines) = up_and_read(dir.path(), &["--listen", "0.0.0.0:0"]);
    let file = dir.path().join("admin.token");
    let secret = std::fs::read_to_string(&file)
        .expect("admin.token")
        .trim()
        .to_owned();
    let printed = lines.join("\n");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    assert!(!printed.contains(&secret), "the secret is never printed");
    let port = printed
        .rsplit_once("api=http://0.0.0.0:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the address line");
    let url = format!("http://127.0.0.1:{port}");
    let (status, _) = send(reqwest::Method::GET, &format!("{url}/v1/status"), None, "").await;
    assert_eq!(status, 401, "auto on a public address checks tokens");
    let stderr = stop(child);
    assert!(!stderr.contains(&secret), "nor logged: {stderr}");

    let node = Node::start(dir.path(), &["--auth", "on"]);
    assert_eq!(admin_token(&node), secret, "the file is left as it was");
    let (status, list) = send(
        reqwest::Method::GET,
        &format!("{}/v1/tokens", node.url),
        Some(&secret),
        "",
    )
    .await;
    assert_eq!(status, 200, "the first token still works");
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["admin"], "no second admin token");
    assert_eq!(list["tokens"][0]["creator"], "draft");
    assert_eq!(list["tokens"][0]["policy"], json!({"role": "admin"}));
    drop(node);

    let open_dir = tempfile::tempdir().expect("dir");
    let (child, _) = up_and_read(open_dir.path(), &["--listen", "0.0.0.0:0", "--auth", "off"]);
    assert!(!open_dir.path().join("admin.token").exists());
    let stderr = stop(child);
    assert!(
        stderr.contains("auth is off"),
        "explicit off is warned about: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_expiry_take_effect_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let status_url = format!("{}/v1/status", node.url);
    let reader = create(&node, &admin, json!({"name": "ci", "role": "reader"})).await;
    for _ in 0..3 {
        let (status, _) = send(reqwest::Method::GET, &status_url, Some(&reader), "").await;
        assert_eq!(status, 200, "valid, and cached");
    }
    let (status, _) = send(
        reqwest::Method::DELETE,
        &format!("{}/v1/tokens/ci", node.url),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(reqwest::Method::GET, &status_url, Some(&reader), "").await;
    assert_eq!(status, 401, "refused by the next request: {body}");
    assert_eq!(
        body["error"]["message"],
        "the token is not valid: it is unknown, revoked or expired"
    );

    let short = create(
        &node,
        &admin,
        json!({"name": "short", "role": "reader", "expires_in_secs": 2}),
    )
    .await;
    let (status, _) = send(reqwest::Method::GET, &status_url, Some(&short), "").await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = send(reqwest::Method::GET, &status_url, Some(&short), "").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "still valid long after its expiry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, list) = send(
        reqwest::Method::GET,
        &format!("{}/v1/tokens", node.url),
        Some(&admin),
        "",
    )
    .await;
    let short_info = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "short")
        .cloned()
        .expect("listed until revoked");
    assert_eq!(short_info["expired"], true);
}

#[test]
fn dctl_token_create_ls_revoke_and_the_token_flags() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let file = node.data_dir.join("admin.token");
    let file = file.to_str().expect("utf-8 path");
    let made = ok(&cli(
        &node,
        &[
            "token",
            "create",
            "ci",
            "--role",
            "reader",
            "--expires",
            "30d",
            "-o",
            "json",
            "--token-file",
            file,
        ],
        &[],
    ));
    let made: Value = serde_json::from_str(&made).expect("JSON");
    assert_eq!(made["name"], "ci");
    let secret = made["token"].as_str().expect("the secret, once").to_owned();
    assert!(made["expires_at"].is_string());

    let plain = cli(
        &node,
        &[
            "token",
            "create",
            "ops",
            "--role",
            "admin",
            "--token-file",
            file,
        ],
        &[],
    );
    let ops = ok(&plain).trim().to_owned();
    assert!(
        ops.starts_with("draft_"),
        "the secret alone on stdout: {ops}"
    );
    assert!(String::from_utf8_lossy(&plain.stderr).contains("not shown again"));

    let ls = ok(&cli(&node, &["token", "ls"], &[("DRAFT_TOKEN", &ops)]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with("ci ") && l.contains("reader")),
        "{ls}"
    );
    assert!(
        ls.lines()
            .any(|l| l.starts_with("admin ") && l.contains("draft")),
        "{ls}"
    );
    assert!(
        !ls.contains(&secret) && !ls.contains(&ops),
        "never a secret: {ls}"
    );
    let status = ok(&cli(&node, &["status", "--token", &secret], &[]));
    assert!(status.contains("revision"), "{status}");
    let refused = cli(&node, &["kv", "put", "a", "b", "--token", &secret], &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("forbidden") && stderr.contains("403"),
        "{stderr}"
    );

    let revoked = ok(&cli(
        &node,
        &["token", "revoke", "ci", "--token", &ops],
        &[],
    ));
    assert!(
        revoked.trim().parse::<u64>().is_ok(),
        "the revision: {revoked}"
    );
    let after = cli(&node, &["status", "--token", &secret], &[]);
    assert_eq!(after.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&after.stderr).contains("401"));
    let without = cli(&node, &["status"], &[]);
    assert!(String::from_utf8_lossy(&without.stderr).contains("unauthenticated"));
    let again = cli(&node, &["token", "revoke", "ci", "--token", &ops], &[]);
    assert_eq!(again.status.code(), Some(1), "nothing left to revoke");
}

/// Waits (at most 20 s) for `socket` to be closed, skipping what it sends before; returns
/// the close frame's code and reason.
async fn closed_with<S>(socket: &mut S) -> (u16, String)
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("closed within 20 s");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None)) | Err(_)) | None => return (0, String::new()),
            Some(Ok(_)) => {}
        }
    }
}

/// Revoking a token closes the WebSockets opened with it (consumers, group members,
/// producers, watches) with 1008 "token revoked", and a token's expiry closes its sockets
/// too; a socket opened with another token stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_websockets_close_when_their_token_is_revoked_or_expires() {
    let dir = tempfile::tempdir().expect("dir");
    let node = Node::start(dir.path(), &["--auth", "on"]);
    let admin = admin_token(&node);
    let orders = create(&node, &admin, json!({"name": "orders", "role": "service"})).await;
    let ws = node.url.replacen("http", "ws", 1);
    let open = |path: String, token: String| {
        let join = if path.contains('?') { '&' } else { '?' };
        let url = format!("{ws}{path}{join}access_token={token}");
        async move {
            tokio_tungstenite::connect_async(url)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .0
        }
    };
    let mut consumer = open(
        "/v1/channels/orders/consume?from=earliest".into(),
        orders.clone(),
    )
    .await;
    let mut member = open(
        "/v1/channels/orders/consume?group=billing&from=earliest".into(),
        orders.clone(),
    )
    .await;
    let mut producer = open("/v1/channels/orders/produce".into(), orders.clone()).await;
    let mut watch = open("/v1/watch?prefix=config/orders/".into(), orders.clone()).await;
    let mut admins = open(
        "/v1/channels/orders/consume?from=earliest".into(),
        admin.clone(),
    )
    .await;

    let (status, body) = send(
        reqwest::Method::DELETE,
        &format!("{}/v1/tokens/orders", node.url),
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (name, socket) in [
        ("consumer", &mut consumer),
        ("group member", &mut member),
        ("producer", &mut producer),
        ("watch", &mut watch),
    ] {
        assert_eq!(
            closed_with(socket).await,
            (1008, "token revoked".to_owned()),
            "{name}"
        );
    }
    // The admin's consumer is still served: an event produced now reaches it.
    let (status, _) = draft_tests::auth::produce(&node, "orders", Some(&admin), "after").await;
    assert_eq!(status, 201);
    let got = tokio::time::timeout(
        Duration::from_secs(20),
        futures::StreamExt::next(&mut admins),
    )
    .await
    .expect("an event within 20 s")
    .expect("open")
    .expect("a message");
    assert!(
        got.to_text().unwrap_or_default().contains("after"),
        "{got:?}"
    );

    let short = create(
        &node,
        &admin,
        json!({"name": "short", "role": "reader", "expires_in_secs": 2}),
    )
    .await;
    let mut expiring = open("/v1/channels/orders/consume?from=latest".into(), short).await;
    assert_eq!(
        closed_with(&mut expiring).await,
        (1008, "token expired".to_owned())
    );
}
