//! What the projection keeps of a key: its metadata, never its bytes. The value is the one
//! the put at [`KvMeta::revision`] carries, a record of `_draft` that
//! [`kv_values`](crate::kv_values) reads back, so the projection (and every checkpoint and
//! clone of it) grows with the number of keys, not with the bytes of their values.

use serde::{Deserialize, Serialize};

/// A key's current state, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SavedKv")]
pub struct KvMeta {
    /// The revision of its last put: the offset in `_draft` of the record that holds the
    /// value.
    pub revision: u64,
    /// The revision that created it (since its last delete).
    pub create_revision: u64,
    /// When it was last put (unix nanos).
    pub time_nanos: u64,
    /// Who last put it.
    pub actor: String,
    /// How many bytes its value has.
    pub value_len: u64,
}

impl KvMeta {
    /// What the key and its value count towards the KV store's byte limit.
    #[must_use]
    pub fn entry_bytes(&self, key: &str) -> u64 {
        entry_bytes(key, self.value_len)
    }
}

/// What one key and a value of `value_len` bytes count towards the KV store's byte limit.
pub(crate) fn entry_bytes(key: &str, value_len: u64) -> u64 {
    key.len() as u64 + value_len
}

/// A [`KvMeta`] as checkpoints hold it: `value_len` since values stay in the log, the value
/// itself (base64) in checkpoints written before, of which only the length is kept.
#[derive(Deserialize)]
struct SavedKv {
    revision: u64,
    create_revision: u64,
    time_nanos: u64,
    actor: String,
    #[serde(default)]
    value_len: Option<u64>,
    #[serde(default, deserialize_with = "base64_len")]
    value: Option<u64>,
}

impl TryFrom<SavedKv> for KvMeta {
    type Error = String;

    fn try_from(saved: SavedKv) -> Result<Self, String> {
        let value_len = saved.value_len.or(saved.value).ok_or_else(|| {
            format!(
                "the key put at revision {} has neither value_len nor value",
                saved.revision
            )
        })?;
        Ok(Self {
            revision: saved.revision,
            create_revision: saved.create_revision,
            time_nanos: saved.time_nanos,
            actor: saved.actor,
            value_len,
        })
    }
}

/// The length of a value an old checkpoint holds as base64; the bytes are dropped at once.
fn base64_len<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    let bytes = crate::wire::base64_decode(&text)
        .ok_or_else(|| serde::de::Error::custom("a value in the checkpoint is not base64"))?;
    Ok(Some(bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_with_values_load_as_their_lengths() {
        let old =
            r#"{"value":"aGVsbG8=","revision":7,"create_revision":3,"time_nanos":9,"actor":"a"}"#;
        let meta: KvMeta = serde_json::from_str(old).expect("an old checkpoint's key");
        assert_eq!(
            meta,
            KvMeta {
                revision: 7,
                create_revision: 3,
                time_nanos: 9,
                actor: "a".into(),
                value_len: 5,
            }
        );
        let new = serde_json::to_value(&meta).expect("json");
        assert!(new.get("value").is_none(), "no bytes saved: {new}");
        assert_eq!(new["value_len"], 5);
        assert_eq!(
            serde_json::from_value::<KvMeta>(new).expect("back"),
            meta,
            "round trip"
        );
        let neither = r#"{"revision":7,"create_revision":3,"time_nanos":9,"actor":"a"}"#;
        let e = serde_json::from_str::<KvMeta>(neither).expect_err("no length");
        assert!(e.to_string().contains("neither value_len nor value"), "{e}");
        let bad = r#"{"value":"*","revision":7,"create_revision":3,"time_nanos":9,"actor":"a"}"#;
        assert!(serde_json::from_str::<KvMeta>(bad).is_err(), "not base64");
    }
}
