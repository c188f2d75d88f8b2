//! The lock's bucket: creating or binding it, and telling a refused conditional write from
//! one no server answered.

use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::time::Instant;
use tracing::warn;

use super::KEEPER_BUCKET;
use crate::error::{Error, Result};

/// The largest entry the bucket takes: a claim is a node name and a term in JSON.
const MAX_VALUE: i32 = 1024;
/// How long binding waits for JetStream to be ready (a cluster that has just started elects
/// its meta leader first, and answers 503 until then), and then for a new bucket to elect its
/// leader: as long as the backend's own calls retry, so that one election and a second round
/// fit.
const BIND_DEADLINE: Duration = Duration::from_secs(20);

/// Whether a conditional write was refused because the key is not at the expected revision
/// (or, in a cluster, another write to it was in flight: error 10164), as opposed to failed.
pub(super) fn refused(e: &kv::UpdateError) -> bool {
    use async_nats::jetstream::ErrorCode;
    if e.kind() == kv::UpdateErrorKind::WrongLastRevision {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(api) = cause.downcast_ref::<async_nats::jetstream::Error>() {
            return matches!(
                api.error_code(),
                ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                    | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            );
        }
        source = cause.source();
    }
    false
}

/// `write()` retried while no server answers it (a new bucket's interest still crossing the
/// cluster's routes, an election): nothing was stored then. The caller bounds it in time.
pub(super) async fn unanswered_retried<T, F: Future<Output = Result<T, kv::UpdateError>>>(
    mut write: impl FnMut() -> F,
) -> Result<T, kv::UpdateError> {
    let mut pause = Duration::from_millis(10);
    loop {
        match write().await {
            Err(e) if unanswered(&e) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            done => return done,
        }
    }
}

/// Whether a write found no responders or a JetStream that is not ready (503).
fn unanswered(e: &kv::UpdateError) -> bool {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(publish) = cause.downcast_ref::<PublishError>()
            && publish.kind() == PublishErrorKind::StreamNotFound
        {
            return true;
        }
        if let Some(api) = cause.downcast_ref::<async_nats::jetstream::Error>() {
            return api.code() == 503;
        }
        source = cause.source();
    }
    false
}

/// Whether creating or binding the bucket failed because JetStream is not ready yet, as
/// opposed to refusing the bucket: a server answered 503 (a cluster still electing its meta
/// leader: error 10008), or nothing answered at all (the request timed out, or found no
/// responders). Only an answer with another code is a refusal.
fn not_ready(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(api) = c.downcast_ref::<async_nats::jetstream::Error>() {
            return api.code() == 503;
        }
        cause = c.source();
    }
    true
}

/// Waits until the bucket's stream has a leader (a new one elects it just after it is made;
/// until then writes find no stream).
async fn wait_for_leader(store: &kv::Store) -> Result<()> {
    let deadline = Instant::now() + BIND_DEADLINE;
    loop {
        let info = store.stream.get_info().await;
        // No cluster info: a single server, nothing to elect.
        if let Ok(info) = &info
            && info.cluster.as_ref().is_none_or(|c| c.leader.is_some())
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Coordination {
                op: "wait for a leader",
                target: KEEPER_BUCKET.into(),
                reason: match info {
                    Ok(_) => format!("none elected within {BIND_DEADLINE:?}"),
                    Err(e) => e.to_string(),
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lock's bucket: created if missing, else bound and checked.
pub(super) async fn bind(
    context: async_nats::jetstream::Context,
    replicas: usize,
    ttl: Duration,
) -> Result<kv::Store> {
    let config = kv::Config {
        bucket: KEEPER_BUCKET.into(),
        description: "Draft's lease keeper lock".into(),
        history: 1,
        max_age: ttl,
        max_value_size: MAX_VALUE,
        num_replicas: replicas,
        ..kv::Config::default()
    };
    // An identical create is answered with the existing bucket, so nodes racing with the
    // same settings all succeed; one made with another TTL is refused and bound instead. A
    // node started beside a cluster that is still starting waits for it.
    let deadline = Instant::now() + BIND_DEADLINE;
    let store = loop {
        let create = match context.create_key_value(config.clone()).await {
            Ok(store) => break store,
            Err(create) => create,
        };
        let bind = match context.get_key_value(KEEPER_BUCKET).await {
            Ok(store) => break store,
            Err(bind) => bind,
        };
        let waiting = not_ready(&create) && not_ready(&bind);
        if !waiting || Instant::now() >= deadline {
            return Err(Error::Coordination {
                op: "create or bind",
                target: KEEPER_BUCKET.into(),
                reason: format!("create: {create}; bind: {bind}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let max_age = store.stream.cached_info().config.max_age;
    if max_age.is_zero() || max_age < ttl {
        return Err(Error::Misconfigured {
            what: format!("bucket {KEEPER_BUCKET}"),
            reason: format!(
                "its entries expire after {max_age:?} (zero: never), this node's TTL is {ttl:?}"
            ),
        });
    }
    wait_for_leader(&store).await?;
    if max_age > ttl {
        warn!(
            bucket = KEEPER_BUCKET,
            ?max_age,
            ?ttl,
            "keeper bucket has a longer TTL: takeovers wait for it"
        );
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};

    use super::*;

    fn api_error(code: u16, err_code: u64) -> kv::UpdateError {
        let api: async_nats::jetstream::Error = serde_json::from_value(serde_json::json!({
            "code": code, "err_code": err_code, "description": "from the server"
        }))
        .expect("an API error");
        kv::UpdateError::from(PublishError::with_source(PublishErrorKind::Other, api))
    }

    #[test]
    fn conditional_writes_lost_to_another_writer_are_refusals_not_failures() {
        assert!(refused(&api_error(400, 10071)));
        // Clustered streams refuse a write while another to the same key is in flight.
        assert!(refused(&api_error(400, 10164)));
        assert!(!refused(&api_error(500, 10001)));
        let timeout = kv::UpdateError::from(PublishError::new(PublishErrorKind::TimedOut));
        assert!(!refused(&timeout) && !unanswered(&timeout));
    }

    #[test]
    fn no_responders_and_503_are_retried_other_errors_are_not() {
        let no_responders =
            kv::UpdateError::from(PublishError::new(PublishErrorKind::StreamNotFound));
        assert!(unanswered(&no_responders));
        assert!(unanswered(&api_error(503, 10008)));
        assert!(!unanswered(&api_error(400, 10071)));
    }

    #[test]
    fn a_jetstream_still_starting_is_waited_for_a_refused_bucket_is_not() {
        use async_nats::jetstream::context::{CreateKeyValueError, CreateKeyValueErrorKind};
        let api = |code: u16, err_code: u64| -> async_nats::jetstream::Error {
            serde_json::from_value(serde_json::json!({
                "code": code, "err_code": err_code, "description": "from the server"
            }))
            .expect("an API error")
        };
        let starting =
            CreateKeyValueError::with_source(CreateKeyValueErrorKind::JetStream, api(503, 10008));
        assert!(not_ready(&starting));
        let unanswered = CreateKeyValueError::new(CreateKeyValueErrorKind::TimedOut);
        assert!(not_ready(&unanswered));
        let refused =
            CreateKeyValueError::with_source(CreateKeyValueErrorKind::JetStream, api(400, 10058));
        assert!(!not_ready(&refused), "a bucket refused is not waited for");
        assert!(not_ready(&api_error(503, 10008)));
    }
}
