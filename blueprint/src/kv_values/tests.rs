//! The value reader: the record at a key's revision must be that key's put.

use bytes::Bytes;
use draft_log::{Log, LogConfig, NewRecord, Timestamp};

use super::*;

fn stored(event: &ControlEvent) -> Bytes {
    Bytes::from(
        event
            .to_cloudevent("id", "n", "tester", "2026-01-01T00:00:00Z")
            .to_string(),
    )
}

fn record(offset: u64, payload: Bytes) -> Record {
    Record {
        partition: PartitionName::new("_draft").expect("name"),
        offset: Offset(offset),
        time: Timestamp::from_unix_nanos(0),
        key: None,
        payload,
    }
}

fn put(key: &str, value: &[u8]) -> ControlEvent {
    ControlEvent::KvPut {
        key: key.into(),
        value: value.to_vec(),
    }
}

fn meta(revision: u64, value_len: u64) -> KvMeta {
    KvMeta {
        revision,
        create_revision: 0,
        time_nanos: 0,
        actor: "tester".into(),
        value_len,
    }
}

#[test]
fn the_put_at_the_revision_gives_its_value() {
    let r = record(4, stored(&put("app/a", b"hello")));
    let value = value_of("app/a", &meta(4, 5), Some(&r)).expect("the put");
    assert_eq!(value, b"hello");
    // A key with characters JSON escapes is read back as well.
    let r = record(4, stored(&put("app/\"q\"", b"hi")));
    let value = value_of("app/\"q\"", &meta(4, 2), Some(&r)).expect("the put");
    assert_eq!(value, b"hi");
}

#[test]
fn any_other_record_is_refused_never_returned() {
    let mismatch = |key: &str, m: &KvMeta, r: &Record| match value_of(key, m, Some(r)) {
        Err(ValueError::Mismatch { found, .. }) => found,
        other => panic!("not a mismatch: {other:?}"),
    };
    let other_key = record(4, stored(&put("app/b", b"hello")));
    assert_eq!(
        mismatch("app/a", &meta(4, 5), &other_key),
        "a put of key \"app/b\""
    );
    let other_len = record(4, stored(&put("app/a", b"hell")));
    assert_eq!(
        mismatch("app/a", &meta(4, 5), &other_len),
        "a put of 4 bytes, not 5"
    );
    let deleted = record(
        4,
        stored(&ControlEvent::KvDeleted {
            key: "app/a".into(),
        }),
    );
    assert_eq!(
        mismatch("app/a", &meta(4, 5), &deleted),
        "a delete of the key"
    );
    let registered = record(
        4,
        stored(&ControlEvent::Expired {
            service: "s".into(),
            instance: "i".into(),
            keeper_term: None,
        }),
    );
    assert_eq!(
        mismatch("app/a", &meta(4, 5), &registered),
        "an io.draft.instance.expired event"
    );
    let garbage = record(4, Bytes::from_static(b"{\"not\": \"an event\"}"));
    assert!(
        mismatch("app/a", &meta(4, 5), &garbage).starts_with("a record that is not a control"),
        "garbage"
    );
    // A record read from past a trimmed start is at another offset: the put is missing.
    let later = record(9, stored(&put("app/a", b"hello")));
    assert!(matches!(
        value_of("app/a", &meta(4, 5), Some(&later)),
        Err(ValueError::Missing { revision: 4, .. })
    ));
    assert!(matches!(
        value_of("app/a", &meta(4, 5), None),
        Err(ValueError::Missing { .. })
    ));
}

#[test]
fn history_shows_puts_and_deletes_of_the_key_only() {
    let r = record(4, stored(&put("app/a", b"hi")));
    let change = history_change("app/a", 4, Some(&r)).expect("a put");
    assert_eq!(
        (
            change.op.as_str(),
            change.value_base64.as_deref(),
            change.actor.as_str()
        ),
        ("put", Some("aGk="), "tester")
    );
    let r = record(
        5,
        stored(&ControlEvent::KvDeleted {
            key: "app/a".into(),
        }),
    );
    let change = history_change("app/a", 5, Some(&r)).expect("a delete");
    assert_eq!((change.op.as_str(), change.value_base64), ("delete", None));
    let r = record(
        5,
        stored(&ControlEvent::KvDeleted {
            key: "app/b".into(),
        }),
    );
    assert!(matches!(
        history_change("app/a", 5, Some(&r)),
        Err(ValueError::Mismatch { .. })
    ));
    assert!(matches!(
        history_change("app/a", 4, Some(&r)),
        Err(ValueError::Missing { revision: 4, .. })
    ));
}

#[tokio::test]
async fn values_are_read_from_the_log_by_revision() {
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(LogConfig::new(dir.path())).expect("log");
    let control = PartitionName::new("_draft").expect("name");
    let events = [
        put("a", b"one"),
        put("b", b"two"),
        ControlEvent::KvDeleted { key: "b".into() },
    ];
    let records = events.iter().map(|e| NewRecord::new(stored(e))).collect();
    LogBackend::append(&log, &control, records)
        .await
        .expect("append");
    let cache = ValueCache::new(1024);
    let reader = ValueReader {
        log: &log,
        control: &control,
        cache: &cache,
    };
    assert_eq!(
        reader.scan_value("a", &meta(0, 3)).await.expect("a"),
        &b"one"[..]
    );
    let listed = reader.scan_value("b", &meta(1, 3)).await.expect("b");
    assert_eq!(listed, &b"two"[..]);
    assert!(cache.get(1, "b").is_none(), "a list leaves the cache alone");
    assert_eq!(
        reader.value("b", &meta(1, 3)).await.expect("b"),
        &b"two"[..]
    );
    assert_eq!(
        cache.get(1, "b").as_deref(),
        Some(&b"two"[..]),
        "one key's read is kept"
    );
    let e = reader.value("b", &meta(2, 3)).await.expect_err("a delete");
    assert!(matches!(e, ValueError::Mismatch { revision: 2, .. }), "{e}");
    let change = reader.change("b", 2).await.expect("the delete");
    assert_eq!(change.op, "delete");
    let e = reader
        .value("a", &meta(7, 3))
        .await
        .expect_err("past the head");
    assert_eq!(
        e.to_string(),
        "the control log no longer holds revision 7, the put of key \"a\": its value is lost"
    );
}
