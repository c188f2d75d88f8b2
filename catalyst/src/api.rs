//! Catalyst's HTTP routes.

use axum::Router;
use axum::routing::{get, post};

use crate::broker::Catalyst;
use crate::channel;
use crate::consume::consume;
use crate::group_api;
use crate::produce::produce;
use crate::produce_socket::produce_socket;

/// Catalyst's routes, under `/v1`.
pub fn router(state: Catalyst) -> Router {
    Router::new()
        .route("/v1/channels", get(channel::list))
        .route(
            "/v1/channels/{channel}",
            get(channel::get).put(channel::configure),
        )
        .route(
            "/v1/channels/{channel}/events",
            post(produce).get(channel::events),
        )
        .route("/v1/channels/{channel}/produce", get(produce_socket))
        .route("/v1/channels/{channel}/consume", get(consume))
        .route("/v1/groups", get(group_api::list_all))
        .route("/v1/channels/{channel}/groups", get(group_api::list))
        .route(
            "/v1/channels/{channel}/groups/{group}",
            get(group_api::get).delete(group_api::delete),
        )
        .with_state(state)
}
