//! [`Output`]: the children's stdout and stderr, read line by line and written to dctl's
//! stdout with each process's prefix, through one bounded queue (a child that writes faster
//! than dctl's stdout is read is held back by its pipe, not buffered).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::run::prefix::{Lines, prefixed};

/// Lines queued for dctl's stdout before the readers wait.
const QUEUE: usize = 256;

/// The bytes read from a pipe at once.
const CHUNK: usize = 8 * 1024;

/// The writer of dctl's stdout, and a handle to give readers.
pub(crate) struct Output {
    lines: mpsc::Sender<Vec<u8>>,
    writer: JoinHandle<()>,
}

impl Output {
    /// Starts the task that writes queued lines to dctl's stdout.
    #[must_use]
    pub(crate) fn stdout() -> Self {
        let (lines, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write(tokio::io::stdout(), rx));
        Self { lines, writer }
    }

    /// Reads `pipe` to its end, passing each line to `on_line` (without its newline) and
    /// writing it after `prefix`.
    pub(crate) fn forward(
        &self,
        pipe: impl AsyncRead + Unpin + Send + 'static,
        prefix: Arc<[u8]>,
        on_line: impl FnMut(&[u8]) + Send + 'static,
    ) {
        tokio::spawn(read(pipe, prefix, self.lines.clone(), on_line));
    }

    /// Waits until every pipe is read to its end and written, for at most `within`: a process
    /// that left the group it was started in may hold a pipe open for ever.
    pub(crate) async fn close(self, within: Duration) {
        drop(self.lines);
        let _ = tokio::time::timeout(within, self.writer).await;
    }
}

/// Copies one pipe into the queue, line by line.
async fn read(
    mut pipe: impl AsyncRead + Unpin,
    prefix: Arc<[u8]>,
    queue: mpsc::Sender<Vec<u8>>,
    mut on_line: impl FnMut(&[u8]),
) {
    let mut lines = Lines::default();
    let mut chunk = vec![0; CHUNK];
    loop {
        // A read error ends the stream as its end does: the process is gone or closed it.
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in lines.push(&chunk[..n]) {
            on_line(&line);
            if queue.send(prefixed(&prefix, &line)).await.is_err() {
                return;
            }
        }
    }
    if let Some(line) = lines.finish() {
        on_line(&line);
        let _ = queue.send(prefixed(&prefix, &line)).await;
    }
}

/// Writes queued lines to `out`, flushing whenever the queue is empty. After a write error
/// (dctl's stdout closed) it goes on taking lines, so the children are never blocked on it.
async fn write(out: impl tokio::io::AsyncWrite + Unpin, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut out = BufWriter::new(out);
    let mut broken = false;
    while let Some(line) = queue.recv().await {
        if broken {
            continue;
        }
        broken = out.write_all(&line).await.is_err();
        if queue.is_empty() && !broken {
            broken = out.flush().await.is_err();
        }
    }
    let _ = out.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_of_a_pipe_come_out_prefixed_and_seen() {
        let (tx, mut rx) = mpsc::channel(8);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        read(
            &b"one\ntwo\nthree"[..],
            Arc::from(&b"s | "[..]),
            tx,
            move |line: &[u8]| record.lock().expect("lock").push(line.to_vec()),
        )
        .await;
        let mut out = Vec::new();
        while let Some(line) = rx.recv().await {
            out.extend(line);
        }
        assert_eq!(out, b"s | one\ns | two\ns | three\n");
        assert_eq!(seen.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn the_writer_flushes_everything_it_was_given() {
        let (tx, rx) = mpsc::channel(8);
        let (mut ours, theirs) = tokio::io::duplex(1024);
        let writer = tokio::spawn(write(theirs, rx));
        tx.send(b"a\n".to_vec()).await.expect("send");
        tx.send(b"b\n".to_vec()).await.expect("send");
        drop(tx);
        writer.await.expect("writer");
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"a\nb\n");
    }
}
