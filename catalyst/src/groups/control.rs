//! [`ControlLog`]: where Catalyst records its control events (a consumer group created or
//! deleted) for the audit trail.

use draft_http::ApiError;
use futures::future::BoxFuture;

/// Appends Catalyst's control events to the control partition `_draft`, in order with the
/// registry's own writes. The node hands Catalyst one backed by Blueprint's writer
/// (`Blueprint::record`): `_draft`'s revisions are Blueprint's projection's, so nothing else
/// may append to it behind Blueprint's back.
pub trait ControlLog: Send + Sync + 'static {
    /// Appends an event of type `ty` (an `io.draft.*` type that is not the registry's) with
    /// `data`, made by `actor`; resolves once it is durable, with its revision.
    ///
    /// # Errors
    /// Why it could not be recorded, as the client is to be answered: 503 `storage_failed`
    /// once the node is read-only, otherwise a 500 whose detail goes to the node's log.
    fn record<'a>(
        &'a self,
        ty: &'static str,
        data: serde_json::Value,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<u64, ApiError>>;
}
