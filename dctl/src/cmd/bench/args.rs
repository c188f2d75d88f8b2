//! `dctl bench`'s scenarios and flags, as clap parses them.

use clap::{Args, Subcommand, ValueEnum};

use crate::remote::Remote;

/// The longest a benchmark may run, in seconds.
pub(crate) const BENCH_MAX_SECS: f64 = 3600.0;

/// `dctl bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The scenario.
    #[command(subcommand)]
    pub(crate) scenario: BenchScenario,
}

/// `dctl bench` scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchScenario {
    /// Keep-alive HTTP connections producing as fast as the node acknowledges (closed loop),
    /// or pipelined WebSocket producers (`--transport ws`).
    Produce(BenchProduceArgs),
    /// One WebSocket replaying a channel (default: every event stored when it starts).
    Consume(BenchConsumeArgs),
    /// Produce-to-consume latency: one consumer from latest, a producer at a fixed rate.
    Latency(BenchLatencyArgs),
    /// Many consumers of one channel, a producer at a fixed rate: every event to every
    /// consumer, and how late.
    Fanout(BenchFanoutArgs),
}

/// What every `dctl bench` scenario takes.
#[derive(Debug, Args)]
pub(crate) struct BenchCommon {
    /// The channel.
    #[arg(long, default_value = "bench")]
    pub(crate) channel: String,
    /// Bytes of JSON data per event.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub(crate) size: u64,
    /// How long to run, in seconds (at most 3600).
    #[arg(long, value_parser = parse_bench_secs)]
    pub(crate) duration: Option<f64>,
    /// How many events (whichever of --count and --duration comes first stops the run).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub(crate) count: Option<u64>,
    /// Allow a node that is not on this machine (loopback) as the target.
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// The node.
    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// How `dctl bench produce` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// `POST …/events`, one request at a time per connection.
    Http,
    /// `GET …/produce` WebSockets, each pipelining up to `--window` frames.
    Ws,
}

/// `dctl bench produce`.
#[derive(Debug, Args)]
pub(crate) struct BenchProduceArgs {
    /// Concurrent connections: keep-alive HTTP, each sending one request at a time, or
    /// WebSockets, each with up to `--window` frames in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) connections: u64,
    /// Events per request or frame: 1 sends one structured event, more sends a batch (a JSON
    /// array).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) batch: u64,
    /// `http` or `ws`.
    #[arg(long, value_enum, default_value_t = Transport::Http)]
    pub(crate) transport: Transport,
    /// With `--transport ws`: frames in flight per connection (the node's default window).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub(crate) window: u64,
    /// Common options.
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

/// `dctl bench consume`.
#[derive(Debug, Args)]
pub(crate) struct BenchConsumeArgs {
    /// Where to start: earliest, latest or an offset (with latest, give --count).
    #[arg(long, default_value = "earliest")]
    pub(crate) from: String,
    /// Replay as the member of this new consumer group (it must not exist yet), sending
    /// acknowledgements: measures a group consumer against plain replay.
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// With --group: acknowledge every N events (and the last one).
    #[arg(long, requires = "group", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) ack_every: u64,
    /// Common options.
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

/// `dctl bench latency`.
#[derive(Debug, Args)]
pub(crate) struct BenchLatencyArgs {
    /// Events per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) rate: u64,
    /// Common options.
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

/// `dctl bench fanout`.
#[derive(Debug, Args)]
pub(crate) struct BenchFanoutArgs {
    /// WebSocket consumers of the channel.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) consumers: u64,
    /// Events per second.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) rate: u64,
    /// Common options.
    #[command(flatten)]
    pub(crate) common: BenchCommon,
}

fn parse_bench_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs > 0.0 && secs <= BENCH_MAX_SECS {
        Ok(secs)
    } else {
        Err(format!(
            "must be more than 0 and at most {BENCH_MAX_SECS} seconds"
        ))
    }
}
