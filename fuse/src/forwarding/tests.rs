use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn peer(s: &str) -> SocketAddr {
    s.parse().expect(s)
}

fn get<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect()
}

const SPOOFED: [(&str, &str); 6] = [
    ("host", "shop.example"),
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "admin.example"),
    ("forwarded", "for=6.6.6.6;proto=https"),
    ("x-real-ip", "6.6.6.6"),
];

#[test]
fn a_clients_forwarding_headers_are_replaced_by_what_the_connection_says() {
    let out = Forwarding::default().request_headers(
        &headers(&SPOOFED),
        peer("10.1.2.3:5555"),
        false,
        HeaderValue::from_static("n1"),
    );
    assert_eq!(get(&out, "x-forwarded-for"), ["10.1.2.3"]);
    assert_eq!(get(&out, "x-forwarded-proto"), ["http"]);
    assert_eq!(get(&out, "x-forwarded-host"), ["shop.example"]);
    assert_eq!(
        get(&out, "forwarded"),
        ["for=10.1.2.3;host=shop.example;proto=http"]
    );
    assert_eq!(get(&out, "x-real-ip"), ["10.1.2.3"]);
    assert_eq!(get(&out, "draft-hop"), ["n1"]);
    assert_eq!(
        get(&out, "host"),
        ["shop.example"],
        "end-to-end headers pass"
    );
}

#[test]
fn a_trusted_proxys_values_are_kept_and_appended_to() {
    let forwarding = Forwarding::new(vec!["10.0.0.0/8".parse().expect("cidr")]);
    let out = forwarding.request_headers(
        &headers(&SPOOFED),
        peer("10.1.2.3:5555"),
        false,
        HeaderValue::from_static("n1"),
    );
    assert_eq!(get(&out, "x-forwarded-for"), ["6.6.6.6, 10.1.2.3"]);
    assert_eq!(get(&out, "x-forwarded-proto"), ["https"]);
    assert_eq!(get(&out, "x-forwarded-host"), ["admin.example"]);
    assert_eq!(
        get(&out, "forwarded"),
        ["for=6.6.6.6;proto=https, for=10.1.2.3;host=shop.example;proto=http"]
    );
    assert_eq!(get(&out, "x-real-ip"), ["6.6.6.6"]);
    let untrusted = forwarding.request_headers(
        &headers(&SPOOFED),
        peer("[::ffff:192.168.0.9]:1"),
        false,
        HeaderValue::from_static("n1"),
    );
    assert_eq!(get(&untrusted, "x-forwarded-for"), ["192.168.0.9"]);
}

#[test]
fn ipv6_peers_and_hosts_with_ports_are_quoted_in_forwarded() {
    let out = Forwarding::default().request_headers(
        &headers(&[("host", "shop.example:8080")]),
        peer("[2001:db8::1]:5555"),
        false,
        HeaderValue::from_static("n1"),
    );
    assert_eq!(
        get(&out, "forwarded"),
        ["for=\"[2001:db8::1]\";host=\"shop.example:8080\";proto=http"]
    );
    assert_eq!(token_or_quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

#[test]
fn hop_by_hop_headers_and_those_connection_names_are_not_forwarded() {
    let incoming = headers(&[
        ("connection", "keep-alive, X-Secret"),
        ("connection", "x-other"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "s"),
        ("x-other", "o"),
        ("proxy-authorization", "Basic x"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-t"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("draft-hop", "spoofed"),
        ("accept", "*/*"),
    ]);
    let out = Forwarding::default().request_headers(
        &incoming,
        peer("127.0.0.1:1"),
        is_websocket_upgrade(&incoming),
        HeaderValue::from_static("n1"),
    );
    let mut names: Vec<_> = out.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "draft-hop",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-real-ip"
        ]
    );
    assert_eq!(get(&out, "draft-hop"), ["n1"], "the hop is Fuse's to set");
}

#[test]
fn a_websocket_upgrade_keeps_its_upgrade_both_ways_and_nothing_else_hop_by_hop() {
    let incoming = headers(&[
        ("connection", "Upgrade, x-secret"),
        ("upgrade", "websocket"),
        ("x-secret", "s"),
        ("sec-websocket-key", "k"),
    ]);
    assert!(is_websocket_upgrade(&incoming));
    assert!(!is_websocket_upgrade(&headers(&[
        ("connection", "upgrade"),
        ("upgrade", "h2c")
    ])));
    assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
    let out = Forwarding::default().request_headers(
        &incoming,
        peer("127.0.0.1:1"),
        true,
        HeaderValue::from_static("n1"),
    );
    assert_eq!(get(&out, "connection"), ["upgrade"]);
    assert_eq!(get(&out, "upgrade"), ["websocket"]);
    assert!(out.get("x-secret").is_none());
    assert_eq!(get(&out, "sec-websocket-key"), ["k"]);

    let mut answer = headers(&[
        ("connection", "upgrade, x-upstream"),
        ("upgrade", "websocket"),
        ("x-upstream", "u"),
        ("sec-websocket-accept", "a"),
    ]);
    strip_response(&mut answer, true);
    assert_eq!(get(&answer, "connection"), ["upgrade"]);
    assert_eq!(get(&answer, "upgrade"), ["websocket"]);
    assert!(answer.get("x-upstream").is_none());
    assert_eq!(get(&answer, "sec-websocket-accept"), ["a"]);
}

#[test]
fn an_answers_hop_by_hop_headers_are_stripped() {
    let mut answer = headers(&[
        ("connection", "close, x-upstream-secret"),
        ("keep-alive", "timeout=5"),
        ("x-upstream-secret", "s"),
        ("proxy-authenticate", "Basic"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("content-type", "text/plain"),
    ]);
    strip_response(&mut answer, false);
    let names: Vec<_> = answer.keys().map(HeaderName::as_str).collect();
    assert_eq!(names, ["content-type"]);
}
