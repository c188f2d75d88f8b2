use super::*;

const DIR: &str = "/srv/app";

fn parse(text: &str) -> Result<Manifest, Error> {
    Manifest::parse(text, Path::new("draft.toml"), Path::new(DIR))
}

fn refused(text: &str) -> String {
    let e = parse(text).expect_err(text).to_string();
    assert!(e.starts_with("invalid manifest draft.toml: "), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn services_keep_the_manifest_order_with_their_settings() {
    let m = parse(
        "[node]\nlisten = \"127.0.0.1:7171\"\n\n\
         [services.web]\ncommand = \"./bin/web\"\nargs = [\"--port\", \"80\"]\n\
         env = { A = \"1\", B = \"two\" }\nrestart = \"on-failure\"\ngrace_ms = 250\n\n\
         [services.api]\ncommand = \"python3\"\ncwd = \"api\"\n\n\
         [services.batch]\ncommand = \"/usr/bin/env\"\ncwd = \"/tmp\"\n",
    )
    .expect("valid");
    let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "batch"], "manifest order, not sorted");
    assert_eq!(m.node.node.listen, Some(([127, 0, 0, 1], 7171).into()));
    assert_eq!(m.dir, PathBuf::from(DIR));

    let web = &m.services[0];
    assert_eq!(
        web.program,
        Program::Path(PathBuf::from("/srv/app/./bin/web"))
    );
    assert_eq!(web.args, ["--port", "80"]);
    assert_eq!(web.env.get("B").map(String::as_str), Some("two"));
    assert_eq!(
        web.cwd,
        PathBuf::from(DIR),
        "cwd defaults to the manifest's folder"
    );
    assert_eq!(web.restart, Restart::OnFailure);
    assert_eq!(web.grace, Some(Duration::from_millis(250)));

    let api = &m.services[1];
    assert_eq!(api.program, Program::Search("python3".to_owned()));
    assert_eq!(
        api.cwd,
        PathBuf::from("/srv/app/api"),
        "relative to the manifest"
    );
    assert_eq!(api.restart, Restart::Never, "the default");
    assert_eq!(api.grace, None);

    let batch = &m.services[2];
    assert_eq!(batch.program, Program::Path(PathBuf::from("/usr/bin/env")));
    assert_eq!(batch.cwd, PathBuf::from("/tmp"));
}

#[test]
fn order_survives_names_that_sort_otherwise_and_dotted_tables() {
    let m = parse(
        "[services.zeta]\ncommand = \"a\"\n[services.alpha]\ncommand = \"b\"\n\
         [services.mid]\ncommand = \"c\"\n",
    )
    .expect("valid");
    let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn a_relative_command_resolves_against_the_service_cwd() {
    let m = parse("[services.s]\ncommand = \"../bin/s\"\ncwd = \"sub\"\n").expect("valid");
    assert_eq!(
        m.services[0].program,
        Program::Path(PathBuf::from("/srv/app/sub/../bin/s"))
    );
}

#[test]
fn the_node_settings_are_checked_as_dctl_up_checks_them() {
    let e = refused("[node]\nflush_interval_ms = 0\n[services.s]\ncommand = \"x\"\n");
    assert!(e.contains("flush interval"), "{e}");
    let e = refused("[node]\nlisten_on = 1\n[services.s]\ncommand = \"x\"\n");
    assert!(e.contains("listen_on"), "{e}");
}

#[test]
fn bad_manifests_are_refused_on_one_line_saying_why() {
    for (text, says) in [
        ("this is not toml", "line 1"),
        ("", "no services"),
        ("[services]\n", "no services"),
        ("[services.s]\nargs = []\n", "missing field `command`"),
        ("[services.s]\ncommand = \"\"\n", "`command` is empty"),
        ("[services.s]\ncommand = \"  \"\n", "`command` is empty"),
        (
            "[services.s]\ncommand = \"x\"\ncomand = \"y\"\n",
            "unknown field `comand`",
        ),
        (
            "[services.s]\ncommand = \"x\"\nrestart = \"always\"\n",
            "always",
        ),
        ("[services.s]\ncommand = \"x\"\nargs = \"-v\"\n", "line 3"),
        (
            "[services.s]\ncommand = \"x\"\nenv = { PORT = 80 }\n",
            "line 3",
        ),
        (
            "[services.s]\ncommand = \"x\"\nenv = { \"A=B\" = \"1\" }\n",
            "'='",
        ),
        (
            "[services.s]\ncommand = \"x\"\nargs = [\"a\\u0000\"]\n",
            "NUL",
        ),
        ("[services.\"a b\"]\ncommand = \"x\"\n", "[A-Za-z0-9._-]"),
        ("[services.node]\ncommand = \"x\"\n", "node's output"),
        ("[servces.s]\ncommand = \"x\"\n", "unknown field `servces`"),
    ] {
        let e = refused(text);
        assert!(e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn the_service_is_named_in_its_errors() {
    let e = refused("[services.ok]\ncommand = \"x\"\n[services.bad]\ncommand = \"\"\n");
    assert!(e.contains("[services.bad]"), "{e}");
}

#[test]
fn a_missing_file_is_refused_naming_it() {
    let e = Manifest::load(Path::new("/nonexistent/draft.toml"))
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("/nonexistent/draft.toml") && e.contains("cannot read it"),
        "{e}"
    );
}

/// `fixtures/draft.toml` is also the example manifest of `dctl run`.
#[test]
fn the_fixture_runs_the_example_service() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/draft.toml");
    let m = Manifest::load(&path).expect("fixtures/draft.toml is a valid manifest");
    let orders = m
        .services
        .iter()
        .find(|s| s.name == "orders")
        .expect("[services.orders]");
    assert_eq!(orders.restart, Restart::OnFailure);
    assert_eq!(
        orders.program,
        Program::Path(m.dir.join("../target/debug/orders"))
    );
}
