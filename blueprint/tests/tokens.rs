//! Tokens through the router and `Blueprint::authenticate`, on a real log: the secret shown
//! once and stored as its SHA-256 only, names unique among live tokens, revocation and expiry
//! in force at once, `?at=`, and a restart that keeps them.

mod common;

use axum::http::StatusCode;
use common::{call, open, open_in};
use draft_blueprint::{CONTROL_PARTITION, TokenName};
use draft_http::auth::{Digest, Policy};
use draft_log::{Offset, PartitionName};

fn control_events(h: &common::Harness) -> Vec<String> {
    let partition = PartitionName::new(CONTROL_PARTITION).expect("partition");
    h.log
        .read(&partition, Offset(0), 1000)
        .expect("read")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_listed_checked_and_revoked_at_once() {
    let h = open(10_000).await;
    let r = call(
        &h,
        "POST",
        "/v1/tokens",
        &[],
        r#"{"name":"ci","role":"reader"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let secret = r.json()["token"].as_str().expect("the secret").to_owned();
    assert_eq!(r.json()["policy"], serde_json::json!({"role": "reader"}));
    let grant = h.blueprint.authenticate(&secret).expect("valid");
    assert_eq!(grant.actor().name(), "ci");
    assert_eq!(grant.policy(), &Policy::Reader);
    assert!(
        h.blueprint
            .authenticate(&format!("{}x", &secret[..48]))
            .is_none()
    );
    assert!(h.blueprint.authenticate("not a token").is_none());

    let stored = control_events(&h).join("\n");
    assert!(!stored.contains(&secret), "the secret is never stored");
    assert!(
        stored.contains(&Digest::of(&secret).to_hex()),
        "its SHA-256 is"
    );
    let listed = call(&h, "GET", "/v1/tokens", &[], "").await;
    assert!(!String::from_utf8_lossy(&listed.body).contains(&secret));
    assert_eq!(listed.json()["tokens"][0]["name"], "ci");
    assert_eq!(listed.json()["tokens"][0]["creator"], "anonymous");
    assert_eq!(listed.json()["tokens"][0]["expired"], false);

    let again = call(
        &h,
        "POST",
        "/v1/tokens",
        &[],
        r#"{"name":"ci","role":"admin"}"#,
    )
    .await;
    assert_eq!(
        (again.status, again.error_code().as_str()),
        (StatusCode::CONFLICT, "conflict")
    );

    let made_at = listed.revision.expect("revision");
    let r = call(&h, "DELETE", "/v1/tokens/ci", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        h.blueprint.authenticate(&secret).is_none(),
        "revoked at once"
    );
    let r = call(&h, "DELETE", "/v1/tokens/ci", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let then = call(&h, "GET", &format!("/v1/tokens?at={made_at}"), &[], "").await;
    assert_eq!(
        then.json()["tokens"][0]["name"],
        "ci",
        "history shows who could read then"
    );
    let now = call(&h, "GET", "/v1/tokens", &[], "").await;
    assert_eq!(now.json()["tokens"], serde_json::json!([]));
    let r = call(
        &h,
        "POST",
        "/v1/tokens",
        &[],
        r#"{"name":"ci","role":"admin"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "the name is free again");
    assert!(
        control_events(&h)
            .iter()
            .any(|e| e.contains("io.draft.token.revoked")),
        "the revocation is in the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_and_its_name_can_be_given_again() {
    let h = open(10_000).await;
    let name = TokenName::parse("short").expect("name");
    let soon = draft_log::Timestamp::now().as_unix_nanos() + 300_000_000;
    let made = h
        .blueprint
        .create_token(&name, Policy::Admin, Some(soon), "admin")
        .await
        .expect("made");
    let secret = made.secret.expose().to_owned();
    assert!(
        h.blueprint.authenticate(&secret).is_some(),
        "cached from here on"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        h.blueprint.authenticate(&secret).is_none(),
        "expired, cache or not"
    );
    let listed = call(&h, "GET", "/v1/tokens", &[], "").await;
    assert_eq!(listed.json()["tokens"][0]["expired"], true);
    assert!(!h.blueprint.has_live_token());
    let again = h
        .blueprint
        .create_token(&name, Policy::Reader, None, "admin")
        .await
        .expect("an expired token's name is free");
    assert!(h.blueprint.authenticate(again.secret.expose()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_restart() {
    let h = open(2).await;
    let made = h
        .blueprint
        .create_token(
            &TokenName::parse("ops").expect("name"),
            Policy::Admin,
            None,
            "draft",
        )
        .await
        .expect("made");
    for name in ["a", "b", "c"] {
        let r = call(&h, "PUT", &format!("/v1/kv/{name}"), &[], "v").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let dir = h.dir;
    drop((h.blueprint, h.log));
    let again = open_in(dir, 2).await;
    let grant = again
        .blueprint
        .authenticate(made.secret.expose())
        .expect("still valid after the restart");
    assert_eq!(grant.actor().name(), "ops");
    assert!(again.blueprint.has_live_token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused() {
    let h = open(10_000).await;
    for (body, status) in [
        ("{", StatusCode::BAD_REQUEST),
        (r#"{"name":"x","role":"root"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"name":"x","role":"admin","extra":1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"name":"a b","role":"admin"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"name":"x","policy":{"kv":{"read":["a*b"]}}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"name":"x","role":"admin","expires_in_secs":999999999999}"#,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = call(&h, "POST", "/v1/tokens", &[], body).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, "invalid_policy"),
            "{body}"
        );
    }
    let r = call(&h, "DELETE", "/v1/tokens/a%20b", &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&h, "GET", "/v1/tokens?x=1", &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
