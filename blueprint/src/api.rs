//! Blueprint's HTTP routes (the handlers are in `registry`, `kv` and `watch`; what they
//! answer with is in `respond`).

use axum::Router;
use axum::routing::{get, post, put};

use crate::blueprint::Blueprint;
use crate::{kv, registry, watch};

/// Blueprint's routes, under `/v1`.
pub fn router(blueprint: Blueprint) -> Router {
    Router::new()
        .route("/v1/services", get(registry::list))
        .route("/v1/services/{service}", get(registry::get))
        .route(
            "/v1/services/{service}/instances/{instance}",
            put(registry::register).delete(registry::deregister),
        )
        .route(
            "/v1/services/{service}/instances/{instance}/heartbeat",
            post(registry::heartbeat),
        )
        .route("/v1/kv", get(kv::list))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route("/v1/watch", get(watch::watch))
        .with_state(blueprint)
}
