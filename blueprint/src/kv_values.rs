//! Keys' values, read from the control log. The projection keeps of a key only its metadata
//! ([`KvMeta`]); the value is that of the put at the key's revision, one record of `_draft`
//! (whose offsets are revisions). Reading it checks that the record really is that put: the
//! right offset, an `io.draft.kv.put` of that key, of that many bytes. Anything else is a
//! [`ValueError`], never a wrong value.
//!
//! A key's history is read the same way, each change checked to be a put or a delete of the
//! key.
//!
//! `value_of` and `history_change` are the pure checks; [`ValueReader`] is the I/O around
//! them, one `LogBackend::read` of one record each, through a [`ValueCache`] for single
//! keys' values.

use std::borrow::Cow;

use bytes::Bytes;
use draft_log::{LogBackend, Offset, PartitionName, Record};
use serde::Deserialize;

use crate::error::ValueError;
use crate::event::ControlEvent;
use crate::projection::KvMeta;
use crate::value_cache::ValueCache;
use crate::wire::{KvChange, base64_decode, base64_encode};

/// A stored `io.draft.kv.put`, read without building the whole event: the common case of a
/// value read. Anything else goes through [`ControlEvent::from_cloudevent`].
#[derive(Deserialize)]
struct StoredPut<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    data: StoredPutData<'a>,
}

#[derive(Deserialize)]
struct StoredPutData<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value_base64: Cow<'a, str>,
}

/// The change of `key` at `revision` that `record` holds: what the log holds at that
/// revision (`None`: nothing there or after it) must be a put or a delete of `key`. Returns
/// the event with its actor.
///
/// # Errors
/// [`ValueError::Missing`] if the log holds no record at that revision;
/// [`ValueError::Mismatch`] if the record there is not a change of `key`.
fn change_at(
    key: &str,
    revision: u64,
    record: Option<&Record>,
) -> Result<(ControlEvent, String), ValueError> {
    let mismatch = |found: String| ValueError::Mismatch {
        key: key.to_owned(),
        revision,
        found,
    };
    let Some(record) = record.filter(|r| r.offset.0 == revision) else {
        return Err(ValueError::Missing {
            key: key.to_owned(),
            revision,
        });
    };
    let (event, actor) = ControlEvent::from_cloudevent(&record.payload)
        .map_err(|reason| mismatch(format!("a record that is not a control event ({reason})")))?;
    match &event {
        ControlEvent::KvPut { key: k, .. } | ControlEvent::KvDeleted { key: k } if k == key => {
            Ok((event, actor))
        }
        ControlEvent::KvPut { key: k, .. } => Err(mismatch(format!("a put of key {k:?}"))),
        ControlEvent::KvDeleted { key: k } => Err(mismatch(format!("a delete of key {k:?}"))),
        other => Err(mismatch(format!("an {} event", other.ty()))),
    }
}

/// The value of `key`, described by `meta`, from `record`: what the log holds at the key's
/// revision (`None`: nothing there or after it).
///
/// # Errors
/// As [`change_at`], and [`ValueError::Mismatch`] if the record is not a put of
/// `meta.value_len` bytes.
pub(crate) fn value_of(
    key: &str,
    meta: &KvMeta,
    record: Option<&Record>,
) -> Result<Vec<u8>, ValueError> {
    let mismatch = |found: String| ValueError::Mismatch {
        key: key.to_owned(),
        revision: meta.revision,
        found,
    };
    let at_revision = record.filter(|r| r.offset.0 == meta.revision);
    let put = at_revision
        .and_then(|r| serde_json::from_slice::<StoredPut>(&r.payload).ok())
        .filter(|put| put.ty == "io.draft.kv.put" && put.data.key == key);
    let value = if let Some(put) = put {
        base64_decode(&put.data.value_base64)
            .ok_or_else(|| mismatch("a put whose value is not base64".to_owned()))?
    } else {
        // Not the key's put, as far as the quick look goes: the full decode says what it is.
        match change_at(key, meta.revision, record)?.0 {
            ControlEvent::KvPut { value, .. } => value,
            _ => return Err(mismatch("a delete of the key".to_owned())),
        }
    };
    if value.len() as u64 != meta.value_len {
        return Err(mismatch(format!(
            "a put of {} bytes, not {}",
            value.len(),
            meta.value_len
        )));
    }
    Ok(value)
}

/// The change of `key` at `revision` from `record` (see [`change_at`]), as history shows it.
///
/// # Errors
/// As [`change_at`].
pub(crate) fn history_change(
    key: &str,
    revision: u64,
    record: Option<&Record>,
) -> Result<KvChange, ValueError> {
    let (event, actor) = change_at(key, revision, record)?;
    let (op, value_base64) = match event {
        ControlEvent::KvPut { value, .. } => ("put", Some(base64_encode(&value))),
        _ => ("delete", None),
    };
    let time_nanos = record.map_or(0, |r| r.time.as_unix_nanos());
    Ok(KvChange {
        revision,
        time: draft_http::rfc3339(time_nanos),
        actor,
        op: op.to_owned(),
        value_base64,
    })
}

/// Reads values and changes of keys from the control log, through the node's cache.
#[derive(Clone, Copy)]
pub(crate) struct ValueReader<'a> {
    /// The log.
    pub(crate) log: &'a dyn LogBackend,
    /// Its control partition.
    pub(crate) control: &'a PartitionName,
    /// Values read lately, by revision.
    pub(crate) cache: &'a ValueCache,
}

impl ValueReader<'_> {
    /// The record at `revision` (`None`: nothing there or after it).
    async fn record_at(&self, key: &str, revision: u64) -> Result<Option<Record>, ValueError> {
        let mut records = self
            .log
            .read(self.control, Offset(revision), 1)
            .await
            .map_err(|source| ValueError::Log {
                key: key.to_owned(),
                revision,
                source,
            })?;
        Ok(records.pop())
    }

    /// The value of `key`, described by `meta`: from the cache, else from the log, and then
    /// kept in the cache.
    ///
    /// # Errors
    /// [`ValueError::Log`] if the log cannot be read; otherwise as [`value_of`].
    pub(crate) async fn value(&self, key: &str, meta: &KvMeta) -> Result<Bytes, ValueError> {
        if let Some(hit) = self.cache.get(meta.revision, key) {
            return Ok(hit);
        }
        let value = self.read_log(key, meta).await?;
        self.cache.insert(meta.revision, key, value.clone());
        Ok(value)
    }

    /// [`value`](Self::value) without keeping what it read: for lists and snapshots, which
    /// would push every key's value read once through the cache.
    ///
    /// # Errors
    /// As [`value`](Self::value).
    pub(crate) async fn scan_value(&self, key: &str, meta: &KvMeta) -> Result<Bytes, ValueError> {
        match self.cache.get(meta.revision, key) {
            Some(hit) => Ok(hit),
            None => self.read_log(key, meta).await,
        }
    }

    /// The value of `key`, described by `meta`, read from the log.
    async fn read_log(&self, key: &str, meta: &KvMeta) -> Result<Bytes, ValueError> {
        let record = self.record_at(key, meta.revision).await?;
        value_of(key, meta, record.as_ref()).map(Bytes::from)
    }

    /// The change of `key` at `revision`, for its history.
    ///
    /// # Errors
    /// [`ValueError::Log`] if the log cannot be read; otherwise as [`history_change`].
    pub(crate) async fn change(&self, key: &str, revision: u64) -> Result<KvChange, ValueError> {
        let record = self.record_at(key, revision).await?;
        history_change(key, revision, record.as_ref())
    }
}

#[cfg(test)]
mod tests;
