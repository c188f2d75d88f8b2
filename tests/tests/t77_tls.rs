//! TLS on both listeners (`--tls-cert`, `--tls-key`), with a certificate made at test time:
//! HTTPS round trips on the API and the ingress, a plain-HTTP request on the TLS port
//! answered with a plain 400, and a node that cannot load its certificate refusing to start
//! with one line.

use std::process::Command;

use draft_tests::{Node, dctl, event};

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

#[tokio::test]
async fn both_listeners_speak_https_and_refuse_plain_http_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pem, cert, key) = certificate(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let node = Node::start(
        &dir.path().join("node"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(node.url.starts_with("https://"), "{}", node.url);
    assert!(node.ingress.starts_with("https://"), "{}", node.ingress);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");

    let health = client
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(health.status().as_u16(), 200);
    let produced = client
        .post(format!("{}/v1/channels/tls/events", node.url))
        .header("content-type", "application/cloudevents+json")
        .body(event("t1", "t").to_string())
        .send()
        .await
        .expect("produce over HTTPS");
    assert_eq!(produced.status().as_u16(), 201);
    let routed = client
        .get(format!("{}/nowhere", node.ingress))
        .send()
        .await
        .expect("ingress");
    assert_eq!(
        routed.status().as_u16(),
        404,
        "the ingress answers over HTTPS"
    );

    // Plain HTTP on the TLS port: a plain 400 that says so, then the connection closes.
    let plain_url = node.url.replacen("https://", "http://", 1);
    let plain = reqwest::get(format!("{plain_url}/healthz"))
        .await
        .expect("plain answer");
    assert_eq!(plain.status().as_u16(), 400);
    let body: serde_json::Value = plain.json().await.expect("JSON body");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTPS")),
        "{body}"
    );
    // A client that does not trust the certificate is refused by its own TLS check.
    assert!(reqwest::get(format!("{}/healthz", node.url)).await.is_err());
}

#[test]
fn a_node_without_a_usable_certificate_exits_1_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, cert, _) = certificate(dir.path());
    let missing = dir.path().join("missing-key.pem");
    for args in [
        vec![
            "--tls-cert".to_owned(),
            cert.display().to_string(),
            "--tls-key".to_owned(),
            missing.display().to_string(),
        ],
        vec![
            "--tls-cert".to_owned(),
            missing.display().to_string(),
            "--tls-key".to_owned(),
            cert.display().to_string(),
        ],
    ] {
        let out = Command::new(dctl())
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--ingress",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join("node"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run dctl up");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("TLS"), "{stderr}");
    }
}

#[tokio::test]
async fn dctl_talks_to_an_https_node_that_it_is_told_to_trust() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, cert, key) = certificate(dir.path());
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let node = Node::start(
        &dir.path().join("node"),
        &["--tls-cert", &cert_s, "--tls-key", &key_s],
    );
    let run = |extra: &[&str]| {
        Command::new(dctl())
            .args([
                "produce", "tls", "--type", "t", "--data", "{}", "--url", &node.url,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("DRAFT_CA")
            .output()
            .expect("run dctl produce")
    };
    let trusted = run(&["--ca", &cert_s]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let untrusted = run(&[]);
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(
        stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{stderr}"
    );
}
