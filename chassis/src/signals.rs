//! SIGTERM and SIGINT: the first starts the shutdown, a second exits at once.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves at the first SIGTERM or SIGINT.
pub(crate) async fn first() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the service runs until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Exits the process with status 1 at the next SIGTERM or SIGINT.
pub(crate) async fn second_exits() {
    first().await;
    eprintln!("second signal: exiting at once");
    std::process::exit(1);
}
