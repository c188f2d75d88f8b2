//! Writes that run on a node without pause while a test breaks things, and a record of what
//! each write was answered: single events, batches and If-Match KV puts, each retried with
//! the same ids (or the same expected revision) until it is acknowledged, as a careful client
//! would, plus a live consumer that follows the channel and reconnects after the offset it
//! saw last.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use draft_catalyst::client::{Client, ClientError, ReadOptions};
use futures::StreamExt;
use serde_json::Value;

use crate::event;

/// The pause after a failed write before it is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A write the node did not acknowledge.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The phase of the test the write was sent in.
    pub phase: u8,
    /// The phase it failed in.
    pub ended: u8,
    /// The writer's node name.
    pub node: String,
    /// The HTTP status (`None`: the node could not be reached).
    pub status: Option<u16>,
    /// The error code or the reason.
    pub what: String,
}

/// Everything the writers were told, shared by all of them.
#[derive(Debug, Default)]
pub struct Tally {
    /// The test's phase, stamped on each failure.
    pub phase: AtomicU8,
    /// Single events acknowledged: id and offset.
    pub events: Mutex<Vec<(String, u64)>>,
    /// Batches sent: their ids, and the first offset once acknowledged.
    pub batches: Mutex<Vec<(Vec<String>, Option<u64>)>>,
    /// KV puts acknowledged: key, value and revision.
    pub puts: Mutex<Vec<(String, String, u64)>>,
    /// Writes that failed.
    pub failures: Mutex<Vec<Failure>>,
}

impl Tally {
    /// How many writes of each kind were acknowledged: events, batches, puts.
    #[must_use]
    pub fn acknowledged(&self) -> (usize, usize, usize) {
        let batches = lock(&self.batches);
        (
            lock(&self.events).len(),
            batches.iter().filter(|b| b.1.is_some()).count(),
            lock(&self.puts).len(),
        )
    }

    /// The phase now: stamped on a write when it is sent.
    fn now(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    fn fail(&self, phase: u8, node: &str, error: &ClientError) {
        let (status, what) = match error {
            ClientError::Api { status, code, .. } => (Some(*status), code.clone()),
            other => (None, other.to_string()),
        };
        lock(&self.failures).push(Failure {
            phase,
            ended: self.now(),
            node: node.to_owned(),
            status,
            what,
        });
    }
}

/// One node's writers: where, under which name, and when to stop.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The node's base URL.
    pub url: String,
    /// A name for the node, in ids, keys and failures.
    pub node: String,
    /// The channel written to.
    pub channel: String,
    /// Set to stop the writers (each stops after its current write).
    pub stop: Arc<AtomicBool>,
    /// What they were told.
    pub tally: Arc<Tally>,
}

impl Writer {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Single events `s-{node}-{n}`, one after another; a failed one is sent again with its
    /// id until it is acknowledged (or the writer stops).
    pub async fn events(self) {
        let client = Client::new(&self.url);
        let mut n = 0;
        while !self.stopped() {
            let id = format!("s-{}-{n}", self.node);
            let phase = self.tally.now();
            match client.produce(&self.channel, &event(&id, "loss")).await {
                Ok(r) => {
                    lock(&self.tally.events).push((id, r.offsets[0]));
                    n += 1;
                }
                Err(e) => {
                    self.tally.fail(phase, &self.node, &e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Batches of `size` events `b-{node}-{n}-{i}`, one after another, each sent again with
    /// its ids until it is acknowledged (or the writer stops).
    pub async fn batches(self, size: usize) {
        let client = Client::new(&self.url);
        let mut n = 0;
        while !self.stopped() {
            let ids: Vec<String> = (0..size)
                .map(|i| format!("b-{}-{n}-{i}", self.node))
                .collect();
            let at = {
                let mut batches = lock(&self.tally.batches);
                batches.push((ids.clone(), None));
                batches.len() - 1
            };
            let events: Vec<Value> = ids.iter().map(|id| event(id, "loss")).collect();
            loop {
                let phase = self.tally.now();
                match client.produce_batch(&self.channel, &events).await {
                    Ok(r) => {
                        lock(&self.tally.batches)[at].1 = Some(r.offsets[0]);
                        n += 1;
                        break;
                    }
                    Err(e) => {
                        self.tally.fail(phase, &self.node, &e);
                        if self.stopped() {
                            return;
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
    }

    /// Puts `{node}-{n}` into `key` one after another, each with `If-Match` of the revision
    /// the last one was acknowledged at. A failed put is sent again with the same `If-Match`;
    /// a 412 means an earlier attempt landed unacknowledged, or another writer won: the key
    /// is read again and the writer goes on from there.
    pub async fn puts(self, key: String) {
        let http = reqwest::Client::new();
        let url = format!("{}/v1/kv/{key}", self.url);
        let mut revision: Option<u64> = None;
        let mut n = 0;
        while !self.stopped() {
            let value = format!("{}-{n}", self.node);
            let mut request = http.put(&url).body(value.clone());
            if let Some(r) = revision {
                request = request.header("if-match", format!("\"{r}\""));
            }
            let phase = self.tally.now();
            let answer = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.tally
                        .fail(phase, &self.node, &connect_error(&self.url, &e));
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let status = answer.status().as_u16();
            let header_revision = revision_of(&answer);
            match (status, header_revision) {
                (200 | 201, Some(r)) => {
                    lock(&self.tally.puts).push((key.clone(), value, r));
                    revision = Some(r);
                    n += 1;
                }
                (412, _) => match http.get(&url).send().await.ok().and_then(|r| etag_of(&r)) {
                    Some(current) => {
                        revision = Some(current);
                        n += 1;
                    }
                    None => tokio::time::sleep(RETRY_PAUSE).await,
                },
                _ => {
                    let body = answer.text().await.unwrap_or_default();
                    self.tally
                        .fail(phase, &self.node, &ClientError::from_answer(status, &body));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Follows the channel from its start and pushes each delivered offset into `seen`; after
    /// a closed connection it consumes again after the last offset it saw. Stops when told
    /// to.
    pub async fn follow(self, seen: Arc<Mutex<Vec<u64>>>) {
        let client = Client::new(&self.url);
        while !self.stopped() {
            let from = lock(&seen).last().map(|o| o + 1);
            let options = ReadOptions {
                from: Some(from.map_or_else(|| "earliest".to_owned(), |o| o.to_string())),
                ..Default::default()
            };
            let Ok(mut stream) = client.consume(&self.channel, &options).await else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            while !self.stopped() {
                let next = tokio::time::timeout(RETRY_PAUSE, stream.next()).await;
                match next {
                    Err(_) => {}
                    Ok(Some(Ok(text))) => {
                        let event: Value = serde_json::from_str(&text).unwrap_or_default();
                        if let Some(offset) = event["draftoffset"].as_u64() {
                            lock(&seen).push(offset);
                        }
                    }
                    Ok(_) => break,
                }
            }
        }
    }
}

/// A lock that a panicked writer left is still good: each write is recorded whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn connect_error(url: &str, e: &reqwest::Error) -> ClientError {
    ClientError::Connect {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// The revision in an answer's `ETag` (`"N"`).
fn etag_of(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_matches('"').parse().ok())
}

/// The `draft-revision` header of an answer.
fn revision_of(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("draft-revision")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
