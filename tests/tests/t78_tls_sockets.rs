//! WebSockets over TLS (`wss://`) to a node serving `--tls-cert`: the Rust client's consumer
//! and pipelined producer trusting a private CA, a Chassis service given `DRAFT_CA`, whose
//! hooks connect over `wss://` (it is ready only then), and `dctl run --ca` starting a TLS
//! node and handing the CA to its services.

use std::time::Duration;

use draft_catalyst::client::{Client, ProducerOptions, ReadOptions};
use draft_tests::service::{Service, binary};
use draft_tests::{Node, dctl, event, free_port};
use futures::StreamExt;

/// A self-signed certificate for 127.0.0.1, written as PEM files into `dir`.
fn certificate(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    (made.cert.pem(), cert, key)
}

fn tls_node(dir: &std::path::Path) -> (Node, String, std::path::PathBuf) {
    let (pem, cert, key) = certificate(dir);
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let node = Node::start(
        &dir.join("node"),
        &["--tls-cert", &cert_s, "--tls-key", &key_s],
    );
    assert!(node.url.starts_with("https://"), "{}", node.url);
    (node, pem, cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_produces_and_consumes_over_wss_when_it_trusts_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, pem, _) = tls_node(dir.path());
    let client = Client::new(&node.url).with_ca(pem.as_bytes()).expect("CA");

    let producer = client
        .producer("tls", ProducerOptions::default())
        .await
        .expect("wss producer");
    for i in 0..5 {
        let offset = producer
            .send(event(&format!("e{i}"), "t").to_string())
            .await
            .expect("acknowledged");
        assert_eq!(offset, i);
    }
    let options = ReadOptions {
        from: Some("earliest".into()),
        ..ReadOptions::default()
    };
    let mut events = client.consume("tls", &options).await.expect("wss consumer");
    for i in 0..5u64 {
        let text = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("open")
            .expect("event");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["draftoffset"].as_u64(), Some(i));
    }

    // Without the CA the certificate is not trusted: a clear connect error, no socket.
    let stranger = Client::new(&node.url);
    let refused = stranger.consume("tls", &options).await;
    assert!(
        matches!(
            refused,
            Err(draft_catalyst::client::ClientError::Connect { .. })
        ),
        "{:?}",
        refused.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chassis_service_given_the_ca_connects_its_hooks_over_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, _, cert) = tls_node(dir.path());
    let cert = cert.display().to_string();
    let svc = Service::start(
        &binary("orders"),
        &node.url,
        &[("DRAFT_CA", cert.as_str())],
        dir.path(),
    );
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http
            .get(format!("http://{}/readyz", svc.addr))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(ready, Ok(200)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready over TLS: {ready:?}\n{}",
            svc.logs.lock().expect("logs").join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A CA file that cannot be read: exit 1 with one line naming DRAFT_CA.
    let (status, stderr) = Service::run_to_exit(
        &binary("orders"),
        &node.url,
        &[("DRAFT_CA", "/no/such/ca.pem")],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("DRAFT_CA"), "{stderr}");
}

/// `dctl run --ca` with a manifest whose node serves TLS: dctl run trusts the CA while it
/// waits for the node (`https://`), and the example service gets `DRAFT_URL=https://…` and
/// `DRAFT_CA`, so it registers and an order goes through the TLS ingress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dctl_run_gives_its_services_the_ca_of_a_tls_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pem, cert, key) = certificate(dir.path());
    let (api, ingress) = (free_port(), free_port());
    let manifest = dir.path().join("draft.toml");
    std::fs::write(
        &manifest,
        format!(
            "[node]\nlisten = \"127.0.0.1:{api}\"\ningress = \"127.0.0.1:{ingress}\"\n\
             data_dir = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
             [services.orders]\ncommand = \"{}\"\n",
            dir.path().join("data").display(),
            cert.display(),
            key.display(),
            binary("orders").display()
        ),
    )
    .expect("manifest");
    let mut run = std::process::Command::new(dctl())
        .arg("run")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--ca")
        .arg(&cert)
        .env_remove("DRAFT_URL")
        .env_remove("DRAFT_CA")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dctl run");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = client
            .post(format!("https://127.0.0.1:{ingress}/orders"))
            .json(&serde_json::json!({"item": "book", "amount": 12}))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(status, Ok(201)) || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let exit = run.wait().expect("dctl run exits");
    assert!(
        matches!(status, Ok(201)),
        "no order through the TLS ingress: {status:?}"
    );
    assert!(exit.success(), "{exit}");
}
