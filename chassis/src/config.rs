//! Typed configuration: four layers merged into one JSON document, then deserialized into the
//! service's type. Lowest first:
//!
//! 1. the type's defaults (`T::default()`);
//! 2. a TOML file (`<service>.toml` in the working directory, or `DRAFT_CONFIG`);
//! 3. environment variables `<SERVICE>_<FIELD>` (the service name upper-cased with `-` as
//!    `_`; `__` nests: `ORDERS_POSTGRES__URL` is `postgres.url`);
//! 4. Blueprint KV under `config/<service>/<field>` (`/` nests), followed live.
//!
//! Variables and KV values are JSON; one that is not JSON is a string. Where the lower layers
//! hold a string, the text is taken as that string unless it is a quoted JSON string, so
//! `ORDERS_CURRENCY=USD` and `'"USD"'` both work and `ORDERS_NAME=123` stays a string.
//!
//! A KV value that does not fit the type is rejected: the previous configuration stays, and
//! the key's previous value stays in effect, so a later good change to another key applies.
//! This module is pure; `config/live.rs` follows the KV store.

pub(crate) mod live;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::watch;

/// A service's live configuration: the current value, and a way to wait for changes.
/// Cloning is cheap; each clone waits for changes on its own.
#[derive(Debug)]
pub struct Config<T> {
    rx: watch::Receiver<Arc<T>>,
}

impl<T> Clone for Config<T> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Config<T> {
    pub(crate) fn new(rx: watch::Receiver<Arc<T>>) -> Self {
        Self { rx }
    }

    /// The configuration in effect now.
    #[must_use]
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.rx.borrow())
    }

    /// Waits for the next accepted change and returns it (pending for ever once the service
    /// stopped following KV).
    pub async fn changed(&mut self) -> Arc<T> {
        if self.rx.changed().await.is_err() {
            futures::future::pending::<()>().await;
        }
        Arc::clone(&self.rx.borrow_and_update())
    }

    /// Calls `f` with every accepted change, from a task of its own.
    pub fn on_change(&self, f: impl Fn(Arc<T>) + Send + 'static) {
        let mut this = self.clone();
        tokio::spawn(async move {
            loop {
                let next = this.changed().await;
                f(next);
            }
        });
    }
}

/// The layers of one service's configuration, and the KV values in effect.
#[derive(Debug)]
pub(crate) struct Layers<T> {
    service: String,
    /// Defaults, file and environment, merged.
    base: Value,
    /// KV values in effect, by field path.
    kv: BTreeMap<Vec<String>, Value>,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Serialize + Default> Layers<T> {
    /// Merges the defaults, the file (TOML text) and the environment variables `vars`.
    pub(crate) fn new(
        service: &str,
        file: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let mut base = serde_json::to_value(T::default()).map_err(|e| format!("defaults: {e}"))?;
        if base.is_null() {
            base = Value::Object(Map::new());
        }
        if let Some(text) = file {
            let file: Value = toml::from_str(text).map_err(|e| format!("file: {e}"))?;
            merge(&mut base, file);
        }
        let prefix = format!("{}_", service.to_ascii_uppercase().replace('-', "_"));
        let mut vars: Vec<_> = vars
            .into_iter()
            .filter_map(|(k, v)| Some((env_path(k.strip_prefix(&prefix)?)?, v)))
            .collect();
        vars.sort();
        for (path, raw) in vars {
            let value = interpret(&raw, lookup(&base, &path));
            set_path(&mut base, &path, value);
        }
        let layers = Self {
            service: service.to_owned(),
            base,
            kv: BTreeMap::new(),
            _type: PhantomData,
        };
        layers
            .resolve()
            .map_err(|e| format!("{e} (from defaults, file and environment)"))?;
        Ok(layers)
    }

    /// The merged document.
    pub(crate) fn document(&self) -> Value {
        let mut doc = self.base.clone();
        for (path, value) in &self.kv {
            set_path(&mut doc, path, value.clone());
        }
        doc
    }

    /// Drops every KV value (the node's state is read again from scratch).
    pub(crate) fn clear_kv(&mut self) {
        self.kv.clear();
    }

    /// The typed configuration of the current layers.
    pub(crate) fn resolve(&self) -> Result<T, String> {
        serde_json::from_value(self.document()).map_err(|e| e.to_string())
    }

    /// Applies a KV change of `key` (`None`: deleted). `Ok(None)`: the key is not a field of
    /// this service's config; `Ok(Some(config))`: the new configuration; `Err(reason)`: the
    /// value does not fit, and nothing changed.
    pub(crate) fn apply_kv(
        &mut self,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<Option<T>, String> {
        let Some(path) = kv_path(&self.service, key) else {
            return Ok(None);
        };
        let previous = match value {
            Some(bytes) => {
                let raw = String::from_utf8_lossy(bytes);
                let value = interpret(&raw, lookup(&self.base, &path));
                self.kv.insert(path.clone(), value)
            }
            None => self.kv.remove(&path),
        };
        match self.resolve() {
            Ok(config) => Ok(Some(config)),
            Err(reason) => {
                match previous {
                    Some(v) => self.kv.insert(path, v),
                    None => self.kv.remove(&path),
                };
                Err(reason)
            }
        }
    }
}

/// `config/<service>/a/b` -> `["a", "b"]`.
pub(crate) fn kv_path(service: &str, key: &str) -> Option<Vec<String>> {
    let rest = key
        .strip_prefix("config/")?
        .strip_prefix(service)?
        .strip_prefix('/')?;
    let path: Vec<String> = rest.split('/').map(str::to_owned).collect();
    path.iter().all(|p| !p.is_empty()).then_some(path)
}

/// The KV prefix of a service's configuration.
pub(crate) fn kv_prefix(service: &str) -> String {
    format!("config/{service}/")
}

/// `MAX_AMOUNT` -> `["max_amount"]`, `POSTGRES__URL` -> `["postgres", "url"]`.
fn env_path(rest: &str) -> Option<Vec<String>> {
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    path.iter().all(|p| !p.is_empty()).then_some(path)
}

/// A variable's or KV value's text as JSON, guided by what the lower layers hold there.
fn interpret(raw: &str, existing: Option<&Value>) -> Value {
    if matches!(existing, Some(Value::String(_))) && !raw.trim_start().starts_with('"') {
        return Value::String(raw.to_owned());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, key| v.get(key))
}

fn set_path(root: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

/// Merges `over` into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Keeps the live value and its sender together, as the KV follower updates them.
pub(crate) struct Live<T> {
    pub(crate) layers: Layers<T>,
    pub(crate) tx: watch::Sender<Arc<T>>,
}

/// What the KV follower calls for each change, with the type erased.
pub(crate) trait Apply: Send {
    /// Applies a change; `Err` is the reason a value was rejected.
    fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), String>;
    /// The merged document now.
    fn document(&self) -> Value;
    /// Forgets every KV value (before a fresh snapshot).
    fn reset_kv(&mut self);
}

impl<T> Apply for Live<T>
where
    T: DeserializeOwned + Serialize + Default + Send + Sync + 'static,
{
    fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        if let Some(config) = self.layers.apply_kv(key, value)? {
            self.tx.send_replace(Arc::new(config));
        }
        Ok(())
    }

    fn document(&self) -> Value {
        self.layers.document()
    }

    fn reset_kv(&mut self) {
        self.layers.clear_kv();
        if let Ok(config) = self.layers.resolve() {
            self.tx.send_replace(Arc::new(config));
        }
    }
}

#[cfg(test)]
mod tests;
