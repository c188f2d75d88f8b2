//! [`Validity`]: how long a checked request's token stays good, for what outlives the check.
//!
//! A request is checked once, when it arrives. A WebSocket then lives on for hours, so a
//! token revoked (or expired) meanwhile would keep its sockets. A [`Grant`](super::Grant)
//! therefore carries a `Validity`: the token's expiry and a way to ask again whether it is
//! still good, asked whenever the node's tokens change. The socket loop
//! ([`crate::ws::serve_socket`]) waits on [`Validity::lapsed`] beside its other events and
//! closes the socket with 1008 when it resolves.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// Asks again whether the token is still good (not revoked, not replaced).
pub type StillValid = Arc<dyn Fn() -> bool + Send + Sync>;

/// Why a token stopped being good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// It was revoked (or its name now belongs to another token).
    Revoked,
    /// It reached its expiry.
    Expired,
}

impl Lapse {
    /// The reason a close frame gives.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Revoked => "token revoked",
            Self::Expired => "token expired",
        }
    }
}

/// How long a token stays good; see the module.
#[derive(Clone)]
pub struct Validity {
    /// Moves on whenever the node's tokens change.
    changes: watch::Receiver<u64>,
    still_valid: StillValid,
    expires_at: Option<SystemTime>,
}

impl fmt::Debug for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validity")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Validity {
    /// A token good until `expires_at` (`None`: until revoked), asked again with
    /// `still_valid` whenever `changes` moves on.
    #[must_use]
    pub fn new(
        changes: watch::Receiver<u64>,
        still_valid: StillValid,
        expires_at: Option<SystemTime>,
    ) -> Self {
        Self {
            changes,
            still_valid,
            expires_at,
        }
    }

    /// Resolves when the token stops being good; never, while it stays good (or once the
    /// node's tokens can no longer change).
    pub async fn lapsed(&mut self) -> Lapse {
        let expiry = async {
            match self.expires_at {
                Some(at) => {
                    let left = at
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        let revoked = async {
            loop {
                if !(self.still_valid)() {
                    return;
                }
                if self.changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = expiry => Lapse::Expired,
            () = revoked => Lapse::Revoked,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn it_lapses_when_a_change_finds_the_token_gone_and_at_its_expiry() {
        let (tx, rx) = watch::channel(0);
        let good = Arc::new(AtomicBool::new(true));
        let check = Arc::clone(&good);
        let mut validity = Validity::new(rx, Arc::new(move || check.load(Ordering::SeqCst)), None);
        let waiting = tokio::spawn(async move { validity.lapsed().await });
        tx.send_replace(1);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a change that leaves the token good ends nothing"
        );
        good.store(false, Ordering::SeqCst);
        tx.send_replace(2);
        assert_eq!(waiting.await.expect("task"), Lapse::Revoked);

        let (_tx, rx) = watch::channel(0);
        let soon = SystemTime::now() + Duration::from_millis(20);
        let mut validity = Validity::new(rx, Arc::new(|| true), Some(soon));
        assert_eq!(validity.lapsed().await, Lapse::Expired);
    }

    #[tokio::test]
    async fn a_token_already_revoked_lapses_at_once_and_a_dropped_sender_ends_nothing() {
        let (tx, rx) = watch::channel(0);
        let mut validity = Validity::new(rx, Arc::new(|| false), None);
        assert_eq!(validity.lapsed().await, Lapse::Revoked);

        let (tx2, rx) = watch::channel(0);
        drop(tx2);
        let mut validity = Validity::new(rx, Arc::new(|| true), None);
        let waited = tokio::time::timeout(Duration::from_millis(50), validity.lapsed()).await;
        assert!(waited.is_err(), "no lapse without a change or an expiry");
        drop(tx);
    }
}
