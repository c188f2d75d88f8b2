//! The stream of each partition: created on first append, never deleted or recreated (that
//! would restart its sequence, and so its offsets), read for heads and retention.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use draft_log::{Offset, PartitionHead, PartitionName, Retention, Timestamp};
use serde_json::{Value, json};

use crate::api::{Api, codes};
use crate::config::JetStreamConfig;
use crate::error::{Error, Result};
use crate::name::{self, PARTITION_KEY};

/// JetStream's default duplicate window, which Draft keeps (a shorter `max_age` shortens it:
/// JetStream requires the window to be at most the age).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// What a stream's info says, in Draft's terms.
#[derive(Debug, Clone)]
pub(crate) struct StreamState {
    pub(crate) head: PartitionHead,
    pub(crate) retention: Retention,
    pub(crate) deny_purge: bool,
}

/// The partitions' streams, and which of them are known to exist.
#[derive(Debug)]
pub(crate) struct Streams {
    pub(crate) api: Api,
    config: JetStreamConfig,
    known: Mutex<HashSet<PartitionName>>,
}

impl Streams {
    pub(crate) fn new(api: Api, config: JetStreamConfig) -> Self {
        Self {
            api,
            config,
            known: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    fn is_known(&self, partition: &PartitionName) -> bool {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(partition)
    }

    fn mark_known(&self, partition: &PartitionName) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(partition.clone());
    }

    /// The stream's state, or `None` if it does not exist.
    pub(crate) async fn state(&self, partition: &PartitionName) -> Result<Option<StreamState>> {
        let stream = name::stream_name(partition.as_str());
        let subject = format!("$JS.API.STREAM.INFO.{stream}");
        match self
            .api
            .call("stream info", &stream, &subject, &json!({}))
            .await?
        {
            Ok(info) => {
                let state = parse_info(partition, &stream, &info)?;
                self.mark_known(partition);
                Ok(Some(state))
            }
            Err(e) if e.err_code == codes::STREAM_NOT_FOUND => Ok(None),
            Err(e) => Err(e.refused("stream info", &stream)),
        }
    }

    /// Makes sure the stream of `partition` exists, creating it with the partition's
    /// retention (or `retention`, when given) if it does not.
    pub(crate) async fn ensure(
        &self,
        partition: &PartitionName,
        retention: Option<Retention>,
    ) -> Result<()> {
        if self.is_known(partition) {
            return Ok(());
        }
        if self.state(partition).await?.is_some() {
            return Ok(());
        }
        let stream = name::stream_name(partition.as_str());
        let retention = retention.unwrap_or_else(|| self.config.retention_of(partition));
        let body = self.stream_config(partition, &stream, retention);
        let subject = format!("$JS.API.STREAM.CREATE.{stream}");
        match self
            .api
            .call("create stream", &stream, &subject, &body)
            .await?
        {
            Ok(info) => {
                parse_info(partition, &stream, &info)?;
                tracing::info!(partition = %partition, stream, replicas = self.config.replicas, "stream created");
            }
            // Another node created it meanwhile (with its own settings): use it as it is.
            Err(e) if e.err_code == codes::STREAM_NAME_IN_USE => {
                self.state(partition).await?;
            }
            Err(e) => return Err(e.refused("create stream", &stream)),
        }
        self.mark_known(partition);
        Ok(())
    }

    /// The configuration Draft creates the stream of `partition` with.
    fn stream_config(&self, partition: &PartitionName, stream: &str, r: Retention) -> Value {
        let max_age = r.max_age.unwrap_or(Duration::ZERO);
        let window = if max_age.is_zero() {
            DUPLICATE_WINDOW
        } else {
            DUPLICATE_WINDOW.min(max_age)
        };
        json!({
            "name": stream,
            "subjects": [name::subject(stream)],
            "retention": "limits",
            "storage": "file",
            "num_replicas": self.config.replicas,
            "discard": "old",
            "max_msgs": -1,
            "max_bytes": r.max_bytes.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            "max_age": nanos(max_age),
            "max_msg_size": -1,
            "duplicate_window": nanos(window),
            "allow_direct": true,
            "allow_atomic": true,
            "deny_delete": true,
            "deny_purge": !self.config.trimmable.contains(partition),
            "metadata": { PARTITION_KEY: partition.as_str() },
        })
    }

    /// Sets the retention of `partition`'s stream (creating it with that retention if it
    /// does not exist yet).
    pub(crate) async fn set_retention(
        &self,
        partition: &PartitionName,
        retention: Retention,
    ) -> Result<()> {
        if self.state(partition).await?.is_none() {
            return self.ensure(partition, Some(retention)).await;
        }
        let stream = name::stream_name(partition.as_str());
        let subject = format!("$JS.API.STREAM.INFO.{stream}");
        let info = match self
            .api
            .call("stream info", &stream, &subject, &json!({}))
            .await?
        {
            Ok(info) => info,
            Err(e) => return Err(e.refused("stream info", &stream)),
        };
        let mut config = info.get("config").cloned().ok_or_else(|| Error::Protocol {
            op: "stream info",
            reason: "no config in the reply".into(),
        })?;
        let fresh = self.stream_config(partition, &stream, retention);
        for key in ["max_age", "max_bytes", "duplicate_window"] {
            config[key] = fresh[key].clone();
        }
        let subject = format!("$JS.API.STREAM.UPDATE.{stream}");
        match self
            .api
            .call("set retention", &stream, &subject, &config)
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) => Err(e.refused("set retention", &stream)),
        }
    }

    /// The heads of every partition Draft made a stream for, sorted by name.
    pub(crate) async fn partitions(&self) -> Result<Vec<PartitionHead>> {
        let mut heads = Vec::new();
        let mut offset = 0u64;
        loop {
            let body = json!({"offset": offset, "subject": format!("{}>", name::SUBJECT_PREFIX)});
            let reply = match self
                .api
                .call("list streams", "*", "$JS.API.STREAM.LIST", &body)
                .await?
            {
                Ok(reply) => reply,
                Err(e) => return Err(e.refused("list streams", "*")),
            };
            let streams = reply
                .get("streams")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for info in &streams {
                let Some(partition) = info
                    .pointer(&format!(
                        "/config/metadata/{}",
                        PARTITION_KEY.replace('/', "~1")
                    ))
                    .and_then(Value::as_str)
                    .and_then(|p| PartitionName::new(p).ok())
                else {
                    continue;
                };
                let stream = name::stream_name(partition.as_str());
                heads.push(parse_info(&partition, &stream, info)?.head);
            }
            offset += streams.len() as u64;
            let total = reply.get("total").and_then(Value::as_u64).unwrap_or(0);
            if streams.is_empty() || offset >= total {
                break;
            }
        }
        heads.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(heads)
    }

    /// Removes the messages of `partition` before `before` (`seq < before + 1`).
    pub(crate) async fn purge_before(
        &self,
        partition: &PartitionName,
        before: Offset,
    ) -> Result<u64> {
        let stream = name::stream_name(partition.as_str());
        let subject = format!("$JS.API.STREAM.PURGE.{stream}");
        let body = json!({"seq": before.0 + 1});
        match self.api.call("trim", &stream, &subject, &body).await? {
            Ok(reply) => Ok(reply.get("purged").and_then(Value::as_u64).unwrap_or(0)),
            Err(e) => Err(e.refused("trim", &stream)),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A JetStream RFC 3339 time as a Draft timestamp (`None` for the zero time of an empty stream).
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = time.timestamp_nanos_opt()?;
    u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map(Timestamp::from_unix_nanos)
}

/// A stream info reply, checked to be the stream of `partition`.
pub(crate) fn parse_info(
    partition: &PartitionName,
    stream: &str,
    info: &Value,
) -> Result<StreamState> {
    let found = info
        .pointer("/config/metadata")
        .and_then(|m| m.get(PARTITION_KEY))
        .and_then(Value::as_str);
    if found != Some(partition.as_str()) {
        return Err(Error::ForeignStream {
            stream: stream.to_owned(),
            partition: partition.to_string(),
            found: found.map(str::to_owned),
        });
    }
    let state = info.get("state").ok_or_else(|| Error::Protocol {
        op: "stream info",
        reason: "no state in the reply".into(),
    })?;
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (first_seq, last_seq) = (number(state, "first_seq"), number(state, "last_seq"));
    let config = &info["config"];
    let max_age = number(config, "max_age");
    let max_bytes = config
        .get("max_bytes")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    Ok(StreamState {
        head: PartitionHead {
            partition: partition.clone(),
            // offset = sequence - 1; an empty stream has first_seq = last_seq + 1 (or 0).
            first: Offset(first_seq.saturating_sub(1).min(last_seq)),
            next: Offset(last_seq),
            bytes: number(state, "bytes"),
            last_append: state
                .get("last_ts")
                .and_then(Value::as_str)
                .and_then(parse_time),
        },
        retention: Retention {
            max_age: (max_age > 0).then(|| Duration::from_nanos(max_age)),
            max_bytes: u64::try_from(max_bytes).ok(),
        },
        deny_purge: config
            .get("deny_purge")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_info_reads_as_a_head() {
        let part = PartitionName::new("orders").expect("name");
        let info = json!({
            "config": {"name": "DRAFT_orders", "max_age": 1_000_000_000u64, "max_bytes": -1,
                "deny_purge": true, "metadata": {"draft.partition": "orders"}},
            "state": {"messages": 3, "bytes": 120, "first_seq": 5, "last_seq": 7,
                "last_ts": "2026-01-02T03:04:05.000000006Z"}
        });
        let state = parse_info(&part, "DRAFT_orders", &info).expect("parses");
        assert_eq!(
            (state.head.first, state.head.next, state.head.count()),
            (Offset(4), Offset(7), 3)
        );
        assert_eq!(state.retention.max_age, Some(Duration::from_secs(1)));
        assert_eq!(state.retention.max_bytes, None);
        assert!(state.deny_purge);
        assert_eq!(
            state.head.last_append.map(Timestamp::as_unix_nanos),
            Some(1_767_323_045_000_000_006)
        );
        let empty = json!({"config": {"metadata": {"draft.partition": "orders"}},
            "state": {"first_seq": 0, "last_seq": 0, "last_ts": "0001-01-01T00:00:00Z"}});
        let head = parse_info(&part, "DRAFT_orders", &empty)
            .expect("parses")
            .head;
        assert_eq!(
            (head.first, head.next, head.last_append),
            (Offset(0), Offset(0), None)
        );
        let trimmed = json!({"config": {"metadata": {"draft.partition": "orders"}},
            "state": {"first_seq": 11, "last_seq": 10}});
        let head = parse_info(&part, "DRAFT_orders", &trimmed)
            .expect("parses")
            .head;
        assert_eq!((head.first, head.next), (Offset(10), Offset(10)));
        let other = json!({"config": {"metadata": {"draft.partition": "other"}}, "state": {}});
        assert!(matches!(
            parse_info(&part, "DRAFT_orders", &other),
            Err(Error::ForeignStream { .. })
        ));
    }
}
