//! The example service's read model in a real PostgreSQL (installed into `target/tools` on
//! first use): with `postgres.url` configured, the `postgres` plugin starts before the
//! service registers, and the orders table follows the projection, payments included; a
//! restart replays the channel into the same rows.

use std::time::Duration;

use draft_chassis::plugins::postgres::tokio_postgres;
use draft_tests::service::{Service, binary, eventually};
use draft_tests::{Node, post, servers};
use serde_json::{Value, json};

async fn rows(url: &str) -> Vec<(String, String, i64, String)> {
    let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return Vec::new();
    };
    tokio::spawn(connection);
    client
        .query(
            "SELECT id, item, amount, status FROM orders ORDER BY item",
            &[],
        )
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn orders_are_kept_in_postgres_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = servers::Postgres::start(dir.path());
    let node = Node::start(&dir.path().join("node"), &[]);
    let envs = [("ORDERS_POSTGRES__URL", pg.url.as_str())];
    let mut svc = Service::start(&binary("orders"), &node.url, &envs, dir.path());
    assert!(
        svc.log_text().contains("starting plugin"),
        "{}",
        svc.log_text()
    );

    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (item, amount) in [("a-book", 12), ("b-pen", 3)] {
        let r = client
            .post(format!("{}/orders", svc.url()))
            .json(&json!({"item": item, "amount": amount}))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status().as_u16(), 201);
        ids.push(
            r.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let payment = json!({"specversion": "1.0", "id": "pay-1", "source": "/bank",
        "type": "com.example.payment.received", "data": {"order": ids[1], "amount": 3}});
    let (status, _) = post(
        &node,
        "payments",
        "application/cloudevents+json",
        payment.to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let want = vec![
        (
            ids[0].clone(),
            "a-book".to_owned(),
            12,
            "created".to_owned(),
        ),
        (ids[1].clone(), "b-pen".to_owned(), 3, "paid".to_owned()),
    ];
    let seen = eventually(Duration::from_secs(10), || async {
        (rows(&pg.url).await == want).then_some(())
    })
    .await;
    assert!(seen.is_some(), "read model: {:?}", rows(&pg.url).await);

    // A restart replays the channel and rebuilds the rows from it.
    svc.kill9();
    let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute("TRUNCATE orders")
        .await
        .expect("truncate");
    assert!(rows(&pg.url).await.is_empty());
    let _svc = Service::start(&binary("orders"), &node.url, &envs, dir.path());
    let rebuilt = eventually(Duration::from_secs(10), || async {
        (rows(&pg.url).await == want).then_some(())
    })
    .await;
    assert!(rebuilt.is_some(), "rebuilt: {:?}", rows(&pg.url).await);
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_before_registration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let url = format!(
        "postgres://draft:secret@127.0.0.1:{}/postgres",
        draft_tests::free_port()
    );
    let (status, stderr) = Service::run_to_exit(
        &binary("orders"),
        &node.url,
        &[("ORDERS_POSTGRES__URL", url.as_str())],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("plugin postgres failed to start"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");
    let services: Value = reqwest::get(format!("{}/v1/services", node.url))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(services["services"].as_array().map(Vec::len), Some(0));
}
