//! The chassis's shipped plugins against real servers (PostgreSQL and nats-server, installed
//! into `target/tools` on first use): each starts, serves through its handle, reports `Down`
//! once its server is gone, and refuses to start with one line that names the plugin and what
//! failed, never a password.

use std::future::Future;
use std::time::Duration;

use draft_chassis::plugin::{Health, Plugin, PluginContext, PluginError};
use draft_chassis::plugins::nats::Nats;
use draft_chassis::plugins::postgres::Postgres;
use draft_tests::servers::{self, POSTGRES_PASSWORD, POSTGRES_USER};
use futures::StreamExt;
use serde_json::json;

fn ctx(config: serde_json::Value) -> PluginContext {
    PluginContext {
        service: "t85".into(),
        config,
    }
}

/// Polls `health` until it is `Down` (within 10 s); returns why.
async fn eventually_down<F, Fut>(mut health: F) -> String
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Health>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match health().await {
            Health::Down(reason) => return reason,
            Health::Up => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still Up 10 s after the server went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The start error's message, checked for the form the chassis prints: one line, naming the
/// plugin, with no password in it.
fn start_error<T>(result: Result<T, PluginError>, plugin: &str, secret: &str) -> String {
    let Err(e) = result else {
        panic!("{plugin} started");
    };
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("{plugin} plugin: ")),
        "{message}"
    );
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(!message.contains(secret), "shows the password: {message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_serves_queries_and_goes_down_with_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = servers::Postgres::start(dir.path());
    let plugin = Postgres::new();
    let config = json!({"postgres": {"url": server.url, "max_connections": 2}});
    let pool = plugin.start(&ctx(config)).await.expect("start");
    assert_eq!(pool.status().max_size, 2);
    assert_eq!(plugin.health(&pool).await, Health::Up);

    let client = pool.get().await.expect("connection");
    client
        .batch_execute("CREATE TABLE orders (id text PRIMARY KEY, total integer NOT NULL)")
        .await
        .expect("create table");
    client
        .execute("INSERT INTO orders VALUES ($1, $2)", &[&"o-1", &42_i32])
        .await
        .expect("insert");
    let row = client
        .query_one("SELECT total FROM orders WHERE id = $1", &[&"o-1"])
        .await
        .expect("select");
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);

    tokio::task::block_in_place(|| server.stop());
    let reason = eventually_down(|| plugin.health(&pool)).await;
    assert!(
        reason.contains("connect") || reason.contains("closed"),
        "{reason}"
    );

    plugin.stop(&pool).await;
    assert!(pool.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_to_start_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let server = servers::Postgres::start(dir.path());
    let plugin = Postgres::new();
    let start = |url: String| {
        let plugin = plugin.clone();
        async move { plugin.start(&ctx(json!({"postgres": {"url": url}}))).await }
    };

    let nobody_listens = draft_tests::free_port();
    let url = format!(
        "postgres://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{nobody_listens}/postgres"
    );
    let e = start_error(start(url).await, "postgres", POSTGRES_PASSWORD);
    assert!(
        e.contains(&format!(
            "cannot connect to postgres://{POSTGRES_USER}:***@127.0.0.1:{nobody_listens}/postgres"
        )),
        "{e}"
    );
    assert!(e.contains("Connection refused"), "{e}");

    let url = format!(
        "postgres://{POSTGRES_USER}:wrong-pw@127.0.0.1:{}/postgres",
        server.port
    );
    let e = start_error(start(url).await, "postgres", "wrong-pw");
    assert!(e.contains("password authentication failed"), "{e}");

    let url = format!("{}?sslmode=require", server.url);
    let e = start_error(start(url).await, "postgres", POSTGRES_PASSWORD);
    assert!(e.contains("cannot connect"), "{e}");

    let url = format!("postgres://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:port/postgres");
    let e = start_error(start(url).await, "postgres", POSTGRES_PASSWORD);
    assert!(e.contains("invalid url"), "{e}");

    let e = start_error(plugin.start(&ctx(json!({}))).await, "postgres", "-");
    assert!(e.contains("no `postgres` section"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_client_round_trips_and_goes_down_with_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = servers::NatsServer::start(dir.path());
    let plugin = Nats::new();
    let client = plugin
        .start(&ctx(json!({"nats": {"url": server.url}})))
        .await
        .expect("start");
    assert_eq!(plugin.health(&client).await, Health::Up);

    let mut orders = client.subscribe("orders.>").await.expect("subscribe");
    client
        .publish("orders.created", "o-1".into())
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let message = tokio::time::timeout(Duration::from_secs(5), orders.next())
        .await
        .expect("a message within 5 s")
        .expect("subscription open");
    assert_eq!(message.subject.as_str(), "orders.created");
    assert_eq!(&message.payload[..], b"o-1");

    tokio::task::block_in_place(|| server.kill9());
    let reason = eventually_down(|| plugin.health(&client)).await;
    assert!(
        reason.contains("connection") || reason.contains("PONG"),
        "{reason}"
    );

    // With the server gone, stop gives up at once instead of waiting for a drain.
    tokio::time::timeout(Duration::from_secs(1), plugin.stop(&client))
        .await
        .expect("stop returns at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stop_drains_the_client() {
    let dir = tempfile::tempdir().expect("dir");
    let server = servers::NatsServer::start(dir.path());
    let plugin = Nats::new();
    let client = plugin
        .start(&ctx(json!({"nats": {"url": server.url}})))
        .await
        .expect("start");
    let mut orders = client.subscribe("orders.>").await.expect("subscribe");
    client
        .publish("orders.created", "o-1".into())
        .await
        .expect("publish");

    plugin.stop(&client).await;
    // What was published before the drain is delivered, then the subscription ends.
    let delivered: Vec<_> =
        tokio::time::timeout(Duration::from_secs(5), orders.by_ref().collect::<Vec<_>>())
            .await
            .expect("the subscription ends within 5 s");
    assert_eq!(delivered.len(), 1);
    assert!(matches!(plugin.health(&client).await, Health::Down(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_refuses_to_start_with_one_clear_line() {
    let plugin = Nats::new();
    let nobody_listens = draft_tests::free_port();
    let url = format!("nats://user:s3cret@127.0.0.1:{nobody_listens}");
    let e = start_error(
        plugin.start(&ctx(json!({"nats": {"url": url}}))).await,
        "nats",
        "s3cret",
    );
    assert!(
        e.contains(&format!(
            "cannot connect to nats://***@127.0.0.1:{nobody_listens}"
        )),
        "{e}"
    );

    let e = start_error(plugin.start(&ctx(json!({"nats": {}}))).await, "nats", "-");
    assert!(e.contains("missing field `url`"), "{e}");
}
