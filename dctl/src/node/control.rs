//! Catalyst's control events go through Blueprint's writer: the one writer of `_draft`, so
//! every revision is one Blueprint's projection has seen.

use draft_blueprint::{Blueprint, WriteError};
use draft_catalyst::ControlLog;
use draft_http::{ApiError, Code};
use futures::future::BoxFuture;

/// [`ControlLog`] on [`Blueprint::record`].
pub(super) struct ThroughBlueprint(pub(super) Blueprint);

impl ControlLog for ThroughBlueprint {
    fn record<'a>(
        &'a self,
        ty: &'static str,
        data: serde_json::Value,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<u64, ApiError>> {
        Box::pin(async move {
            self.0
                .record(ty, data, actor)
                .await
                .map(draft_blueprint::Revision::get)
                .map_err(|e| match e {
                    WriteError::Log(e) => draft_blueprint::log_error(&e),
                    other => ApiError::internal(
                        Code::Internal,
                        "the node could not record the event; see its log",
                        other,
                    ),
                })
        })
    }
}
