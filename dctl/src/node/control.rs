//! Catalyst's control events go through Blueprint's writer: the one writer of `_draft`, so
//! every revision is one Blueprint's projection has seen.

use draft_blueprint::Blueprint;
use draft_catalyst::ControlLog;
use futures::future::BoxFuture;

/// [`ControlLog`] on [`Blueprint::record`].
pub(super) struct ThroughBlueprint(pub(super) Blueprint);

impl ControlLog for ThroughBlueprint {
    fn record<'a>(
        &'a self,
        ty: &'static str,
        data: serde_json::Value,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            self.0
                .record(ty, data, actor)
                .await
                .map(draft_blueprint::Revision::get)
                .map_err(|e| e.to_string())
        })
    }
}
