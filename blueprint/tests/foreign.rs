//! Control events of other parts of the node in `_draft`: recorded through Blueprint (the
//! consumer groups' `io.draft.group.*`), appended behind its back, or of a type it has never
//! heard of. Blueprint passes over them at open and in history and keeps its revisions dense;
//! its registry and KV store change only by its own kinds of events (one appended behind its
//! writer is applied before the writer's next change).

mod common;

use common::{call, open, open_in};
use draft_blueprint::{Condition, ControlEvent, Key, Outcome, Revision, WriteError};
use draft_log::{NewRecord, PartitionName};

fn key(k: &str) -> Key {
    Key::parse(k).expect("key")
}

async fn put(bp: &draft_blueprint::Blueprint, value: &str) -> u64 {
    match bp
        .put(
            &key("app/db"),
            value.as_bytes().to_vec(),
            Condition::None,
            "t",
        )
        .await
        .expect("put")
    {
        Outcome::Appended(revision) => revision.get(),
        Outcome::Unchanged => panic!("a put appends"),
    }
}

/// A control event appended straight to the log, as another writer would.
fn raw(ty: &str, data: &serde_json::Value) -> NewRecord {
    let json = serde_json::json!({
        "specversion": "1.0", "id": ty, "source": "/draft/other", "type": ty,
        "draftactor": "someone", "data": data
    });
    NewRecord::new(json.to_string()).with_key(draft_log::event_key(ty, "/draft/other", ty))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_parts_and_unknown_events_are_passed_over_and_no_revision_is_skipped() {
    // A checkpoint every 2 events: reopening reads a checkpoint, then replays the tail.
    let h = open(2).await;
    let bp = &h.blueprint;
    assert_eq!(put(bp, "v1").await, 0);
    let data = serde_json::json!({"channel": "orders", "group": "billing"});
    let created = bp
        .record("io.draft.group.created", data, "alice")
        .await
        .expect("recorded");
    assert_eq!(created, Revision::new(1));
    // Appended behind Blueprint's writer: one it expects, one from a newer node, and a
    // change of its own kind.
    let control = PartitionName::new("_draft").expect("control");
    let anything = serde_json::json!({"anything": [1, 2, 3]});
    let other_key = serde_json::json!({"key": "app/other", "value_base64": "eA"});
    h.log
        .append(
            &control,
            vec![
                raw("io.draft.group.deleted", &anything),
                raw("io.draft.future.thing", &anything),
                raw("io.draft.kv.put", &other_key),
            ],
        )
        .await
        .expect("append");
    assert_eq!(put(bp, "v2").await, 5, "revisions stay the log's offsets");
    assert_eq!(bp.revision(), Some(Revision::new(5)), "no revision skipped");
    let before = bp.read(Clone::clone);
    assert_eq!(
        before.registry_revision(),
        None,
        "the registry never changed"
    );
    let other = before
        .get("app/other")
        .expect("applied before Blueprint's own write");
    let value = bp.value("app/other", other).await.expect("value");
    assert_eq!((&value[..], other.revision), (&b"x"[..], 4));

    // History lists the key's changes only, and reads between them see the old value.
    let history = call(&h, "GET", "/v1/kv/app/db/history", &[], "")
        .await
        .json();
    let revisions: Vec<u64> = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["revision"].as_u64().expect("revision"))
        .collect();
    assert_eq!(revisions, vec![0, 5]);
    let at = call(&h, "GET", "/v1/kv/app/db?at=3", &[], "").await;
    assert_eq!(at.status.as_u16(), 200);
    assert_eq!(at.revision, Some(3));

    // Reopened: the replay passes over them and rebuilds the same state.
    let common::Harness {
        dir,
        log,
        blueprint,
    } = h;
    drop(blueprint);
    drop(log);
    let h = open_in(dir, 2).await;
    assert_eq!(h.blueprint.read(Clone::clone), before);
    assert_eq!(put(&h.blueprint, "v3").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_carry_their_actor_and_only_foreign_types_are_recorded() {
    let h = open(100).await;
    let data = serde_json::json!({"channel": "orders", "group": "billing"});
    let revision = h
        .blueprint
        .record("io.draft.group.created", data.clone(), "alice")
        .await
        .expect("recorded");
    let control = PartitionName::new("_draft").expect("control");
    let records = h.log.read(&control, revision.offset(), 1).expect("read");
    let (event, actor) = ControlEvent::from_cloudevent(&records[0].payload).expect("decodes");
    assert_eq!(actor, "alice");
    assert_eq!(
        event,
        ControlEvent::Other {
            ty: "io.draft.group.created".into(),
            data
        }
    );
    let stored: serde_json::Value = serde_json::from_slice(&records[0].payload).expect("json");
    assert_eq!(stored["source"], "/draft/test", "the node's own source");
    for ty in [
        "io.draft.kv.put",
        "io.draft.kv.renamed",
        "io.draft.instance.registered",
        "io.draft.",
        "com.example.created",
    ] {
        let refused = h
            .blueprint
            .record(ty, serde_json::Value::Null, "t")
            .await
            .expect_err(ty);
        assert!(matches!(refused, WriteError::NotRecorded(_)), "{ty}");
    }
    assert_eq!(
        h.blueprint.revision(),
        Some(revision),
        "nothing more was appended"
    );
}
