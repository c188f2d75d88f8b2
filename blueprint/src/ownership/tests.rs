use super::*;
use draft_http::auth::{Policy, Role};

fn key(host: Option<&str>, prefix: &str) -> RouteKey {
    RouteKey::of(&Route {
        prefix: prefix.into(),
        host: host.map(Into::into),
        strip_prefix: false,
        timeout_ms: None,
    })
}

fn keys(list: &[&str]) -> BTreeSet<RouteKey> {
    list.iter().map(|p| key(None, p)).collect()
}

#[test]
fn keys_ignore_host_case_port_final_dot_and_trailing_slashes() {
    assert_eq!(
        key(Some("Shop.Example.:8080"), "/api/"),
        key(Some("shop.example"), "/api")
    );
    assert_eq!(key(None, "/api//"), key(None, "/api"));
    assert_eq!(key(None, "/"), key(None, "//"));
    assert_eq!(key(None, "/").prefix, "/");
    assert_ne!(
        key(None, "/api"),
        key(Some("shop.example"), "/api"),
        "a host route is another route"
    );
    assert_ne!(
        key(None, "/api"),
        key(None, "/API"),
        "paths are case-sensitive"
    );
    assert_eq!(normalize_host("[::1]:80"), "[::1]");
    assert_eq!(key(Some("a.example"), "/x").to_string(), "a.example/x");
    assert_eq!(key(None, "/x").to_string(), "/x (any host)");
}

#[test]
fn the_first_claimant_owns_until_its_last_instance_stops_listing_the_route() {
    let mut claims = RouteClaims::default();
    let none = BTreeSet::new();
    change(&mut claims, ("web", "w1"), &none, &keys(&["/api"]), 1);
    change(&mut claims, ("web", "w2"), &none, &keys(&["/api/"]), 2);
    let api = claims.get(&key(None, "/api")).expect("claimed");
    assert_eq!((api.owner.as_str(), api.since), ("web", 1));
    change(&mut claims, ("web", "w1"), &keys(&["/api"]), &none, 3);
    assert_eq!(
        claims.get(&key(None, "/api")).map(|c| c.since),
        Some(1),
        "w2 still lists it"
    );
    change(
        &mut claims,
        ("web", "w2"),
        &keys(&["/api"]),
        &keys(&["/other"]),
        4,
    );
    assert!(claims.get(&key(None, "/api")).is_none(), "released");
    assert_eq!(claims.get(&key(None, "/other")).map(|c| c.since), Some(4));
}

#[test]
fn a_release_hands_the_route_to_the_first_remaining_claimant_by_name() {
    let mut claims = RouteClaims::default();
    let none = BTreeSet::new();
    let route = keys(&["/x"]);
    change(&mut claims, ("web", "w1"), &none, &route, 1);
    // Only the seam (or a log written before ownership) lets these in: each takes it over.
    change(&mut claims, ("zeta", "z1"), &none, &route, 2);
    change(&mut claims, ("beta", "b1"), &none, &route, 3);
    assert_eq!(
        claims.get(&key(None, "/x")).map(|c| c.owner.as_str()),
        Some("beta")
    );
    change(&mut claims, ("beta", "b1"), &route, &none, 4);
    let x = claims.get(&key(None, "/x")).expect("still listed");
    assert_eq!((x.owner.as_str(), x.since), ("web", 4));
}

#[test]
fn claims_round_trip_through_json() {
    let mut claims = RouteClaims::default();
    change(
        &mut claims,
        ("web", "w1"),
        &BTreeSet::new(),
        &keys(&["/a", "/b"]),
        7,
    );
    let text = serde_json::to_string(&claims).expect("json");
    assert_eq!(
        serde_json::from_str::<RouteClaims>(&text).expect("back"),
        claims
    );
}

#[test]
fn a_take_over_needs_an_admin_or_a_policy_naming_the_route_exactly() {
    let policy = |json: &str| Policy::from_json(json).expect("policy");
    let decide = |rights: &TakeOver, route: &RouteKey| {
        let claimant = Claimant {
            service: "pay",
            actor: "t",
            rights,
        };
        may_take_over(&claimant, route, "payments")
    };
    let payments = key(None, "/payments");
    let shop = key(Some("shop.example"), "/");
    // The default service policy (`/pay*`) matches `/payments` but names nothing exactly.
    let service = TakeOver::of(Some(&Policy::of_role(Role::Service, "pay").expect("role")));
    assert_eq!(service, TakeOver::Nothing);
    assert_eq!(decide(&service, &payments), ClaimDecision::Deny);
    assert_eq!(decide(&TakeOver::of(None), &payments), ClaimDecision::Deny);
    assert_eq!(
        decide(&TakeOver::of(Some(&Policy::Reader)), &payments),
        ClaimDecision::Deny
    );
    assert_eq!(
        decide(&TakeOver::of(Some(&Policy::Admin)), &shop),
        ClaimDecision::Allow
    );
    let named = TakeOver::of(Some(&policy(
        r#"{"routes": {"claim": ["/payments/", "SHOP.example./", "/pay*", "nopath"]}}"#,
    )));
    assert_eq!(decide(&named, &payments), ClaimDecision::Allow);
    assert_eq!(decide(&named, &shop), ClaimDecision::Allow);
    assert_eq!(
        decide(&named, &key(None, "/payments/v2")),
        ClaimDecision::Deny
    );
    assert_eq!(decide(&named, &key(None, "/pay")), ClaimDecision::Deny);
    // Its own routes are always its own.
    let own = Claimant {
        service: "payments",
        actor: "t",
        rights: &TakeOver::Nothing,
    };
    assert_eq!(
        may_take_over(&own, &payments, "payments"),
        ClaimDecision::Allow
    );
}
