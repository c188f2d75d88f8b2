//! [`Held`]: a connection's stream together with the slots it occupies.
//!
//! hyper's connection future ends when a request is upgraded (a WebSocket): the stream is
//! handed to the upgrade's handler, and whatever the accept loop held for the connection
//! was released there, so WebSockets did not count. The slots travel with the stream
//! instead, through the upgrade, and are given back when the last owner of the stream (the
//! connection, or the WebSocket's handler) drops it.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::per_address::AddressGuard;

/// The slots one connection occupies.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the permits are never read: they are held for their drop, which frees the slots"
)]
pub(crate) struct Slots {
    /// Its place under `max_connections`.
    pub(crate) connection: OwnedSemaphorePermit,
    /// Its place under its address's limit.
    pub(crate) address: AddressGuard,
    /// Its place under `max_websockets`, set when a request upgrades it.
    pub(crate) websocket: Arc<OnceLock<OwnedSemaphorePermit>>,
}

/// A stream and the [`Slots`] it holds until it is dropped.
#[derive(Debug)]
pub(crate) struct Held<S> {
    io: S,
    _slots: Slots,
}

impl<S> Held<S> {
    pub(crate) fn new(io: S, slots: Slots) -> Self {
        Self { io, _slots: slots }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // hyper writes a response's head and body with one syscall when the stream can.
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
