use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect(s)
}

fn node(api: &str, ingress: &str, allow: &[&str]) -> UpstreamPolicy {
    UpstreamPolicy::new(allow.iter().map(|c| c.parse().expect(c)).collect())
        .with_listener("API", addr(api))
        .with_listener("ingress", addr(ingress))
}

/// Nothing but loopback is "local" in these tests, except 10.0.0.5.
fn local(ip: IpAddr) -> bool {
    ip == IpAddr::from([10, 0, 0, 5])
}

fn refusal(policy: &UpstreamPolicy, a: &str) -> Option<Refusal> {
    policy.check_with(addr(a), local).err()
}

#[test]
fn metadata_unspecified_and_group_addresses_are_refused_in_every_spelling() {
    let p = UpstreamPolicy::default();
    for (a, why) in [
        ("169.254.169.254:80", Refusal::LinkLocal),
        ("[::ffff:169.254.169.254]:80", Refusal::LinkLocal),
        ("[64:ff9b::a9fe:a9fe]:80", Refusal::LinkLocal),
        ("[fe80::1]:80", Refusal::LinkLocal),
        ("[febf::1]:80", Refusal::LinkLocal),
        ("0.0.0.0:80", Refusal::Unspecified),
        ("0.1.2.3:80", Refusal::Unspecified),
        ("[::]:80", Refusal::Unspecified),
        ("[::ffff:0.0.0.0]:80", Refusal::Unspecified),
        ("224.0.0.1:80", Refusal::NotOneHost),
        ("239.255.255.250:1900", Refusal::NotOneHost),
        ("255.255.255.255:80", Refusal::NotOneHost),
        ("[ff02::1]:80", Refusal::NotOneHost),
        ("[fd00:ec2::254]:80", Refusal::Metadata),
        ("100.100.100.200:80", Refusal::Metadata),
    ] {
        assert_eq!(refusal(&p, a), Some(why), "{a}");
    }
    for a in [
        "127.0.0.1:9000",
        "10.1.2.3:80",
        "[::1]:9000",
        "[fd00::1]:80",
        "8.8.8.8:53",
    ] {
        assert_eq!(refusal(&p, a), None, "{a}");
    }
}

#[test]
fn loopback_listeners_are_matched_by_port_on_every_loopback_address() {
    let p = node("127.0.0.1:7070", "127.0.0.1:8080", &[]);
    for a in [
        "127.0.0.1:7070",
        "127.0.0.2:7070",
        "[::1]:7070",
        "[::ffff:127.0.0.1]:7070",
    ] {
        assert_eq!(
            refusal(&p, a),
            Some(Refusal::OwnListener("API", addr("127.0.0.1:7070"))),
            "{a}"
        );
    }
    assert_eq!(
        refusal(&p, "[::1]:8080"),
        Some(Refusal::OwnListener("ingress", addr("127.0.0.1:8080")))
    );
    assert_eq!(refusal(&p, "127.0.0.1:7071"), None, "another port");
    assert_eq!(refusal(&p, "10.0.0.5:7070"), None, "not bound there");
}

#[test]
fn unspecified_listeners_are_matched_by_port_on_every_local_address() {
    let p = node("0.0.0.0:7070", "[::]:8080", &[]);
    for a in [
        "127.0.0.1:7070",
        "[::1]:7070",
        "10.0.0.5:7070",
        "10.0.0.5:8080",
        "[::1]:8080",
    ] {
        assert!(
            matches!(refusal(&p, a), Some(Refusal::OwnListener(..))),
            "{a}"
        );
    }
    assert_eq!(refusal(&p, "10.0.0.6:7070"), None, "another host");
    let p = node("10.0.0.5:7070", "10.0.0.5:8080", &[]);
    assert!(matches!(
        refusal(&p, "10.0.0.5:7070"),
        Some(Refusal::OwnListener(..))
    ));
    assert_eq!(refusal(&p, "127.0.0.1:7070"), None, "bound elsewhere");
}

#[test]
fn the_allow_list_restricts_but_never_lifts_a_refusal() {
    let p = node(
        "127.0.0.1:7070",
        "127.0.0.1:8080",
        &["10.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8"],
    );
    assert_eq!(refusal(&p, "10.9.9.9:80"), None);
    assert_eq!(refusal(&p, "127.0.0.1:9000"), None);
    assert_eq!(refusal(&p, "192.168.1.1:80"), Some(Refusal::NotAllowed));
    assert_eq!(refusal(&p, "[fd00::1]:80"), Some(Refusal::NotAllowed));
    assert_eq!(refusal(&p, "169.254.169.254:80"), Some(Refusal::LinkLocal));
    assert!(matches!(
        refusal(&p, "127.0.0.1:7070"),
        Some(Refusal::OwnListener(..))
    ));
}

#[test]
fn the_system_knows_loopback_is_local_and_a_documentation_address_is_not() {
    assert!(is_local_address(IpAddr::from([127, 0, 0, 1])));
    assert!(!is_local_address(IpAddr::from([192, 0, 2, 1])));
}

#[tokio::test]
async fn names_are_resolved_and_every_address_must_pass() {
    let p = node("127.0.0.1:7070", "127.0.0.1:8080", &[]);
    assert_eq!(p.check_address("127.0.0.1:9000").await, Ok(()));
    assert_eq!(p.check_address("localhost:9000").await, Ok(()));
    let e = p
        .check_address("localhost:7070")
        .await
        .expect_err("own API");
    assert!(
        e.contains("resolves to") && e.contains("the node's own API"),
        "{e}"
    );
    let e = p
        .check_address("169.254.169.254:80")
        .await
        .expect_err("metadata");
    assert!(
        e.starts_with("address \"169.254.169.254:80\" is refused: it is a link-local"),
        "{e}"
    );
    let e = p
        .check_address("does-not-exist.invalid:80")
        .await
        .expect_err("no name");
    assert!(e.contains("cannot be checked"), "{e}");
}
