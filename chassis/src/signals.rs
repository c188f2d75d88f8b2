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

/// Listens from now on; once `armed` resolves (the shutdown started), exits the process with
/// status 1 at the next SIGTERM or SIGINT. Listening starts before the first signal, so a
/// second one that follows closely is never missed.
pub(crate) async fn second_exits(armed: impl Future<Output = ()>) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    armed.await;
    // The signal that started the shutdown may be queued on these streams too: take it.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1), async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("second signal: exiting at once");
    std::process::exit(1);
}
