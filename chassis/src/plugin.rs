//! Plugins: what a service needs running before it registers (a database pool, a NATS
//! connection) and stopped after it drained. They start in the order they were added, before
//! the service registers, and stop in reverse order once its requests and hooks are drained;
//! their health feeds `/readyz`.
//!
//! A plugin is a value implementing [`Plugin`]; what `start` returns (its *handle*, say a
//! connection pool) is what the service uses, through [`Chassis::plugin`](crate::Chassis::plugin).

use std::any::{Any, TypeId};
use std::sync::Arc;

use futures::future::BoxFuture;

/// Why a plugin failed to start (its message is printed on one line and the service exits 1).
pub type PluginError = Box<dyn std::error::Error + Send + Sync>;

/// A plugin's health, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Working.
    Up,
    /// Not working, and why.
    Down(String),
}

/// What a plugin is given when it starts.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The service's name.
    pub service: String,
    /// The service's effective configuration at start (every layer merged), as JSON: a
    /// plugin reads its own section, for example `postgres`.
    pub config: serde_json::Value,
}

impl PluginContext {
    /// The configuration section `name` (`None` if absent or `null`).
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&serde_json::Value> {
        self.config.get(name).filter(|v| !v.is_null())
    }
}

/// Something a service starts before it registers and stops after it drained.
pub trait Plugin: Send + Sync + 'static {
    /// What a started plugin hands the service (a pool, a client).
    type Handle: Send + Sync + 'static;

    /// The plugin's name, in logs and in `/readyz`.
    fn name(&self) -> &str;

    /// Starts the plugin. An error stops the service from starting (exit 1, never registered).
    fn start(
        &self,
        ctx: &PluginContext,
    ) -> impl Future<Output = Result<Self::Handle, PluginError>> + Send;

    /// Stops the plugin (after the service drained); the handle is not used afterwards.
    fn stop(&self, handle: &Self::Handle) -> impl Future<Output = ()> + Send;

    /// Whether the started plugin works (called for each `/readyz`; keep it quick).
    fn health(&self, handle: &Self::Handle) -> impl Future<Output = Health> + Send;
}

/// A plugin with its type erased, as the chassis keeps it.
pub(crate) trait ErasedPlugin: Send + Sync {
    fn name(&self) -> &str;
    fn start<'a>(
        &'a self,
        ctx: &'a PluginContext,
    ) -> BoxFuture<'a, Result<Arc<dyn Any + Send + Sync>, PluginError>>;
    fn stop<'a>(&'a self, handle: &'a (dyn Any + Send + Sync)) -> BoxFuture<'a, ()>;
    fn health<'a>(&'a self, handle: &'a (dyn Any + Send + Sync)) -> BoxFuture<'a, Health>;
    fn handle_type(&self) -> TypeId;
}

impl<P: Plugin> ErasedPlugin for P {
    fn name(&self) -> &str {
        Plugin::name(self)
    }

    fn start<'a>(
        &'a self,
        ctx: &'a PluginContext,
    ) -> BoxFuture<'a, Result<Arc<dyn Any + Send + Sync>, PluginError>> {
        Box::pin(async move {
            let handle = Plugin::start(self, ctx).await?;
            Ok(Arc::new(handle) as Arc<dyn Any + Send + Sync>)
        })
    }

    fn stop<'a>(&'a self, handle: &'a (dyn Any + Send + Sync)) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(handle) = handle.downcast_ref::<P::Handle>() {
                Plugin::stop(self, handle).await;
            }
        })
    }

    fn health<'a>(&'a self, handle: &'a (dyn Any + Send + Sync)) -> BoxFuture<'a, Health> {
        Box::pin(async move {
            match handle.downcast_ref::<P::Handle>() {
                Some(handle) => Plugin::health(self, handle).await,
                None => Health::Down("handle of another type".to_owned()),
            }
        })
    }

    fn handle_type(&self) -> TypeId {
        TypeId::of::<P::Handle>()
    }
}

/// A started plugin.
pub(crate) struct Started {
    pub(crate) plugin: Arc<dyn ErasedPlugin>,
    pub(crate) handle: Arc<dyn Any + Send + Sync>,
}

/// A plugin as declared: started always, or only when a config section is present.
pub(crate) struct Declared {
    pub(crate) plugin: Arc<dyn ErasedPlugin>,
    /// Start only if this configuration section is present.
    pub(crate) only_with: Option<String>,
}

/// Starts `plugins` in order (skipping those whose section is absent); on a failure stops
/// those already started (in reverse) and returns the failing plugin's name and error.
pub(crate) async fn start_all(
    plugins: &[Declared],
    ctx: &PluginContext,
) -> Result<Vec<Started>, (String, PluginError)> {
    let mut started = Vec::with_capacity(plugins.len());
    for Declared { plugin, only_with } in plugins {
        if let Some(section) = only_with
            && ctx.section(section).is_none()
        {
            tracing::info!(
                plugin = plugin.name(),
                section,
                "plugin not configured; not started"
            );
            continue;
        }
        tracing::info!(plugin = plugin.name(), "starting plugin");
        match plugin.start(ctx).await {
            Ok(handle) => started.push(Started {
                plugin: Arc::clone(plugin),
                handle,
            }),
            Err(e) => {
                stop_all(&started).await;
                return Err((plugin.name().to_owned(), e));
            }
        }
    }
    Ok(started)
}

/// Stops started plugins in reverse order.
pub(crate) async fn stop_all(started: &[Started]) {
    for s in started.iter().rev() {
        tracing::info!(plugin = s.plugin.name(), "stopping plugin");
        s.plugin.stop(s.handle.as_ref()).await;
    }
}
