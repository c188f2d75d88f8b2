//! One keep-alive HTTP/1.1 connection for the produce load generators: the request written
//! straight to the socket, the answer parsed with `httparse`.
//!
//! The load generator shares the machine with the node it measures, so its own cost per request
//! matters: with reqwest (URL parsing, header maps and pool bookkeeping per request) it took
//! ~22 µs of CPU a request, about two thirds of what the node spends serving it; on hyper's
//! client connection (a task of its own per connection, a channel hop and a wake-up each way
//! per request) ~11 µs; written directly, as wrk does, ~6 µs.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of an answer's head (status line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers an answer may have.
const MAX_HEADERS: usize = 32;

/// A connection to one URL, opened on first use and reopened after a failure.
pub(super) struct Conn {
    /// `host:port` to connect to (and the `Host` header).
    authority: String,
    /// The request line and the `Host` header, the same for every request.
    head: String,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    /// The request being written (reused).
    out: Vec<u8>,
}

impl Conn {
    /// A connection for POSTs to `url` (`http://host:port/path`).
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        if parsed.scheme() != "http" {
            bail!("the load generator speaks plain http://, not {url:?}");
        }
        let host = parsed.host_str().context("the URL has no host")?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let head = format!("POST {} HTTP/1.1\r\nHost: {authority}\r\n", parsed.path());
        Ok(Self {
            authority,
            head,
            stream: None,
            buf: Vec::with_capacity(4096),
            out: Vec::new(),
        })
    }

    async fn connect(&self) -> anyhow::Result<TcpStream> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot connect to {}", self.authority))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        Ok(stream)
    }

    /// POSTs `body`; returns the status and the answer's body. On any failure (or timeout) the
    /// connection is dropped, and the next call opens a new one.
    pub(super) async fn post(
        &mut self,
        body: String,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body, content_type))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}")))
    }

    async fn exchange(
        &mut self,
        body: String,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        // Taken out while in use, and put back only after a whole exchange succeeded.
        let mut stream = if let Some(stream) = self.stream.take() {
            stream
        } else {
            self.buf.clear();
            self.connect().await?
        };
        self.out.clear();
        self.out.extend_from_slice(self.head.as_bytes());
        self.out.extend_from_slice(
            format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        self.out.extend_from_slice(body.as_bytes());
        stream
            .write_all(&self.out)
            .await
            .context("send the request")?;
        let (status, body, keep_alive) = self.read_answer(&mut stream).await?;
        if keep_alive {
            self.stream = Some(stream);
        }
        Ok((status, body))
    }

    /// Reads one answer: status, body, and whether the connection stays open.
    async fn read_answer(
        &mut self,
        stream: &mut TcpStream,
    ) -> anyhow::Result<(StatusCode, Bytes, bool)> {
        loop {
            if let Some((head_len, status, body_len, keep_alive)) = parse_head(&self.buf)? {
                while self.buf.len() < head_len + body_len {
                    self.fill(stream).await?;
                }
                let body = Bytes::copy_from_slice(&self.buf[head_len..head_len + body_len]);
                self.buf.drain(..head_len + body_len);
                return Ok((status, body, keep_alive));
            }
            if self.buf.len() > MAX_HEAD {
                bail!("the answer's head is over {MAX_HEAD} bytes");
            }
            self.fill(stream).await?;
        }
    }

    async fn fill(&mut self, stream: &mut TcpStream) -> anyhow::Result<()> {
        self.buf.reserve(4096);
        if stream
            .read_buf(&mut self.buf)
            .await
            .context("read the answer")?
            == 0
        {
            bail!("the node closed the connection");
        }
        Ok(())
    }
}

/// The head of an answer, once `buf` holds all of it: its length, the status, the body's
/// length and whether the connection stays open.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(usize, StatusCode, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(buf).context("an invalid HTTP answer")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = StatusCode::from_u16(answer.code.unwrap_or(0)).context("an invalid status")?;
    let mut body_len = None;
    let mut keep_alive = answer.version == Some(1);
    for header in answer.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).unwrap_or("");
            body_len = Some(
                text.trim()
                    .parse::<usize>()
                    .context("an invalid Content-Length")?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a chunked answer (the load generator expects Content-Length)");
        } else if header.name.eq_ignore_ascii_case("connection") {
            keep_alive &= !header.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(Some((head_len, status, body_len.unwrap_or(0), keep_alive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_framed_by_their_head() {
        let answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_head(&answer[..20]).expect("partial"), None);
        let (head, status, len, keep) = parse_head(answer).expect("ok").expect("complete");
        assert_eq!((status, len, keep), (StatusCode::CREATED, 5, true));
        assert_eq!(&answer[head..], b"hello");
        let closing = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let (_, status, len, keep) = parse_head(closing).expect("ok").expect("complete");
        assert_eq!((status, len, keep), (StatusCode::BAD_REQUEST, 0, false));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
