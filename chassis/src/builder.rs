//! [`Builder`]: what a service declares before it starts (routes, lease, config type, hooks,
//! plugins), and [`Builder::build`], which starts everything the service needs before it can
//! serve: settings, configuration, plugins, the listener.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draft_blueprint::wire::Route;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::warn;

use crate::chassis::{Chassis, Timing};
use crate::config::live::Follower;
use crate::config::{Apply, Layers, Live, kv_prefix};
use crate::env::Environment;
use crate::error::Error;
use crate::event::Event;
use crate::hook::{Handler, Hook, HookContext, HookResult};
use crate::metrics::Metrics;
use crate::node::NodeLink;
use crate::plugin::{Declared, Plugin, PluginContext, start_all};
use crate::telemetry::init_logging;

/// How long `build` waits for the KV configuration before it starts with the lower layers
/// (the follower keeps trying, and applies KV values once the node answers).
const FIRST_SYNC: Duration = Duration::from_secs(3);

/// Builds the typed configuration's layers; returns the applier and the receiver (erased).
type ConfigInit = Box<
    dyn FnOnce(
            &str,
            Option<&str>,
            Vec<(String, String)>,
        ) -> Result<(Box<dyn Apply>, Box<dyn Any + Send + Sync>, TypeId), String>
        + Send,
>;

/// What a service declares; see [`Chassis::builder`].
pub struct Builder {
    name: String,
    routes: Vec<Route>,
    metadata: BTreeMap<String, String>,
    ttl: Duration,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    hooks: Vec<(Hook, Handler)>,
    plugins: Vec<Declared>,
    config: ConfigInit,
    environment: Option<Environment>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Builder {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            routes: Vec::new(),
            metadata: BTreeMap::new(),
            ttl: Duration::from_secs(10),
            drain_delay: Duration::from_millis(200),
            shutdown_timeout: Duration::from_secs(10),
            hooks: Vec::new(),
            plugins: Vec::new(),
            config: config_init::<serde_json::Value>(),
            environment: None,
        }
    }

    /// Serves requests under `prefix` through the node's ingress.
    #[must_use]
    pub fn route(mut self, prefix: impl Into<String>) -> Self {
        self.routes.push(Route {
            prefix: prefix.into(),
            host: None,
            strip_prefix: false,
            timeout_ms: None,
        });
        self
    }

    /// Serves a route described in full (host, prefix stripping, timeout).
    #[must_use]
    pub fn route_spec(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// A label registered with the instance.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The lease's TTL (default 10 s; `DRAFT_TTL_MS` overrides it).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The pause between deregistering and closing the listener, so the ingress stops
    /// sending before the service stops accepting (default 200 ms; `DRAFT_DRAIN_DELAY_MS`).
    #[must_use]
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// How long in-flight requests and the running hook handlers get to finish at shutdown
    /// (default 10 s; `DRAFT_SHUTDOWN_TIMEOUT_MS`).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The service's typed configuration (see the `config` module); read it with
    /// [`Chassis::config`].
    #[must_use]
    pub fn config<T>(mut self) -> Self
    where
        T: DeserializeOwned + Serialize + Default + Send + Sync + 'static,
    {
        self.config = config_init::<T>();
        self
    }

    /// Runs `handler` for the events of `hook`.
    #[must_use]
    pub fn hook<F, Fut>(mut self, hook: Hook, handler: F) -> Self
    where
        F: Fn(Event, HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |event, context| Box::pin(handler(event, context)));
        self.hooks.push((hook, handler));
        self
    }

    /// Adds a plugin; plugins start in the order they were added.
    #[must_use]
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        self.plugins.push(Declared {
            plugin: Arc::new(plugin),
            only_with: None,
        });
        self
    }

    /// Adds a plugin that starts only when the configuration has the section `section` (for
    /// example a database the service can run without).
    #[must_use]
    pub fn plugin_if_configured(mut self, section: &str, plugin: impl Plugin) -> Self {
        self.plugins.push(Declared {
            plugin: Arc::new(plugin),
            only_with: Some(section.to_owned()),
        });
        self
    }

    /// Uses `environment` instead of reading the process's `DRAFT_*` variables.
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Reads the settings, loads the configuration (defaults, file, environment, then KV),
    /// starts the plugins in order and binds the listener. Nothing is registered yet: that
    /// happens in [`Chassis::serve`].
    ///
    /// # Errors
    /// A bad setting, configuration that does not fit the type, a failed plugin, a listener
    /// that cannot be bound, or a wrongly declared hook; see [`Error`].
    pub async fn build(self) -> Result<Chassis, Error> {
        let env = match self.environment {
            Some(env) => env,
            None => Environment::from_process()?,
        };
        init_logging(&self.name, env.json_logs);
        check_name(&self.name)?;
        check_hooks(&self.hooks)?;
        check_lease(env.ttl.unwrap_or(self.ttl), env.instance.as_deref())?;
        let node = node_link(&env)?;
        let metrics = Arc::new(Metrics::new());

        // Configuration: the lower layers must fit; KV is followed from here on.
        let (file_path, file_text) = read_config_file(&self.name, env.config_file.as_ref())?;
        let (apply, receiver, config_type) =
            (self.config)(&self.name, file_text.as_deref(), std::env::vars().collect()).map_err(
                |reason| Error::Config {
                    service: self.name.clone(),
                    reason: match &file_path {
                        Some(p) => format!("{reason} ({} read)", p.display()),
                        None => reason,
                    },
                },
            )?;
        let mut follower = Follower {
            node: node.clone(),
            prefix: kv_prefix(&self.name),
            apply: Arc::new(Mutex::new(apply)),
            metrics: Arc::clone(&metrics),
            revision: None,
            in_snapshot: false,
        };
        let watch_socket = match tokio::time::timeout(FIRST_SYNC, follower.sync()).await {
            Ok(Ok(socket)) => Some(socket),
            Ok(Err(reason)) => {
                warn!(%reason, "no KV configuration yet; starting with the lower layers");
                None
            }
            Err(_) => {
                warn!("the node did not answer in time; starting without KV configuration");
                None
            }
        };

        let document = follower
            .apply
            .lock()
            .map(|a| a.document())
            .unwrap_or_default();
        let context = PluginContext {
            service: self.name.clone(),
            config: document,
        };
        let plugins = start_all(&self.plugins, &context)
            .await
            .map_err(|(plugin, e)| Error::Plugin {
                plugin,
                reason: e.to_string(),
            })?;

        let listener = match tokio::net::TcpListener::bind(env.listen).await {
            Ok(l) => l,
            Err(e) => {
                crate::plugin::stop_all(&plugins).await;
                return Err(Error::Listen {
                    addr: env.listen.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        Ok(Chassis::new(crate::chassis::Parts {
            name: self.name,
            env,
            node,
            metrics,
            routes: self.routes,
            metadata: self.metadata,
            timing: Timing {
                ttl: self.ttl,
                drain_delay: self.drain_delay,
                shutdown_timeout: self.shutdown_timeout,
            },
            hooks: self.hooks,
            plugins,
            follower,
            watch_socket,
            config: (config_type, receiver),
            listener,
        }))
    }
}

fn config_init<T>() -> ConfigInit
where
    T: DeserializeOwned + Serialize + Default + Send + Sync + 'static,
{
    Box::new(|service, file, vars| {
        let layers = Layers::<T>::new(service, file, vars)?;
        let first = layers.resolve()?;
        let (tx, rx) = watch::channel(Arc::new(first));
        let live: Box<dyn Apply> = Box::new(Live { layers, tx });
        Ok((live, Box::new(rx), TypeId::of::<T>()))
    })
}

/// The configuration file: `explicit` (which must exist), else `<service>.toml` if present.
fn read_config_file(
    service: &str,
    explicit: Option<&PathBuf>,
) -> Result<(Option<PathBuf>, Option<String>), Error> {
    let (path, required) = match explicit {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(format!("{service}.toml")), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((Some(path), Some(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok((None, None)),
        Err(e) => Err(Error::ConfigFile {
            path,
            reason: e.to_string(),
        }),
    }
}

/// Blueprint's rule for service names: 1 to 128 of `[A-Za-z0-9._-]`.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::ServiceName(
            name.to_owned(),
            "must be 1-128 of [A-Za-z0-9._-]".to_owned(),
        ))
    }
}

/// What Blueprint accepts for a lease: a TTL of 100 ms to 24 h, an instance id by the name
/// rule. Checked at start, so a bad one exits 1 instead of being refused for ever.
fn check_lease(ttl: std::time::Duration, instance: Option<&str>) -> Result<(), Error> {
    let ms = ttl.as_millis();
    if !(100..=86_400_000).contains(&ms) {
        return Err(Error::Setting {
            variable: "DRAFT_TTL_MS".to_owned(),
            value: ms.to_string(),
            reason: "the lease TTL must be 100 ms to 24 h".to_owned(),
        });
    }
    if let Some(id) = instance
        && check_name(id).is_err()
    {
        return Err(Error::Setting {
            variable: "DRAFT_INSTANCE".to_owned(),
            value: id.to_owned(),
            reason: "must be 1-128 of [A-Za-z0-9._-]".to_owned(),
        });
    }
    Ok(())
}

fn check_hooks(hooks: &[(Hook, Handler)]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for (hook, _) in hooks {
        if hook.channel.is_empty() {
            return Err(Error::Hook {
                channel: String::new(),
                reason: "the channel name is empty".to_owned(),
            });
        }
        if hook.group.is_some() && !seen.insert(hook.name()) {
            return Err(Error::Hook {
                channel: hook.channel.clone(),
                reason: format!("two hooks share the group {}", hook.name()),
            });
        }
        if hook.retry.attempts == 0 {
            return Err(Error::Hook {
                channel: hook.channel.clone(),
                reason: "retry attempts must be at least 1".to_owned(),
            });
        }
        // Retrying one event past the group's timeout hands it to a standby meanwhile.
        let worst = hook.retry.max_delay * hook.retry.attempts.saturating_sub(1);
        if let Some(timeout) = hook.timeout
            && hook.group.is_some()
            && worst >= timeout
        {
            return Err(Error::Hook {
                channel: hook.channel.clone(),
                reason: format!(
                    "retries may take {worst:?}, not less than the group timeout of {timeout:?}"
                ),
            });
        }
    }
    Ok(())
}

/// The link to the node `env` names, trusting `DRAFT_CA` if it is set.
///
/// # Errors
/// [`Error::Setting`] naming `DRAFT_CA` if its file cannot be read or holds no certificate.
fn node_link(env: &Environment) -> Result<NodeLink, Error> {
    let bad_ca = |path: &std::path::Path, reason: String| Error::Setting {
        variable: "DRAFT_CA".to_owned(),
        value: path.display().to_string(),
        reason,
    };
    let ca = match &env.ca {
        None => None,
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| bad_ca(path, format!("cannot be read: {e}")))?)
        }
    };
    NodeLink::new(&env.url, env.token.clone(), ca.as_deref()).map_err(|e| {
        bad_ca(
            env.ca.as_deref().unwrap_or(std::path::Path::new("")),
            e.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_blueprint() {
        assert!(check_name("orders-v2.eu_1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn leases_follow_blueprint() {
        use std::time::Duration;
        assert!(check_lease(Duration::from_secs(10), Some("i-1")).is_ok());
        assert!(check_lease(Duration::from_millis(50), None).is_err());
        assert!(check_lease(Duration::from_secs(86_401), None).is_err());
        assert!(check_lease(Duration::from_secs(10), Some("a b")).is_err());
    }

    #[test]
    fn a_group_is_declared_once() {
        let handler: Handler = Arc::new(|_, _| Box::pin(async { Ok(()) }));
        let hook = Hook::on("payments").group("g");
        let twice = vec![
            (hook.clone(), Arc::clone(&handler)),
            (hook, Arc::clone(&handler)),
        ];
        assert!(check_hooks(&twice).is_err());
        let slow = Hook::on("p")
            .group("g")
            .timeout(std::time::Duration::from_secs(5))
            .retry(crate::Retry {
                attempts: 3,
                ..crate::Retry::default()
            });
        assert!(check_hooks(&[(slow.clone(), Arc::clone(&handler))]).is_err());
        let fits = slow.timeout(std::time::Duration::from_secs(11));
        assert!(check_hooks(&[(fits, handler)]).is_ok());
    }
}
