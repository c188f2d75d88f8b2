//! `dctl bench`: a load generator for a node, like `nats bench`.
//!
//! - `produce`: N keep-alive HTTP connections, each sending one request at a time (single
//!   events or batches) as fast as the node acknowledges.
//! - `consume`: one WebSocket replaying a channel.
//! - `latency` and `fanout`: consumers from `latest` and a producer at a fixed rate that puts
//!   its send time in each event; latency is receive time minus send time (one clock: the
//!   producer and the consumers are this process).
//!
//! Every run is bounded in time (`--duration`, at most an hour) and in events (`--count`), and
//! ends with a plain-text summary on stdout. Errors seen under load are counted and shown in
//! the summary, then fail the command (exit 1, one line on stderr).

pub(crate) mod args;
mod conn;
mod consume;
mod histogram;
mod live;
mod produce;
mod report;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, bail};
use draft_catalyst::wire::{BATCH, ErrorBody, STRUCTURED, SUBPROTOCOL};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use args::{BENCH_MAX_SECS, BenchArgs, BenchCommon, BenchScenario};

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        BenchScenario::Produce(args) => produce::run(args).await,
        BenchScenario::Consume(args) => consume::run(args).await,
        BenchScenario::Latency(args) => {
            live::run(live::Live {
                name: "latency",
                consumers: 1,
                rate: args.rate,
                common: args.common,
            })
            .await
        }
        BenchScenario::Fanout(args) => {
            live::run(live::Live {
                name: "fanout",
                consumers: args.consumers as usize,
                rate: args.rate,
                common: args.common,
            })
            .await
        }
    }
}

/// The node under load and what to send it.
#[derive(Debug, Clone)]
struct Target {
    /// `http://host:port`, no trailing slash.
    base: String,
    channel: String,
    /// This run's tag: in every event's `id` and `source`, so runs never collide (the node
    /// drops repeated `source` + `id`) and consumers can select this run's events.
    run: String,
    /// Bytes of data per event.
    size: usize,
    /// The token sent with every request and upgrade (`--token`), if any.
    token: Option<String>,
}

impl Target {
    fn new(common: &BenchCommon) -> anyhow::Result<Self> {
        let base = common.remote.url.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).with_context(|| format!("invalid --url {base:?}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--url must be http:// or https://, not {base:?}");
        }
        let host = url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !common.allow_remote {
            bail!(
                "{base} is not on this machine: pass --allow-remote to load a remote node \
                 (check DRAFT_URL)"
            );
        }
        let channel = &common.channel;
        if channel.is_empty()
            || channel.starts_with(['.', '-'])
            || !channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            bail!("invalid channel {channel:?}: use lowercase letters, digits, '.', '_' and '-'");
        }
        Ok(Self {
            base,
            channel: channel.clone(),
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            size: common.size as usize,
            token: common.remote.token()?,
        })
    }

    /// A Catalyst client of the node, with the token.
    fn client(&self) -> draft_catalyst::client::Client {
        draft_catalyst::client::Client::new(&self.base).with_token(self.token.clone())
    }

    /// The `Authorization` header value, if there is a token.
    fn authorization(&self) -> anyhow::Result<Option<HeaderValue>> {
        self.token
            .as_ref()
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .context("the token is not a valid header value")
    }

    fn events_url(&self) -> String {
        format!("{}/v1/channels/{}/events", self.base, self.channel)
    }

    fn source(&self) -> String {
        format!("/dctl/bench/{}", self.run)
    }

    /// Fails with one clear line when the node does not answer.
    async fn preflight(&self) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.base);
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("cannot build an HTTP client")?
            .get(&url)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the node at {}: {}", self.base, root(&e)))?;
        if !response.status().is_success() {
            bail!(
                "the node at {} is not healthy: GET /healthz answered {}",
                self.base,
                response.status()
            );
        }
        Ok(())
    }

    /// An HTTP client for producing: keep-alive, no Nagle, the token on every request.
    fn http(&self, connections: usize) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = self.authorization()? {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build an HTTP client")
    }

    /// Opens a consumer WebSocket; `query` without the `?`. tungstenite zeroes its whole read
    /// buffer before every read, so live consumers (a few events per read) want a small one
    /// and a replay (full reads) a large one.
    async fn consume(&self, query: &str, read_buffer: usize) -> anyhow::Result<Socket> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let url = format!("{ws_base}/v1/channels/{}/consume?{query}", self.channel);
        let mut request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("invalid consumer URL {url}"))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Some(value) = self.authorization()? {
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async_with_config(
            request,
            Some(WebSocketConfig::default().read_buffer_size(read_buffer)),
            true,
        )
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                anyhow::anyhow!(
                    "the node refused the consumer (HTTP {}): {}",
                    response.status().as_u16(),
                    api_message(&body)
                )
            }
            e => anyhow::anyhow!("cannot open a consumer at {}: {}", self.base, root(&e)),
        })?;
        Ok(socket)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Closes a consumer politely, without waiting long.
async fn close(mut socket: Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = socket.close(None).await;
        // Read until the node's close frame (or anything that ends the stream).
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A WebSocket close frame, for a message.
fn close_reason(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    frame.map_or_else(
        || "no reason".to_owned(),
        |f| format!("{} ({})", f.reason, u16::from(f.code)),
    )
}

/// The innermost cause: reqwest and tungstenite wrap the interesting part.
fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let (outer, inner) = (e.to_string(), cause.to_string());
    if outer == inner {
        outer
    } else {
        format!("{outer}: {inner}")
    }
}

/// The `message` of a JSON error body, else the body.
fn api_message(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map_or_else(|_| body.trim().to_owned(), |b| b.error.message)
}

/// Event JSON, written by hand: the load generator must be cheaper than the node.
///
/// `data` is `{"bench_seq":N,"bench_ns":T,"pad":"xx…"}`, padded to `size` bytes; `bench_ns` is
/// the send time in nanoseconds since the run started. The `id` is `RUN-N-T`: it comes early
/// in a delivered event, so consumers read N and T there without scanning the data.
#[derive(Debug, Clone)]
struct Events {
    run: String,
    source: String,
    size: usize,
    pad: String,
}

impl Events {
    fn new(target: &Target) -> Self {
        Self {
            run: target.run.clone(),
            source: target.source(),
            size: target.size,
            pad: "x".repeat(target.size),
        }
    }

    /// Appends one event to `out`.
    fn write(&self, out: &mut String, seq: u64, ns: u64) {
        let mut data = String::with_capacity(64);
        let _ = write!(data, r#"{{"bench_seq":{seq},"bench_ns":{ns},"pad":""#);
        let pad = self.size.saturating_sub(data.len() + 2);
        let _ = write!(
            out,
            r#"{{"specversion":"1.0","id":"{run}-{seq}-{ns}","source":"{source}","type":"dctl.bench","datacontenttype":"application/json","data":{data}{pad}"}}}}"#,
            run = self.run,
            source = self.source,
            pad = &self.pad[..pad],
        );
    }

    /// A request body of `n` events from `first` (a batch when `batch`), and its content type.
    fn body(&self, first: u64, n: u64, batch: bool, started: Instant) -> (String, &'static str) {
        let mut out = String::with_capacity((self.size + 200) * n as usize + 2);
        let ns = nanos_since(started);
        if !batch {
            self.write(&mut out, first, ns);
            return (out, STRUCTURED);
        }
        out.push('[');
        for seq in first..first + n {
            if seq > first {
                out.push(',');
            }
            self.write(&mut out, seq, ns);
        }
        out.push(']');
        (out, BATCH)
    }
}

fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The sequence number and send time of a delivered bench event, from its `id` (`RUN-N-T`).
fn stamp(text: &str) -> Option<(u64, u64)> {
    const ID: &str = "\"id\":\"";
    let at = head(text, 256).find(ID).or_else(|| text.find(ID))? + ID.len();
    let id = &text[at..];
    let id = &id[..id.find('"')?];
    let mut parts = id.splitn(3, '-').skip(1);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The unsigned integer after `key` (for example `"bench_seq":`) in `text`.
fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].trim_start();
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// At most the first `n` bytes of `text`, cut at a character boundary.
fn head(text: &str, n: usize) -> &str {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How long to run: `--duration`, else `default` seconds when `--count` is not given, else
/// the longest allowed.
fn run_time(common: &BenchCommon, default: f64) -> Duration {
    let secs = match (common.duration, common.count) {
        (Some(d), _) => d,
        (None, None) => default,
        (None, Some(_)) => BENCH_MAX_SECS,
    };
    Duration::from_secs_f64(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(size: usize) -> Target {
        Target {
            base: "http://127.0.0.1:7070".into(),
            channel: "bench".into(),
            run: "abc".into(),
            size,
            token: None,
        }
    }

    /// The first event of a batch body.
    fn one_of(body: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        value[0].to_string()
    }

    #[test]
    fn events_are_valid_json_of_the_asked_size() {
        let events = Events::new(&target(200));
        let (body, ct) = events.body(7, 3, true, Instant::now());
        assert_eq!(ct, BATCH);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items.len(), 3);
        let id = items[1]["id"].as_str().unwrap();
        assert!(id.starts_with("abc-8-"), "{id}");
        let delivered = format!(
            "{{\"draftchannel\":\"bench\",\"draftoffset\":3,{}",
            &one_of(&body)[1..]
        );
        let (seq, ns) = stamp(&delivered).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(Some(ns), field(&delivered, "\"bench_ns\":"));
        assert_eq!(items[1]["source"], "/dctl/bench/abc");
        assert_eq!(serde_json::to_string(&items[1]["data"]).unwrap().len(), 200);
        assert_eq!(field(&body, "\"bench_seq\":"), Some(7));
        let (one, ct) = Events::new(&target(0)).body(1, 1, false, Instant::now());
        assert_eq!(ct, STRUCTURED);
        assert!(serde_json::from_str::<serde_json::Value>(&one).unwrap()["data"].is_object());
    }

    #[test]
    fn remote_targets_need_a_flag() {
        use clap::Parser;
        let parse = |url: &str, extra: &[&str]| {
            let mut argv = vec!["dctl", "bench", "produce", "--url", url];
            argv.extend_from_slice(extra);
            let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
            let crate::cli::Command::Bench(BenchArgs {
                scenario: BenchScenario::Produce(p),
            }) = cli.command
            else {
                panic!("not bench produce")
            };
            Target::new(&p.common).map(|_| ())
        };
        assert!(parse("http://127.0.0.1:7070", &[]).is_ok());
        assert!(parse("http://localhost:1", &[]).is_ok());
        assert!(parse("http://[::1]:1", &[]).is_ok());
        assert!(parse("http://10.0.0.1:7070", &[]).is_err());
        assert!(parse("http://10.0.0.1:7070", &["--allow-remote"]).is_ok());
        assert!(parse("http://127.0.0.1:7070", &["--channel", "Bad"]).is_err());
    }
}
