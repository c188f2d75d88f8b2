//! Blueprint's HTTP routes (the handlers are in `registry`, `kv`, `watch` and `token_api`;
//! what they answer with is in `respond`).

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::blueprint::Blueprint;
use crate::{kv, registry, token_api, watch};

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
        .route("/v1/tokens", get(token_api::list).post(token_api::create))
        .route("/v1/tokens/{name}", delete(token_api::revoke))
        .with_state(blueprint)
}
