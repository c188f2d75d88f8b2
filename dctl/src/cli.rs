//! The command line, as clap parses it (raw values; `cmd` validates them).

use clap::{Parser, Subcommand};

use crate::cmd::bench::args::BenchArgs;
use crate::cmd::consume::ConsumeArgs;
use crate::cmd::groups::GroupsArgs;
use crate::cmd::kv::KvArgs;
use crate::cmd::log::LogArgs;
use crate::cmd::produce::ProduceArgs;
use crate::cmd::routes::RoutesArgs;
use crate::cmd::run::RunArgs;
use crate::cmd::services::ServicesArgs;
use crate::cmd::status::StatusArgs;
use crate::cmd::token::TokenArgs;
use crate::cmd::up::UpArgs;

/// Draft: service registry, CloudEvents broker and ingress router on one durable log.
#[derive(Debug, Parser)]
#[command(name = "dctl", version, about)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a Draft node: the log, the broker and the API in one process.
    Up(Box<UpArgs>),
    /// Run a manifest's services beside a node, their output prefixed (like foreman).
    Run(RunArgs),
    /// Send one CloudEvent to a channel and print its offset.
    Produce(ProduceArgs),
    /// Print a channel's events, one JSON object per line.
    Consume(ConsumeArgs),
    /// List consumer groups: committed offset, lag, active member and standbys.
    Groups(GroupsArgs),
    /// Load a node and measure it (like `nats bench`): produce, replay, latency, fan-out.
    Bench(BenchArgs),
    /// List services, or one service's instances.
    Services(ServicesArgs),
    /// Read and write the KV store.
    Kv(KvArgs),
    /// The node's status: revision, channels, services.
    Status(StatusArgs),
    /// The audit trail: every control change (or a channel's events).
    Log(LogArgs),
    /// The ingress route table, or why a request takes the route it takes.
    Routes(RoutesArgs),
    /// Make, list and revoke tokens (a node with auth on needs one for every request).
    Token(TokenArgs),
}
