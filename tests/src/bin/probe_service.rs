//! `probe-service`: a chassis service the end-to-end tests steer through its environment, for
//! what the example service has no reason to do: slow requests, slow handlers, plugins that
//! report their order or fail to start.
//!
//! - `PROBE_NAME` (default `probe`): the service name; it serves `/<name>/slow?ms=N` and
//!   `/<name>/hello` (which answers the instance id).
//! - `PROBE_PLUGINS=a,b,c`: plugins started in that order; each logs `plugin start NAME` and
//!   `plugin stop NAME`; `PROBE_FAIL_PLUGIN=b` makes `b` fail to start.
//! - `PROBE_HOOK=channel/group`: a hook that logs `handling OFFSET`, waits
//!   `PROBE_HOOK_SLOW_MS`, then logs `handled OFFSET`.

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use draft_chassis::plugin::{Health, Plugin, PluginContext, PluginError};
use draft_chassis::{Chassis, Hook};

struct Probe {
    name: String,
    fail: bool,
}

impl Plugin for Probe {
    type Handle = String;

    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&self, _ctx: &PluginContext) -> Result<String, PluginError> {
        eprintln!("plugin start {}", self.name);
        if self.fail {
            return Err(format!("{} was told to fail", self.name).into());
        }
        Ok(self.name.clone())
    }

    async fn stop(&self, handle: &String) {
        eprintln!("plugin stop {handle}");
    }

    async fn health(&self, _handle: &String) -> Health {
        Health::Up
    }
}

#[derive(serde::Deserialize)]
struct Slow {
    ms: u64,
}

#[tokio::main]
async fn main() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = env("PROBE_NAME").unwrap_or_else(|| "probe".to_owned());
    let mut builder = Chassis::builder(&name).route(format!("/{name}"));
    let fail = env("PROBE_FAIL_PLUGIN");
    for plugin in env("PROBE_PLUGINS")
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        builder = builder.plugin(Probe {
            name: plugin.to_owned(),
            fail: fail.as_deref() == Some(plugin),
        });
    }
    if let Some((channel, group)) = env("PROBE_HOOK").as_deref().and_then(|h| h.split_once('/')) {
        let slow = Duration::from_millis(
            env("PROBE_HOOK_SLOW_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        );
        builder = builder.hook(Hook::on(channel).group(group), move |event, _| async move {
            eprintln!("handling {}", event.offset);
            tokio::time::sleep(slow).await;
            eprintln!("handled {}", event.offset);
            Ok(())
        });
    }
    let chassis = builder.build().await.unwrap_or_else(|e| e.exit());
    let instance = chassis.instance().to_owned();
    let router = Router::new()
        .route(
            &format!("/{name}/slow"),
            get(|Query(slow): Query<Slow>| async move {
                tokio::time::sleep(Duration::from_millis(slow.ms)).await;
                "done"
            }),
        )
        .route(
            &format!("/{name}/hello"),
            get(move || async move { instance }),
        );
    chassis.serve(router).await.unwrap_or_else(|e| e.exit());
}
