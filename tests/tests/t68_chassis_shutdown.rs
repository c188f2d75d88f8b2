//! A chassis service's start and shutdown, with the probe service: a slow request finishes
//! and the instance is deregistered before exit 0; a running hook handler finishes and is
//! acknowledged; plugins start in order and stop in reverse, and a failing one stops the
//! start; a second signal exits at once; a rolling restart of two replicas shows no 5xx
//! through the ingress.

use std::path::Path;
use std::time::Duration;

use draft_tests::service::{Service, binary, eventually};
use draft_tests::{Node, event, post, stored};
use serde_json::Value;

fn probe(node: &Node, envs: &[(&str, &str)], cwd: &Path) -> Service {
    Service::start(&binary("probe-service"), &node.url, envs, cwd)
}

async fn deregistered(node: &Node, instance: &str) -> bool {
    stored(node, "_draft").await.iter().any(|e| {
        e["type"] == "io.draft.instance.deregistered"
            && e["data"]["instance"].as_str() == Some(instance)
    })
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_and_deregisters_before_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut svc = probe(&node, &[("DRAFT_DRAIN_DELAY_MS", "100")], dir.path());
    let url = format!("{}/probe/slow?ms=1500", svc.url());
    let slow = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    svc.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = svc.wait_exit(Duration::from_secs(10));
        (status, svc)
    })
    .await
    .expect("join");
    let (status, svc) = status;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", svc.log_text());
    assert_eq!(
        slow.await
            .expect("join")
            .expect("the slow request was answered"),
        200
    );
    assert!(
        deregistered(&node, &svc.instance).await,
        "no deregistration in _draft"
    );
}

#[tokio::test]
async fn a_running_handler_finishes_and_is_acknowledged_at_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut svc = probe(
        &node,
        &[
            ("PROBE_HOOK", "jobs/workers"),
            ("PROBE_HOOK_SLOW_MS", "800"),
        ],
        dir.path(),
    );
    let (status, _) = post(
        &node,
        "jobs",
        "application/cloudevents+json",
        event("j1", "t").to_string(),
    )
    .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    svc.signal("TERM");
    let exit = svc.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
    assert!(svc.log_text().contains("handled 0"), "{}", svc.log_text());
    // Acknowledged before the exit; the node commits acknowledgements every 100 ms.
    let url = format!("{}/v1/channels/jobs/groups/workers", node.url);
    let committed = eventually(Duration::from_secs(2), || async {
        let g: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        (g["committed_offset"] == 0).then_some(())
    })
    .await;
    assert!(
        committed.is_some(),
        "the handled event was not acknowledged"
    );
}

#[tokio::test]
async fn plugins_start_in_order_stop_in_reverse_and_a_failure_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut svc = probe(&node, &[("PROBE_PLUGINS", "a,b,c")], dir.path());
    svc.signal("TERM");
    assert_eq!(
        svc.wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
    let lines: Vec<String> = svc
        .log_text()
        .lines()
        .filter(|l| l.starts_with("plugin "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "plugin start a",
            "plugin start b",
            "plugin start c",
            "plugin stop c",
            "plugin stop b",
            "plugin stop a"
        ]
    );

    let (status, stderr) = Service::run_to_exit(
        &binary("probe-service"),
        &node.url,
        &[("PROBE_PLUGINS", "a,b,c"), ("PROBE_FAIL_PLUGIN", "b")],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("plugin ") || l.starts_with("error: "))
        .collect();
    assert_eq!(
        lines,
        [
            "plugin start a",
            "plugin start b",
            "plugin stop a",
            "error: plugin b failed to start: b was told to fail"
        ]
    );
    // Neither start registered anything that is still there.
    let services: Value = reqwest::get(format!("{}/v1/services/probe", node.url))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let passing = services["instances"]
        .as_array()
        .map_or(0, |i| i.iter().filter(|i| i["health"] == "passing").count());
    assert_eq!(passing, 0, "{services}");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut svc = probe(&node, &[("DRAFT_SHUTDOWN_TIMEOUT_MS", "30000")], dir.path());
    let url = format!("{}/probe/slow?ms=20000", svc.url());
    let _slow = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    svc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        svc.wait_exit(Duration::from_millis(10)).is_none(),
        "it waits for the slow request"
    );
    svc.signal("TERM");
    let exit = svc.wait_exit(Duration::from_secs(2));
    assert_eq!(exit.and_then(|s| s.code()), Some(1));
}

#[tokio::test]
async fn a_rolling_restart_of_two_replicas_shows_no_5xx_through_the_ingress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&dir.path().join("node"), &[]);
    let mut replicas = vec![probe(&node, &[], dir.path()), probe(&node, &[], dir.path())];
    let hello = format!("{}/probe/hello", node.ingress);
    let routed = eventually(Duration::from_secs(5), || async {
        let r = reqwest::get(&hello).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(routed.is_some());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, hello) = (std::sync::Arc::clone(&stop), hello.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, Vec::new());
            // Bounded: at most 60 s or until told to stop.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && tokio::time::Instant::now() < deadline
            {
                match client.get(&hello).send().await {
                    Ok(r) if r.status().is_success() => ok += 1,
                    Ok(r) => failed.push(r.status().as_u16()),
                    Err(e) => failed.push(u16::from(e.is_connect())),
                }
            }
            (ok, failed)
        })
    };
    for _ in 0..2 {
        let mut old = replicas.remove(0);
        old.signal("TERM");
        let exit = tokio::task::spawn_blocking(move || old.wait_exit(Duration::from_secs(10)))
            .await
            .expect("join");
        assert_eq!(exit.and_then(|s| s.code()), Some(0));
        replicas.push(probe(&node, &[], dir.path()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.expect("join");
    assert!(ok > 50, "too few requests went through: {ok}");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
}
