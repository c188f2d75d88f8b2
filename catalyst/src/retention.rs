//! Channels' own retention (`PUT /v1/channels/{channel}`): how much of each the log keeps.
//!
//! A change is recorded twice, in this order: as one record of the reserved partition
//! `_channels`, which holds the whole table of channels that have a retention of their own (a
//! few bytes each) and is trimmed to that last record, then as the control event
//! `io.draft.channel.configured` in `_draft` (the audit trail, with its actor). A change whose
//! audit record cannot be written is taken back, so the two agree. At
//! open the last record is read and every channel's retention handed to the log. Channels
//! without one keep the node's default (`dctl up --retention-age-secs/--retention-bytes`).
//!
//! Several nodes may share the log: the table is read again whenever `_channels` has a
//! record this node has not read (before a change, and before a channel's retention is
//! shown), and a change is a compare-and-set append after that record, so a change made on
//! another node is never written over. The log's setting is shared too (a stream's own on a
//! shared engine): after handing it over, a change reads the table again and hands over the
//! newer record's setting if another node wrote one meanwhile, so the setting that lands last
//! is the last record's, whatever order the nodes' calls reach the engine in.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use draft_http::{Actor, ApiError, Code};
use draft_log::{LogBackend, NewRecord, Offset, PartitionName};
use serde::{Deserialize, Serialize};

use crate::channel_name::ChannelName;
use crate::error::log_error;
use crate::groups::ControlLog;
use crate::wire::Retention;

/// The reserved partition that holds the channels' own retention.
pub(crate) const CHANNELS_PARTITION: &str = "_channels";
/// The longest `max_age_secs`: 100 years.
const MAX_AGE_SECS: u64 = 100 * 365 * 24 * 3600;
/// How often a change is made again after another node changed the table first.
const CHANGE_ATTEMPTS: usize = 8;

/// What one record of `_channels` holds: every channel with a retention of its own.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    channels: BTreeMap<String, Retention>,
}

/// Checks a retention asked for: each limit given must be in range.
///
/// # Errors
/// 400 `invalid_settings` naming the limit.
pub(crate) fn check(retention: &Retention) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::new(Code::InvalidSettings, m));
    if let Some(age) = retention.max_age_secs
        && !(1..=MAX_AGE_SECS).contains(&age)
    {
        return invalid(format!(
            "retention.max_age_secs must be 1 to {MAX_AGE_SECS} (100 years), not {age}"
        ));
    }
    if retention.max_bytes == Some(0) {
        return invalid("retention.max_bytes must be at least 1".to_owned());
    }
    Ok(())
}

/// A record of `_channels` holding `channels`.
///
/// # Errors
/// 500 if it cannot be encoded.
fn encode(channels: &BTreeMap<String, Retention>) -> Result<Bytes, ApiError> {
    serde_json::to_vec(&Stored {
        channels: channels.clone(),
    })
    .map(Bytes::from)
    .map_err(|e| ApiError::new(Code::Internal, format!("the table of channels: {e}")))
}

/// The log's retention for `retention`.
pub(crate) fn to_log(retention: Retention) -> draft_log::Retention {
    draft_log::Retention {
        max_age: retention.max_age_secs.map(Duration::from_secs),
        max_bytes: retention.max_bytes,
    }
}

/// `retention` as the API shows it (ages in whole seconds).
pub(crate) fn from_log(retention: draft_log::Retention) -> Retention {
    Retention {
        max_age_secs: retention.max_age.map(|d| d.as_secs()),
        max_bytes: retention.max_bytes,
    }
}

/// The channels' own retention: the table, its partition, and the audit seam.
pub(crate) struct Retentions {
    log: Arc<dyn LogBackend>,
    control: Arc<dyn ControlLog>,
    partition: PartitionName,
    table: RwLock<Table>,
    /// One change at a time: the audit record, the table record and the log's setting of a
    /// change land before the next change starts.
    changes: tokio::sync::Mutex<()>,
}

/// The table as of a record of `_channels`.
#[derive(Debug, Clone, Default)]
struct Table {
    channels: BTreeMap<String, Retention>,
    /// The next offset of `_channels` after the record it was read from.
    next: Offset,
}

impl Retentions {
    /// Reads the last record of `_channels` and hands every channel's retention to `log`.
    ///
    /// # Errors
    /// A log error, or [`draft_log::Error::Corrupt`] for a record that is not a table.
    pub(crate) async fn open(
        log: Arc<dyn LogBackend>,
        control: Arc<dyn ControlLog>,
    ) -> draft_log::Result<Self> {
        let retentions = Self {
            log,
            control,
            partition: PartitionName::new(CHANNELS_PARTITION)?,
            table: RwLock::new(Table::default()),
            changes: tokio::sync::Mutex::new(()),
        };
        let table = retentions.refreshed().await?;
        for (name, retention) in &table.channels {
            if let Ok(channel) = PartitionName::new(name) {
                retentions
                    .log
                    .set_retention(&channel, Some(to_log(*retention)))
                    .await?;
            }
        }
        Ok(retentions)
    }

    /// The table, read again from the last record of `_channels` if there is one this node
    /// has not read (written by another node on the same log).
    ///
    /// # Errors
    /// A log error, or [`draft_log::Error::Corrupt`] for a record that is not a table.
    pub(crate) async fn refresh(&self) -> draft_log::Result<()> {
        self.refreshed().await.map(|_| ())
    }

    async fn refreshed(&self) -> draft_log::Result<Table> {
        let known = self
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(head) = self.log.head(&self.partition).await? else {
            return Ok(known);
        };
        let Some(last) = head.last().filter(|_| head.next != known.next) else {
            return Ok(known);
        };
        let Some(record) = self.log.read(&self.partition, last, 1).await?.pop() else {
            return Ok(known);
        };
        let stored: Stored =
            serde_json::from_slice(&record.payload).map_err(|e| draft_log::Error::Corrupt {
                partition: CHANNELS_PARTITION.to_owned(),
                offset: record.offset,
                reason: format!("not a table of channel settings: {e}"),
            })?;
        let table = Table {
            channels: stored.channels,
            next: record.offset.next(),
        };
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = table.clone();
        Ok(table)
    }

    /// The channel's own retention, if it has one, as of the table last read.
    pub(crate) fn own(&self, channel: &str) -> Option<Retention> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .channels
            .get(channel)
            .copied()
    }

    /// Sets `channel`'s own retention (`None`: back to the node's default), recorded by
    /// `actor`; returns the revision of the audit record.
    ///
    /// The table record decides (a compare-and-set append), then the audit record is written,
    /// then the log's setting changes. If the audit record cannot be written, the table record
    /// is taken back (the table before it is appended after it) and the change fails having
    /// changed nothing: the audit trail never misses a change that is in force, and never
    /// shows one that was not stored.
    ///
    /// # Errors
    /// 400 for a retention out of range; 500/503 if it cannot be recorded or stored.
    pub(crate) async fn set(
        &self,
        channel: &ChannelName,
        retention: Option<Retention>,
        actor: &Actor,
    ) -> Result<u64, ApiError> {
        if let Some(r) = &retention {
            check(r)?;
        }
        let _change = self.changes.lock().await;
        let (before, first, table) = self.store(channel, retention).await?;
        let data = serde_json::json!({
            "channel": channel.as_str(),
            "retention": retention,
        });
        let revision = match self
            .control
            .record("io.draft.channel.configured", data, actor.name())
            .await
        {
            Ok(revision) => revision,
            Err(e) => {
                self.take_back(before, table.next).await;
                return Err(e);
            }
        };
        self.apply(channel, retention, table.next).await?;
        // Only the last record is read: what is before it can go.
        if let Err(e) = self.log.trim_before(&self.partition, first).await {
            tracing::warn!(error = %e, "older records of _channels could not be trimmed");
        }
        Ok(revision)
    }

    /// Appends the table with `channel`'s retention changed, after the last record of
    /// `_channels` (read again when another node wrote one first). Returns the table's
    /// channels before the change, the record's offset, and the table after it.
    async fn store(
        &self,
        channel: &ChannelName,
        retention: Option<Retention>,
    ) -> Result<(BTreeMap<String, Retention>, Offset, Table), ApiError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut table = self.refreshed().await.map_err(|e| log_error(&e))?;
            let before = table.channels.clone();
            match retention {
                Some(r) => table.channels.insert(channel.to_string(), r),
                None => table.channels.remove(channel.as_str()),
            };
            match self
                .append_table(encode(&table.channels)?, table.next)
                .await
            {
                Ok(first) => {
                    table.next = first.next();
                    *self.table.write().unwrap_or_else(PoisonError::into_inner) = table.clone();
                    return Ok((before, first, table));
                }
                // Another node changed the table first: read it and change that.
                Err(draft_log::Error::Conflict { .. }) if attempts < CHANGE_ATTEMPTS => {}
                Err(e) => return Err(log_error(&e)),
            }
        }
    }

    /// Appends one table record (`encode`d), expecting `_channels` to end before `next`.
    async fn append_table(&self, table: Bytes, next: Offset) -> draft_log::Result<Offset> {
        let record = vec![NewRecord::new(table)];
        let ack = self
            .log
            .append_expecting(&self.partition, next, record)
            .await?;
        Ok(ack.first)
    }

    /// Takes back a table record whose audit record could not be written: appends the table
    /// as it was before it, expecting nothing after it. The log's setting was not changed
    /// yet, so nothing else is to undo. If that fails too (the log failed as well, or another
    /// node wrote a table after it in the meantime, which keeps the change), the change stays
    /// without its audit record, and that is logged as an error.
    async fn take_back(&self, before: BTreeMap<String, Retention>, next: Offset) {
        let taken_back = match encode(&before) {
            Ok(table) => self
                .append_table(table, next)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.message().to_owned()),
        };
        match taken_back {
            Ok(first) => {
                *self.table.write().unwrap_or_else(PoisonError::into_inner) = Table {
                    channels: before,
                    next: first.next(),
                };
            }
            Err(e) => tracing::error!(
                error = %e,
                "a channel's retention is stored without its audit record: it could not be taken back"
            ),
        }
    }

    /// Hands `channel`'s retention, as of the table that ends before `next`, to the log, then
    /// again from each newer table another node wrote meanwhile: the log's setting is shared
    /// by the nodes (a stream's own on a shared engine), so two changes on two nodes could
    /// otherwise land in the other order from their records. Whoever hands a setting over
    /// last reads the table after it, so the last one matches the last record; a node that
    /// keeps finding newer tables stops after [`CHANGE_ATTEMPTS`], since the node that wrote
    /// the newest one is then handing it over itself.
    async fn apply(
        &self,
        channel: &ChannelName,
        mut retention: Option<Retention>,
        mut next: Offset,
    ) -> Result<(), ApiError> {
        for _ in 0..CHANGE_ATTEMPTS {
            self.log
                .set_retention(channel.partition(), retention.map(to_log))
                .await
                .map_err(|e| log_error(&e))?;
            let table = self.refreshed().await.map_err(|e| log_error(&e))?;
            if table.next == next {
                break;
            }
            next = table.next;
            retention = table.channels.get(channel.as_str()).copied();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
