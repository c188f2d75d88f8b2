//! `GET /v1/routes[?at=][&min_revision=]`: the derived table, now or as of a revision or
//! time, once this node has applied `min_revision`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draft_blueprint::{Blueprint, min_revision, open_error, resolve_at};
use draft_http::{ApiError, Query};

use crate::table::RouteTable;

/// Fuse's API routes.
pub fn router(blueprint: Blueprint) -> Router {
    Router::new()
        .route("/v1/routes", get(routes))
        .with_state(blueprint)
}

async fn routes(
    State(bp): State<Blueprint>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["at", "min_revision"])?;
    min_revision(&bp, &q).await?;
    let table = match q.at()? {
        None => bp.read(RouteTable::build),
        Some(at) => {
            let revision = resolve_at(&bp, at).await?;
            let state = bp.state_at(revision).await.map_err(|e| open_error(&e))?;
            RouteTable::build(&state)
        }
    };
    Ok(axum::Json(table).into_response())
}
