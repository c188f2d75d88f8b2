use super::*;
use crate::event::Applied;

fn request(op: Op) -> WriteRequest {
    let (reply, _) = oneshot::channel();
    WriteRequest {
        op,
        actor: "a".into(),
        reply,
    }
}

fn key(key: &str) -> Key {
    Key::parse(key).expect("key")
}

fn put(key: &str, condition: Condition) -> Op {
    Op::Put {
        key: self::key(key),
        value: b"v".to_vec(),
        condition,
    }
}

#[test]
fn compare_and_set_sees_earlier_writes_of_the_same_group() {
    let mut state = Projection::default();
    state.apply(&Applied {
        revision: 4,
        time_nanos: 0,
        actor: "a".into(),
        event: ControlEvent::KvPut {
            key: "k".into(),
            value: vec![],
        },
    });
    let group = decide_group(
        &state,
        5,
        vec![
            request(put("k", Condition::IfMatch(4))), // ok -> revision 5
            request(put("k", Condition::IfMatch(4))), // stale now
            request(put("k", Condition::IfMatch(5))), // sees the first
            request(put("new", Condition::IfAbsent)),
            request(put("new", Condition::IfAbsent)), // exists now
            request(Op::Delete {
                key: key("gone"),
                condition: Condition::None,
            }),
        ],
        |_| true,
        KvLimits::NONE,
    );
    let shape: Vec<String> = group.decisions.iter().map(|d| format!("{d:?}")).collect();
    assert_eq!(group.events.len(), 3, "{shape:?}");
    assert!(matches!(group.decisions[0], Ok(Some(0))));
    assert!(matches!(
        group.decisions[1],
        Err(WriteError::PreconditionFailed { current: Some(5) })
    ));
    assert!(matches!(group.decisions[2], Ok(Some(1))));
    assert!(matches!(
        group.decisions[4],
        Err(WriteError::PreconditionFailed { current: Some(_) })
    ));
    assert!(matches!(group.decisions[5], Err(WriteError::NotFound)));
}

#[test]
fn same_registration_appends_nothing_and_expiry_needs_a_passing_instance() {
    let registration = Registration {
        address: "a:1".into(),
        routes: vec![],
        metadata: std::collections::BTreeMap::default(),
        ttl_ms: 100,
    };
    let service = ServiceName::parse("s").expect("service");
    let instance = InstanceId::parse("i").expect("instance");
    let reg = || Op::Register {
        service: service.clone(),
        instance: instance.clone(),
        registration: registration.clone(),
        take_over: TakeOver::Nothing,
    };
    let expire = || Op::Expire {
        service: service.clone(),
        instance: instance.clone(),
        term: None,
    };
    let group = decide_group(
        &Projection::default(),
        0,
        vec![
            request(reg()),
            request(reg()),
            request(expire()),
            request(expire()),
            request(reg()),
        ],
        |_| true,
        KvLimits::NONE,
    );
    let kinds: Vec<_> = group.events.iter().map(|(e, _)| e.ty()).collect();
    assert_eq!(
        kinds,
        vec![
            "io.draft.instance.registered",
            "io.draft.instance.expired",
            "io.draft.instance.registered"
        ]
    );
    assert!(
        matches!(group.decisions[1], Ok(None)),
        "same body: unchanged"
    );
    assert!(matches!(group.decisions[3], Ok(None)), "already critical");
}

mod ownership {
    use super::*;
    use crate::wire::Route;
    use proptest::prelude::*;

    fn registration(routes: &[(Option<&str>, &str)]) -> Registration {
        Registration {
            address: "127.0.0.1:9000".into(),
            routes: routes
                .iter()
                .map(|(host, prefix)| Route {
                    prefix: (*prefix).into(),
                    host: host.map(Into::into),
                    strip_prefix: false,
                    timeout_ms: None,
                })
                .collect(),
            metadata: std::collections::BTreeMap::default(),
            ttl_ms: 1000,
        }
    }

    fn register(service: &str, instance: &str, routes: &[(Option<&str>, &str)]) -> Op {
        Op::Register {
            service: ServiceName::parse(service).expect("service"),
            instance: InstanceId::parse(instance).expect("instance"),
            registration: registration(routes),
            take_over: TakeOver::Nothing,
        }
    }

    fn deregister(service: &str, instance: &str) -> Op {
        Op::Deregister {
            service: ServiceName::parse(service).expect("service"),
            instance: InstanceId::parse(instance).expect("instance"),
        }
    }

    fn expire(service: &str, instance: &str) -> Op {
        Op::Expire {
            service: ServiceName::parse(service).expect("service"),
            instance: InstanceId::parse(instance).expect("instance"),
            term: None,
        }
    }

    /// What a decision says, in words a test compares.
    fn said(decision: &Result<Option<usize>, WriteError>) -> String {
        match decision {
            Ok(Some(_)) => "appended".into(),
            Ok(None) => "unchanged".into(),
            Err(WriteError::RouteOwned { route, owner }) => format!("{route} owned by {owner}"),
            Err(e) => e.to_string(),
        }
    }

    /// Decides `ops` in groups of the sizes `chunks` gives (cycled), applying each group's
    /// events to `state` as the writer does; returns every decision.
    fn run(state: &mut Projection, ops: Vec<Op>, chunks: &[usize]) -> Vec<String> {
        let mut said_all = Vec::new();
        let mut ops = ops.into_iter().peekable();
        for size in chunks.iter().cycle() {
            if ops.peek().is_none() {
                break;
            }
            let group: Vec<_> = ops.by_ref().take((*size).max(1)).map(request).collect();
            let next = state.revision().map_or(0, |r| r + 1);
            let decided = decide_group(state, next, group, |_| true, KvLimits::NONE);
            for (i, (event, actor)) in decided.events.into_iter().enumerate() {
                state.apply(&Applied {
                    revision: next + i as u64,
                    time_nanos: 0,
                    actor,
                    event,
                });
            }
            said_all.extend(decided.decisions.iter().map(said));
        }
        said_all
    }

    #[test]
    fn a_second_service_is_refused_a_route_until_the_owner_lets_go_in_one_group() {
        let mut state = Projection::default();
        let said = run(
            &mut state,
            vec![
                register("web", "w1", &[(None, "/api")]),
                register("evil", "e1", &[(None, "/api/")]),
                register("web", "w2", &[(None, "/api")]),
                deregister("web", "w1"),
                register("evil", "e1", &[(None, "/api")]),
                deregister("web", "w2"),
                register("evil", "e1", &[(None, "/api")]),
                register("web", "w1", &[(None, "/api")]),
            ],
            &[100],
        );
        assert_eq!(
            said,
            vec![
                "appended",
                "/api (any host) owned by web",
                "appended",
                "appended",
                "/api (any host) owned by web",
                "appended",
                "appended",
                "/api (any host) owned by evil",
            ]
        );
        let claim = state
            .route_claims()
            .get(&RouteKey {
                host: None,
                prefix: "/api".into(),
            })
            .expect("claimed");
        assert_eq!((claim.owner.as_str(), claim.since), ("evil", 4));
    }

    #[test]
    fn hosts_are_compared_normalized_and_a_lapsed_lease_still_holds_the_route() {
        let mut state = Projection::default();
        let said = run(
            &mut state,
            vec![
                register("shop", "s1", &[(Some("shop.example"), "/")]),
                expire("shop", "s1"),
                register("evil", "e1", &[(Some("SHOP.example.:443"), "/")]),
                register("evil", "e1", &[(None, "/")]),
                register(
                    "shop",
                    "s1",
                    &[(Some("shop.example"), "/"), (None, "/shop")],
                ),
                register("evil", "e2", &[(None, "/shop/")]),
            ],
            &[1, 3],
        );
        assert_eq!(
            said,
            vec![
                "appended",
                "appended",
                "shop.example/ owned by shop",
                "appended",
                "appended",
                "/shop (any host) owned by shop",
            ]
        );
        assert_eq!(
            state.instance("shop", "s1").map(|i| i.health),
            Some(Health::Passing)
        );
    }

    fn taking(op: Op, rights: TakeOver) -> Op {
        match op {
            Op::Register {
                service,
                instance,
                registration,
                ..
            } => Op::Register {
                service,
                instance,
                registration,
                take_over: rights,
            },
            other => other,
        }
    }

    #[test]
    fn a_token_that_names_the_route_takes_it_and_the_old_owner_cannot_take_it_back() {
        let named = |routes: &[&str]| {
            TakeOver::Named(routes.iter().map(|p| RouteKey::new(None, p)).collect())
        };
        let mut state = Projection::default();
        let said = run(
            &mut state,
            vec![
                register("orders", "o1", &[(None, "/orders"), (None, "/stock")]),
                // Rights for another route take nothing.
                taking(
                    register("v2", "n1", &[(None, "/orders")]),
                    named(&["/stock"]),
                ),
                // Rights for this route take it; the other is still the old owner's.
                taking(
                    register("v2", "n1", &[(None, "/orders/")]),
                    named(&["/orders"]),
                ),
                register("orders", "o2", &[(None, "/orders")]),
                taking(
                    register("orders", "o1", &[(None, "/stock")]),
                    TakeOver::Nothing,
                ),
                // An admin takes anything.
                taking(register("ops", "x1", &[(None, "/stock")]), TakeOver::Any),
            ],
            &[1, 2],
        );
        assert_eq!(
            said,
            vec![
                "appended",
                "/orders (any host) owned by orders",
                "appended",
                "/orders (any host) owned by v2",
                "appended",
                "appended",
            ]
        );
        let owner = |prefix: &str| {
            state
                .route_claims()
                .get(&RouteKey {
                    host: None,
                    prefix: prefix.into(),
                })
                .map(|c| c.owner.clone())
        };
        assert_eq!(owner("/orders").as_deref(), Some("v2"));
        assert_eq!(owner("/stock").as_deref(), Some("ops"));
    }

    fn op() -> impl Strategy<Value = Op> {
        let service = prop::sample::select(vec!["a", "b", "c"]);
        let instance = prop::sample::select(vec!["1", "2"]);
        let routes = prop::sample::subsequence(vec!["/x", "/y", "/x/"], 0..=2);
        prop_oneof![
            3 => (service.clone(), instance.clone(), routes).prop_map(|(s, i, r)| {
                let routes: Vec<_> = r.into_iter().map(|p| (None, p)).collect();
                register(s, i, &routes)
            }),
            1 => (service.clone(), instance.clone()).prop_map(|(s, i)| deregister(s, i)),
            1 => (service, instance).prop_map(|(s, i)| expire(s, i)),
        ]
    }

    proptest! {
        /// Exact under concurrency: the writer decides the same whether writes arrive one at
        /// a time or queued together in groups of any size, and no route ever has instances
        /// of two services.
        #[test]
        fn grouping_changes_no_decision_and_a_route_has_one_service(
            ops in prop::collection::vec(op(), 1..40),
            chunks in prop::collection::vec(1usize..8, 1..6),
        ) {
            let mut alone = Projection::default();
            let one_by_one = run(&mut alone, ops.clone(), &[1]);
            let mut grouped = Projection::default();
            let in_groups = run(&mut grouped, ops, &chunks);
            prop_assert_eq!(&one_by_one, &in_groups);
            prop_assert_eq!(&alone, &grouped);
            for (route, claim) in grouped.route_claims().iter() {
                let services: Vec<_> = claim.claimants.keys().collect();
                prop_assert_eq!(services, vec![&claim.owner], "{}", route);
            }
            // The claims are exactly the routes the registry's instances list.
            let mut listed = std::collections::BTreeMap::new();
            for (service, instance, i) in grouped.instances() {
                for key in RouteKey::all(&i.registration) {
                    listed.entry(key).or_insert_with(std::collections::BTreeSet::new)
                        .insert((service.clone(), instance.clone()));
                }
            }
            let claimed: std::collections::BTreeMap<_, _> = grouped
                .route_claims()
                .iter()
                .map(|(k, c)| {
                    let who = c.claimants.iter()
                        .flat_map(|(s, is)| is.iter().map(move |i| (s.clone(), i.clone())))
                        .collect::<std::collections::BTreeSet<_>>();
                    (k.clone(), who)
                })
                .collect();
            prop_assert_eq!(listed, claimed);
        }
    }
}

#[test]
fn kv_limits_count_the_projection_and_the_groups_earlier_writes() {
    // "a" (1 byte) -> "v" (1 byte): every key here is 2 bytes.
    let mut state = Projection::default();
    state.apply(&Applied {
        revision: 0,
        time_nanos: 0,
        actor: "a".into(),
        event: ControlEvent::KvPut {
            key: "a".into(),
            value: b"v".to_vec(),
        },
    });
    let limits = KvLimits {
        max_keys: 2,
        max_bytes: 6,
    };
    let del = |k: &str| Op::Delete {
        key: key(k),
        condition: Condition::None,
    };
    let group = decide_group(
        &state,
        1,
        vec![
            request(put("b", Condition::None)), // 2 keys: ok
            request(put("c", Condition::None)), // 3 keys: refused
            request(put("a", Condition::None)), // an overwrite: ok
            request(del("b")),                  // 1 key
            request(put("c", Condition::None)), // 2 keys: ok now
        ],
        |_| true,
        limits,
    );
    let shape: Vec<String> = group.decisions.iter().map(|d| format!("{d:?}")).collect();
    assert!(matches!(group.decisions[0], Ok(Some(_))), "{shape:?}");
    assert!(
        matches!(&group.decisions[1], Err(WriteError::QuotaExceeded(m)) if m.contains("keys")),
        "{shape:?}"
    );
    assert!(matches!(group.decisions[2], Ok(Some(_))), "{shape:?}");
    assert!(matches!(group.decisions[3], Ok(Some(_))), "{shape:?}");
    assert!(matches!(group.decisions[4], Ok(Some(_))), "{shape:?}");

    // Bytes: a value that would take the store past 6 bytes is refused.
    let big = Op::Put {
        key: key("b"),
        value: b"vvvv".to_vec(),
        condition: Condition::None,
    };
    let group = decide_group(&state, 1, vec![request(big)], |_| true, limits);
    assert!(
        matches!(&group.decisions[0], Err(WriteError::QuotaExceeded(m)) if m.contains("bytes")),
        "{:?}",
        group.decisions
    );
}
