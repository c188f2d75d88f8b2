//! `dctl`: the Draft command-line tool. `dctl up` runs a whole node; `dctl run` runs a
//! manifest's services beside one; the other commands talk to one. Exit code 0 on success, 1
//! on error with one line on stderr.

mod cli;
mod cmd;
mod output;
mod remote;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc (see BENCHMARKS.md): buffers allocated on the request
/// threads are freed on the log's writer thread and back, which contends on glibc's arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Output piped into `head` that closes early is not an error (as in ripgrep).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
