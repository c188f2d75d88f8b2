//! The projection's fold, event by event.

use super::*;

fn at(revision: u64, event: ControlEvent) -> Applied {
    Applied {
        revision,
        time_nanos: revision * 10,
        actor: "tester".into(),
        event,
    }
}

fn registered(service: &str, instance: &str, address: &str) -> ControlEvent {
    ControlEvent::Registered {
        service: service.into(),
        instance: instance.into(),
        registration: Registration {
            address: address.into(),
            routes: vec![],
            metadata: BTreeMap::new(),
            ttl_ms: 1000,
        },
    }
}

fn put(key: &str, value: &str) -> ControlEvent {
    ControlEvent::KvPut {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

#[test]
fn registration_expiry_and_deregistration() {
    let mut p = Projection::default();
    p.apply(&at(0, registered("web", "w1", "a:1")));
    p.apply(&at(1, registered("web", "w2", "a:2")));
    assert_eq!(
        p.instance("web", "w1").map(|i| i.health),
        Some(Health::Passing)
    );
    p.apply(&at(
        2,
        ControlEvent::Expired {
            service: "web".into(),
            instance: "w1".into(),
            keeper_term: None,
        },
    ));
    let w1 = p.instance("web", "w1").expect("kept while critical");
    assert_eq!((w1.health, w1.revision), (Health::Critical, 2));
    p.apply(&at(3, registered("web", "w1", "a:9")));
    let w1 = p.instance("web", "w1").expect("re-registered");
    assert_eq!(
        (w1.health, w1.registration.address.as_str()),
        (Health::Passing, "a:9")
    );
    p.apply(&at(
        4,
        ControlEvent::Deregistered {
            service: "web".into(),
            instance: "w1".into(),
        },
    ));
    p.apply(&at(
        5,
        ControlEvent::Deregistered {
            service: "web".into(),
            instance: "w2".into(),
        },
    ));
    assert!(
        p.service("web").is_none(),
        "a service with no instances is gone"
    );
    p.apply(&at(
        6,
        ControlEvent::Expired {
            service: "nope".into(),
            instance: "x".into(),
            keeper_term: None,
        },
    ));
    assert_eq!(p.revision(), Some(6));
}

#[test]
fn routes_are_owned_and_checkpoints_from_before_owners_get_them_back() {
    let mut p = Projection::default();
    let mut web = registered("web", "w1", "a:1");
    if let ControlEvent::Registered { registration, .. } = &mut web {
        registration.routes = vec![crate::wire::Route {
            prefix: "/api/".into(),
            host: None,
            strip_prefix: false,
            timeout_ms: None,
        }];
    }
    p.apply(&at(0, web));
    p.apply(&at(1, put("k", "v")));
    let key = RouteKey {
        host: None,
        prefix: "/api".into(),
    };
    assert_eq!(
        p.route_claims()
            .get(&key)
            .map(|c| (c.owner.as_str(), c.since)),
        Some(("web", 0))
    );
    let mut old = serde_json::to_value(&p).expect("json");
    old.as_object_mut().expect("object").remove("routes");
    let mut old: Projection = serde_json::from_value(old).expect("an old checkpoint");
    assert!(old.route_claims().is_empty());
    old.fill_missing_claims();
    assert_eq!(old, p);
    p.apply(&at(
        2,
        ControlEvent::Deregistered {
            service: "web".into(),
            instance: "w1".into(),
        },
    ));
    assert!(
        p.route_claims().is_empty(),
        "released with the last instance"
    );
}

#[test]
fn kv_revisions_history_and_ranges() {
    let mut p = Projection::default();
    p.apply(&at(0, put("app/a", "1")));
    p.apply(&at(1, put("app/b", "2")));
    p.apply(&at(2, put("app/a", "3")));
    p.apply(&at(3, put("other", "x")));
    let a = p.get("app/a").expect("a");
    assert_eq!((a.value_len, a.revision, a.create_revision), (1, 2, 0));
    p.apply(&at(
        4,
        ControlEvent::KvDeleted {
            key: "app/a".into(),
        },
    ));
    assert!(p.get("app/a").is_none());
    assert_eq!(p.history("app/a"), &[0, 2, 4]);
    p.apply(&at(5, put("app/a", "new")));
    assert_eq!(
        p.get("app/a").map(|v| v.create_revision),
        Some(5),
        "recreated"
    );
    let keys: Vec<_> = p.range("app/", None, 10).map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["app/a", "app/b"]);
    let keys: Vec<_> = p
        .range("app/", Some("app/a"), 10)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, vec!["app/b"]);
    assert_eq!(p.range("", None, 1).count(), 1);
}

#[test]
fn tokens_come_and_go_with_their_events_and_leave_the_registry_alone() {
    let mut p = Projection::default();
    p.apply(&at(0, registered("web", "w1", "a:1")));
    p.apply(&at(
        1,
        ControlEvent::TokenCreated {
            name: "ci".into(),
            secret_sha256: "ab".repeat(32),
            policy: draft_http::auth::Policy::Reader,
            expires_at_nanos: None,
            creator: "admin".into(),
        },
    ));
    assert_eq!(p.registry_revision(), Some(0), "routes need no rebuild");
    let (name, token) = p.tokens().by_digest(&"ab".repeat(32)).expect("found");
    assert_eq!((name, token.revision, token.created_nanos), ("ci", 1, 10));
    let snapshot: Projection =
        serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("back");
    assert_eq!(snapshot, p, "checkpoints keep tokens");
    p.apply(&at(2, ControlEvent::TokenRevoked { name: "ci".into() }));
    assert!(p.tokens().get("ci").is_none());
    assert_eq!(p.revision(), Some(2));
}

#[test]
fn replaying_applied_events_changes_nothing_and_order_matters() {
    let events: Vec<Applied> = (0..20)
        .map(|i| {
            at(
                i,
                if i % 3 == 0 {
                    put("k", &i.to_string())
                } else {
                    registered("s", &format!("i{}", i % 4), "a")
                },
            )
        })
        .collect();
    let mut once = Projection::default();
    for e in &events {
        once.apply(e);
    }
    let mut twice = once.clone();
    for e in &events {
        twice.apply(e);
    }
    assert_eq!(once, twice, "idempotent");
    let snapshot: Projection =
        serde_json::from_str(&serde_json::to_string(&once).expect("json")).expect("back");
    assert_eq!(snapshot, once, "checkpoints round trip");
    assert_eq!(
        once.get("k").map(|v| (v.revision, v.value_len)),
        Some((18, 2)),
        "last write wins"
    );
}

#[test]
fn the_projection_keeps_lengths_not_values() {
    let mut p = Projection::default();
    let big = "v".repeat(64 * 1024);
    for i in 0..100 {
        p.apply(&at(i, put(&format!("k{}", i % 10), &big)));
    }
    p.apply(&at(100, put("small", "12345")));
    assert_eq!(p.kv_len(), 11);
    assert_eq!(p.kv_bytes(), 10 * (2 + 64 * 1024) + 5 + 5);
    let k3 = p.get("k3").expect("k3");
    assert_eq!(
        (k3.revision, k3.value_len, k3.create_revision),
        (93, 65_536, 3)
    );
    assert_eq!(p.history("k3"), &[3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
    // A checkpoint holds no value: 6.4 MiB were put, and it is a few kilobytes.
    let saved = serde_json::to_string(&p).expect("json");
    assert!(saved.len() < 8 * 1024, "{} bytes", saved.len());
    assert!(!saved.contains("vvvv"), "no value bytes in a checkpoint");
    let back: Projection = serde_json::from_str(&saved).expect("back");
    assert_eq!(back, p, "lengths and the byte count come back");
}

#[test]
fn checkpoints_written_with_values_still_load() {
    let mut p = Projection::default();
    p.apply(&at(0, put("app/a", "hello")));
    p.apply(&at(1, put("app/b", "hi")));
    // As checkpoints were written while the projection held values.
    let mut old = serde_json::to_value(&p).expect("json");
    for (value, text) in [("aGVsbG8=", "app/a"), ("aGk=", "app/b")] {
        let entry = &mut old["kv"][text];
        entry.as_object_mut().expect("entry").remove("value_len");
        entry["value"] = value.into();
    }
    let loaded: Projection = serde_json::from_value(old).expect("an old checkpoint");
    assert_eq!(loaded, p);
    assert_eq!(loaded.kv_bytes(), 5 + 5 + 5 + 2, "counted from the lengths");
}
