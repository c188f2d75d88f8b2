//! One module per command; `run` dispatches.

pub(crate) mod bench;
pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod kv;
pub(crate) mod log;
pub(crate) mod produce;
pub(crate) mod routes;
pub(crate) mod run;
pub(crate) mod services;
pub(crate) mod status;
pub(crate) mod token;
pub(crate) mod up;

use crate::cli::{Cli, Command};

/// Runs the command line's command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            init_tracing();
            up::run(*args).await
        }
        Command::Run(args) => run::run(args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Groups(args) => groups::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Services(args) => services::run(args).await,
        Command::Kv(args) => kv::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Log(args) => log::run(args).await,
        Command::Routes(args) => routes::run(args).await,
        Command::Token(args) => token::run(args).await,
    }
}

/// Logs to stderr; `RUST_LOG` chooses what (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
