use super::*;

fn named() -> String {
    "n1".to_owned()
}

fn layer(toml: &str) -> Layer {
    Layer::from_toml(toml, Path::new("test.toml")).expect("valid layer")
}

#[test]
fn an_empty_layer_gives_the_defaults() {
    let s = Settings::resolve(Layer::default(), named).expect("valid");
    assert_eq!(s.name, "n1");
    assert_eq!(
        s.listen,
        "127.0.0.1:7070".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        s.ingress,
        "127.0.0.1:8080".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(s.data_dir, PathBuf::from(".draft"));
    assert_eq!(s.durability, Durability::Sync);
    assert_eq!(s.limits.max_connections, 4096);
    assert_eq!(s.limits.header_read_timeout, Duration::from_secs(30));
    assert_eq!(s.limits.max_connections_per_address, 512);
    assert_eq!(s.limits.max_websockets, 2048);
    assert_eq!(s.limits.body_read_timeout, Duration::from_secs(30));
    assert_eq!(s.limits.request_timeout, Duration::from_secs(60));
    assert_eq!(s.ws_write_timeout, Duration::from_secs(30));
    assert_eq!(s.catalyst.max_event_bytes, 1024 * 1024);
    assert_eq!(s.catalyst.max_batch_bytes, 16 * 1024 * 1024);
    assert_eq!(s.catalyst.max_json_depth.get(), 127);
    assert_eq!(s.catalyst.dedup_window, Duration::from_secs(120));
    assert_eq!(s.catalyst.group_timeout, Duration::from_secs(30));
    assert_eq!(s.catalyst.group_commit_interval, Duration::from_millis(100));
}

#[test]
fn flags_over_variables_over_the_file_field_by_field() {
    let file = layer(
        "[node]\nlisten = \"127.0.0.1:1\"\ningress = \"127.0.0.1:2\"\ndata_dir = \"file\"\n\
         ws_write_timeout_ms = 1\n[catalyst]\nmax_event_bytes = 10\nmax_batch_bytes = 100\n",
    );
    let env =
        layer("[node]\ningress = \"127.0.0.1:3\"\ndata_dir = \"env\"\nws_write_timeout_ms = 2\n");
    let flags = layer("[node]\ndata_dir = \"flag\"\n[catalyst]\nmax_event_bytes = 20\n");
    let s = Settings::resolve(flags.over(env.over(file)), named).expect("valid");
    assert_eq!(s.listen.port(), 1, "only the file sets it");
    assert_eq!(s.ingress.port(), 3, "the variable beats the file");
    assert_eq!(s.data_dir, PathBuf::from("flag"), "the flag beats both");
    assert_eq!(s.catalyst.max_event_bytes, 20);
    assert_eq!(s.catalyst.max_batch_bytes, 100);
    assert_eq!(s.ws_write_timeout, Duration::from_millis(2));
    let flags = layer("[node]\nws_write_timeout_ms = 3\n");
    let s = Settings::resolve(
        flags.over(layer("[node]\nws_write_timeout_ms = 2\n")),
        named,
    )
    .expect("valid");
    assert_eq!(
        s.ws_write_timeout,
        Duration::from_millis(3),
        "the flag wins"
    );
}

#[test]
fn a_lower_json_depth_is_taken_and_the_flag_wins() {
    for levels in [1, 16, 127] {
        let s = Settings::resolve(
            layer(&format!("[catalyst]\nmax_json_depth = {levels}\n")),
            named,
        )
        .expect("in range");
        assert_eq!(s.catalyst.max_json_depth.get(), levels);
    }
    let flags = layer("[catalyst]\nmax_json_depth = 8\n");
    let file = layer("[catalyst]\nmax_json_depth = 16\n");
    let s = Settings::resolve(flags.over(file), named).expect("valid");
    assert_eq!(
        s.catalyst.max_json_depth.get(),
        8,
        "the flag beats the file"
    );
}

#[test]
fn fuse_networks_are_cidrs_and_a_bad_one_names_the_file() {
    let s = Settings::resolve(
        layer("[fuse]\nupstream_allow = [\"10.0.0.0/8\", \"fd00::/8\"]\ntrusted_proxies = [\"192.0.2.7\"]\n"),
        named,
    )
    .expect("valid");
    assert_eq!(
        s.upstream_allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.0.0.0/8", "fd00::/8"]
    );
    assert_eq!(s.trusted_proxies[0].to_string(), "192.0.2.7/32");
    let defaults = Settings::resolve(Layer::default(), named).expect("valid");
    assert!(defaults.upstream_allow.is_empty() && defaults.trusted_proxies.is_empty());
    let e = Layer::from_toml(
        "[fuse]\nupstream_allow = [\"10.0.0.1/8\"]\n",
        Path::new("draft.toml"),
    )
    .expect_err("host bits");
    assert!(
        e.to_string().contains("draft.toml") && e.to_string().contains("not a network"),
        "{e}"
    );
}

#[test]
fn buffered_takes_the_flush_interval() {
    let s = Settings::resolve(
        layer("[node]\ndurability = \"buffered\"\nflush_interval_ms = 7\n"),
        named,
    )
    .expect("valid");
    assert_eq!(
        s.durability,
        Durability::Buffered {
            interval: Duration::from_millis(7)
        }
    );
}

#[test]
fn out_of_range_settings_are_refused_with_what_is_wrong() {
    for (toml, says) in [
        ("[node]\nflush_interval_ms = 0\n", "flush interval"),
        ("[node]\nmax_connections = 0\n", "max connections"),
        ("[node]\nheader_read_timeout_ms = 0\n", "header read"),
        (
            "[node]\nmax_connections_per_address = 0\n",
            "max connections per address",
        ),
        ("[node]\nmax_websockets = 0\n", "max websockets"),
        ("[node]\nbody_read_timeout_ms = 0\n", "body read"),
        ("[node]\nrequest_timeout_ms = 0\n", "request timeouts"),
        ("[catalyst]\nmax_event_bytes = 0\n", "max event bytes"),
        (
            "[catalyst]\nmax_json_depth = 0\n",
            "max JSON depth must be 1 to 127",
        ),
        (
            "[catalyst]\nmax_json_depth = 128\n",
            "max JSON depth must be 1 to 127",
        ),
        (
            "[catalyst]\nmax_event_bytes = 10\nmax_batch_bytes = 9\n",
            "max batch bytes",
        ),
        ("[node]\nname = \"a/b\"\n", "node name"),
        ("[catalyst]\ngroup_timeout_ms = 99\n", "group timeout"),
        (
            "[catalyst]\ngroup_commit_interval_ms = 0\n",
            "commit interval",
        ),
        (
            "[catalyst]\ngroup_timeout_ms = 500\ngroup_commit_interval_ms = 500\n",
            "commit interval",
        ),
        ("[catalyst]\nretention_age_secs = 0\n", "default retention"),
        ("[catalyst]\nretention_bytes = 0\n", "default retention"),
        ("[node]\nrestart_grace_ms = 0\n", "restart grace"),
        ("[node]\nshutdown_timeout_ms = 0\n", "shutdown timeout"),
        (
            "[node]\nremove_critical_after_secs = 0\n",
            "remove critical after",
        ),
        ("[node]\nshutdown_timeout_ms = 600001\n", "shutdown timeout"),
        (
            "[node]\nws_write_timeout_ms = 0\n",
            "WebSocket write timeout",
        ),
        (
            "[node]\nws_write_timeout_ms = 3600001\n",
            "WebSocket write timeout",
        ),
    ] {
        let e = Settings::resolve(layer(toml), named).expect_err(toml);
        assert!(e.to_string().contains(says), "{toml}: {e}");
    }
}

#[test]
fn unknown_settings_and_bad_values_name_the_file() {
    for toml in [
        "[node]\nlisten_on = 1\n",
        "[nodes]\n",
        "[node]\nlisten = \"nowhere\"\n",
    ] {
        let e = Layer::from_toml(toml, Path::new("draft.toml")).expect_err(toml);
        assert!(e.to_string().contains("draft.toml"), "{e}");
    }
}

/// `fixtures/draft.toml` lists every setting with its default: loading it must give exactly
/// what no file gives, and it must set every field (a new setting missing from it fails).
#[test]
fn the_fixture_lists_every_setting_at_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/draft.toml");
    let fixture = Layer::load(Some(&path)).expect("fixtures/draft.toml loads");
    let NodeLayer {
        name,
        listen,
        ingress,
        data_dir,
        durability,
        flush_interval_ms,
        max_connections,
        header_read_timeout_ms,
        restart_grace_ms,
        shutdown_timeout_ms,
        remove_critical_after_secs,
        kv_max_keys,
        kv_max_bytes,
        max_connections_per_address,
        max_websockets,
        body_read_timeout_ms,
        ws_write_timeout_ms,
        request_timeout_ms,
        tls_cert,
        tls_key,
    } = &fixture.node;
    let CatalystLayer {
        max_event_bytes,
        max_batch_bytes,
        max_json_depth,
        dedup_window_secs,
        produce_window_frames,
        produce_window_bytes,
        group_timeout_ms,
        group_commit_interval_ms,
        retention_age_secs,
        retention_bytes,
    } = &fixture.catalyst;
    let FuseLayer {
        upstream_allow,
        trusted_proxies,
    } = &fixture.fuse;
    let AuthLayer { mode } = &fixture.auth;
    assert!(mode.is_some());
    every_log_setting_listed(&fixture.log);
    assert!(
        name.is_none(),
        "the name defaults to the host name; the fixture leaves it out"
    );
    assert!(
        tls_cert.is_none() && tls_key.is_none(),
        "TLS is off by default; the fixture shows the keys commented out"
    );
    assert!(
        remove_critical_after_secs.is_none(),
        "critical instances stay by default; the fixture shows the key commented out"
    );
    assert!(
        restart_grace_ms.is_none(),
        "an instance gets its full TTL at start by default; the fixture shows the key commented out"
    );
    assert!(
        retention_age_secs.is_none() && retention_bytes.is_none(),
        "channels keep everything by default; the fixture shows the keys commented out"
    );
    assert!(listen.is_some() && ingress.is_some() && data_dir.is_some());
    assert!(durability.is_some() && flush_interval_ms.is_some());
    assert!(max_connections.is_some() && header_read_timeout_ms.is_some());
    assert!(shutdown_timeout_ms.is_some());
    assert!(kv_max_keys.is_some() && kv_max_bytes.is_some());
    assert!(max_connections_per_address.is_some() && max_websockets.is_some());
    assert!(body_read_timeout_ms.is_some() && request_timeout_ms.is_some());
    assert!(ws_write_timeout_ms.is_some());
    assert!(max_event_bytes.is_some() && max_batch_bytes.is_some());
    assert!(max_json_depth.is_some());
    assert!(dedup_window_secs.is_some());
    assert!(produce_window_frames.is_some() && produce_window_bytes.is_some());
    assert!(group_timeout_ms.is_some() && group_commit_interval_ms.is_some());
    assert!(upstream_allow.is_some() && trusted_proxies.is_some());
    let from_fixture = Settings::resolve(fixture.clone(), named).expect("valid");
    let defaults = Settings::resolve(Layer::default(), named).expect("valid");
    assert_eq!(format!("{from_fixture:?}"), format!("{defaults:?}"));
    // The JetStream settings are ignored with fjall: compare them with the backend switched.
    let jetstream = || Layer {
        log: LogLayer {
            backend: Some(BackendChoice::Jetstream),
            ..LogLayer::default()
        },
        ..Layer::default()
    };
    let from_fixture = Settings::resolve(jetstream().over(fixture), named).expect("valid");
    let defaults = Settings::resolve(jetstream(), named).expect("valid");
    assert_eq!(from_fixture.backend, defaults.backend);
}

/// The fixture's `[log]` names every key but the credentials (commented out).
fn every_log_setting_listed(log: &LogLayer) {
    let LogLayer {
        backend,
        nats_url,
        nats_creds,
        replicas,
        keeper_ttl_ms,
        nats_ack_timeout_ms,
    } = log;
    assert!(backend.is_some() && nats_url.is_some());
    assert!(replicas.is_some() && keeper_ttl_ms.is_some() && nats_ack_timeout_ms.is_some());
    assert!(
        nats_creds.is_none(),
        "no credentials by default; the fixture shows the key commented out"
    );
}

#[test]
fn auth_is_auto_by_default_on_off_the_loopback_and_layered() {
    let s = Settings::resolve(Layer::default(), named).expect("valid");
    assert_eq!(
        s.auth,
        AuthSettings {
            mode: AuthMode::Auto,
            enabled: false
        },
        "the default API address is loopback"
    );
    for (listen, enabled) in [
        ("127.0.0.1:7070", false),
        ("127.1.2.3:7070", false),
        ("[::1]:7070", false),
        ("0.0.0.0:7070", true),
        ("[::]:7070", true),
        ("192.168.1.5:7070", true),
    ] {
        let s = Settings::resolve(layer(&format!("[node]\nlisten = \"{listen}\"\n")), named)
            .expect("valid");
        assert_eq!(s.auth.enabled, enabled, "{listen}");
        assert!(
            !s.auth.is_open_to_the_network(s.listen),
            "auto never is: {listen}"
        );
    }
    let public = "[node]\nlisten = \"0.0.0.0:7070\"\n";
    let off = Settings::resolve(layer(&format!("{public}[auth]\nmode = \"off\"\n")), named)
        .expect("valid");
    assert!(!off.auth.enabled);
    assert!(
        off.auth.is_open_to_the_network(off.listen),
        "explicit: warned about"
    );
    let on = Settings::resolve(layer("[auth]\nmode = \"on\"\n"), named).expect("valid");
    assert!(on.auth.enabled, "on, even on loopback");
    let flags = layer("[auth]\nmode = \"on\"\n");
    let file = layer("[auth]\nmode = \"off\"\n");
    let s = Settings::resolve(flags.over(file), named).expect("valid");
    assert_eq!(s.auth.mode, AuthMode::On, "the flag beats the file");
    assert!(Layer::from_toml("[auth]\nmode = \"maybe\"\n", Path::new("draft.toml")).is_err());
}

#[test]
fn the_services_of_dctl_run_are_ignored_but_must_be_a_table() {
    let with = layer(
        "[node]\nlisten = \"127.0.0.1:1\"\n[services.web]\ncommand = \"web\"\nanything = 1\n",
    );
    assert_eq!(with, layer("[node]\nlisten = \"127.0.0.1:1\"\n"));
    assert!(Layer::from_toml("services = 1\n", Path::new("draft.toml")).is_err());
}

#[test]
fn tls_needs_a_certificate_and_its_key() {
    let both = layer("[node]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
    let s = Settings::resolve(both, named).expect("valid");
    assert_eq!(s.tls, Some(("c.pem".into(), "k.pem".into())));
    let one = layer("[node]\ntls_cert = \"c.pem\"\n");
    let err = Settings::resolve(one, named).expect_err("half of TLS");
    assert!(err.to_string().contains("tls_key"), "{err}");
    assert_eq!(
        Settings::resolve(Layer::default(), named)
            .expect("valid")
            .tls,
        None
    );
}
