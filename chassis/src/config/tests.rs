use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Orders {
    currency: String,
    max_amount: u64,
    label: String,
    db: Db,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
struct Db {
    url: Option<String>,
    pool: u32,
}

impl Default for Orders {
    fn default() -> Self {
        Self {
            currency: "EUR".into(),
            max_amount: 10_000,
            label: "x".into(),
            db: Db::default(),
        }
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

#[test]
fn defaults_then_file_then_environment() {
    let file = "currency = \"GBP\"\nmax_amount = 5\n[db]\npool = 3\n";
    let layers = Layers::<Orders>::new(
        "my-orders",
        Some(file),
        vars(&[
            ("MY_ORDERS_MAX_AMOUNT", "7"),
            ("MY_ORDERS_DB__URL", "postgres://x"),
            ("MY_ORDERS_LABEL", "123"),
            ("ORDERS_MAX_AMOUNT", "99"),
            ("PATH", "/bin"),
        ]),
    )
    .expect("valid");
    let c = layers.resolve().expect("fits");
    assert_eq!(c.currency, "GBP");
    assert_eq!(c.max_amount, 7);
    assert_eq!(c.label, "123", "a string field takes the text as it is");
    assert_eq!(
        c.db,
        Db {
            url: Some("postgres://x".into()),
            pool: 3
        }
    );
}

#[test]
fn kv_overrides_everything_and_bad_values_change_nothing() {
    let mut layers =
        Layers::<Orders>::new("orders", None, vars(&[("ORDERS_CURRENCY", "CHF")])).expect("valid");
    let c = layers
        .apply_kv("config/orders/currency", Some(b"\"USD\""))
        .expect("fits");
    assert_eq!(c.expect("a field").currency, "USD");
    let bad = layers.apply_kv("config/orders/max_amount", Some(b"\"lots\""));
    assert!(bad.expect_err("refused").contains("invalid type"));
    assert_eq!(layers.resolve().expect("fits").max_amount, 10_000);
    // A later good change to another key still applies.
    let c = layers
        .apply_kv("config/orders/db/pool", Some(b"9"))
        .expect("fits");
    assert_eq!(c.expect("a field").db.pool, 9);
    // Deleting the KV value falls back to the environment.
    let c = layers
        .apply_kv("config/orders/currency", None)
        .expect("fits");
    assert_eq!(c.expect("a field").currency, "CHF");
    assert_eq!(
        layers
            .apply_kv("config/other/currency", Some(b"1"))
            .expect("ignored"),
        None
    );
    assert_eq!(
        layers
            .apply_kv("config/orders", Some(b"1"))
            .expect("ignored"),
        None
    );
}

#[test]
fn a_rejected_value_keeps_the_keys_previous_value() {
    let mut layers = Layers::<Orders>::new("orders", None, vars(&[])).expect("valid");
    layers
        .apply_kv("config/orders/max_amount", Some(b"5"))
        .expect("fits");
    layers
        .apply_kv("config/orders/max_amount", Some(b"-1"))
        .expect_err("negative");
    assert_eq!(layers.resolve().expect("fits").max_amount, 5);
}

#[test]
fn bad_file_or_environment_is_an_error() {
    assert!(Layers::<Orders>::new("orders", Some("currency = "), vars(&[])).is_err());
    let err = Layers::<Orders>::new("orders", None, vars(&[("ORDERS_MAX_AMOUNT", "many")]))
        .expect_err("not a number");
    assert!(
        err.contains("max_amount") || err.contains("invalid type"),
        "{err}"
    );
}

#[test]
fn paths() {
    assert_eq!(
        kv_path("orders", "config/orders/a/b"),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(kv_path("orders", "config/orders-x/a"), None);
    assert_eq!(kv_path("orders", "config/orders/a//b"), None);
    assert_eq!(env_path("A__B_C"), Some(vec!["a".into(), "b_c".into()]));
    assert_eq!(env_path("A____B"), None);
}

#[test]
fn interpret_follows_the_lower_layer() {
    let s = Value::String("x".into());
    assert_eq!(interpret("12", Some(&s)), Value::String("12".into()));
    assert_eq!(interpret("\"12\"", Some(&s)), Value::String("12".into()));
    assert_eq!(interpret("12", None), Value::from(12));
    assert_eq!(
        interpret("not json", None),
        Value::String("not json".into())
    );
    assert_eq!(
        interpret("true", Some(&Value::Bool(false))),
        Value::Bool(true)
    );
}
