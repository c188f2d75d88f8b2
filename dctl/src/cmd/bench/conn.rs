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
/// The most bytes of an answer without `Content-Length` (read to the end of the connection).
const MAX_UNFRAMED_BODY: usize = 16 * 1024 * 1024;

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
    /// Whether any byte of an answer came back in the current exchange.
    received: bool,
}

impl Conn {
    /// A connection for POSTs to `url` (`http://host:port/path`), with `token` as a bearer
    /// token in every request, if given.
    pub(super) fn new(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        if parsed.scheme() != "http" {
            bail!("the load generator speaks plain http://, not {url:?}");
        }
        let host = parsed.host_str().context("the URL has no host")?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let mut head = format!("POST {} HTTP/1.1\r\nHost: {authority}\r\n", parsed.path());
        if let Some(token) = token {
            if token.bytes().any(|b| b.is_ascii_control()) {
                bail!("the token has control characters");
            }
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        Ok(Self {
            authority,
            head,
            stream: None,
            buf: Vec::with_capacity(4096),
            out: Vec::new(),
            received: false,
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
    /// connection is dropped, and the next call opens a new one. A kept-alive connection the
    /// node closed before answering (it may close idle ones) is retried once on a new one, as
    /// HTTP clients do; events carry ids, so a request the node did take answers 200 then.
    pub(super) async fn post(
        &mut self,
        body: String,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let reused = self.stream.is_some();
        match self.timed_exchange(&body, content_type).await {
            Err(e) if reused && e.is::<ClosedBeforeAnswer>() => {
                self.timed_exchange(&body, content_type).await
            }
            result => result,
        }
    }

    async fn timed_exchange(
        &mut self,
        body: &str,
        content_type: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body, content_type))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}")))
    }

    async fn exchange(
        &mut self,
        body: &str,
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
        self.received = false;
        if let Err(e) = stream.write_all(&self.out).await {
            return Err(self.closed_or(e, "send the request"));
        }
        let (status, body, keep_alive) = self.read_answer(&mut stream).await?;
        if keep_alive {
            self.stream = Some(stream);
        }
        Ok((status, body))
    }

    /// Reads one final answer (interim 1xx answers are skipped): status, body, and whether the
    /// connection stays open.
    async fn read_answer(
        &mut self,
        stream: &mut TcpStream,
    ) -> anyhow::Result<(StatusCode, Bytes, bool)> {
        loop {
            let Some(head) = parse_head(&self.buf)? else {
                if self.buf.len() > MAX_HEAD {
                    bail!("the answer's head is over {MAX_HEAD} bytes");
                }
                self.fill(stream).await?;
                continue;
            };
            if head.status.is_informational() {
                self.buf.drain(..head.len);
                continue;
            }
            let Some(body_len) = head.body_len else {
                // No length: the body runs to the end of the connection.
                while self.read_some(stream).await? > 0 {
                    if self.buf.len() > head.len + MAX_UNFRAMED_BODY {
                        bail!("an answer without Content-Length over {MAX_UNFRAMED_BODY} bytes");
                    }
                }
                let body = Bytes::copy_from_slice(&self.buf[head.len..]);
                self.buf.clear();
                return Ok((head.status, body, false));
            };
            while self.buf.len() < head.len + body_len {
                self.fill(stream).await?;
            }
            let body = Bytes::copy_from_slice(&self.buf[head.len..head.len + body_len]);
            self.buf.drain(..head.len + body_len);
            return Ok((head.status, body, head.keep_alive));
        }
    }

    /// Reads more of the answer; the end of the connection is an error.
    async fn fill(&mut self, stream: &mut TcpStream) -> anyhow::Result<()> {
        if self.read_some(stream).await? == 0 {
            if !self.received {
                return Err(ClosedBeforeAnswer.into());
            }
            bail!("the node closed the connection in the middle of an answer");
        }
        Ok(())
    }

    /// Reads what the socket has; 0 at the end of the connection.
    async fn read_some(&mut self, stream: &mut TcpStream) -> anyhow::Result<usize> {
        self.buf.reserve(4096);
        match stream.read_buf(&mut self.buf).await {
            Ok(n) => {
                self.received |= n > 0;
                Ok(n)
            }
            Err(e) => Err(self.closed_or(e, "read the answer")),
        }
    }

    /// An I/O error of this exchange: [`ClosedBeforeAnswer`] when it is the connection being
    /// reset or closed under us before any byte of an answer came back.
    fn closed_or(&self, error: std::io::Error, doing: &'static str) -> anyhow::Error {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        if !self.received
            && matches!(
                error.kind(),
                BrokenPipe | ConnectionReset | ConnectionAborted
            )
        {
            return ClosedBeforeAnswer.into();
        }
        anyhow::Error::new(error).context(doing)
    }
}

/// The node closed the connection before sending any byte of an answer.
#[derive(Debug)]
struct ClosedBeforeAnswer;

impl std::fmt::Display for ClosedBeforeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the node closed the connection without answering")
    }
}

impl std::error::Error for ClosedBeforeAnswer {}

/// What an answer's head says.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// The head's length in bytes.
    len: usize,
    status: StatusCode,
    /// The body's length; `None` when it runs to the end of the connection.
    body_len: Option<usize>,
    /// Whether the connection stays open after the answer.
    keep_alive: bool,
}

/// The head of an answer, once `buf` holds all of it.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf).context("an invalid HTTP answer")? {
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
            // A list of tokens, e.g. `keep-alive, close`.
            let closes = header
                .value
                .split(|b| *b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
            keep_alive &= !closes;
        }
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodiless {
        body_len = Some(0);
    }
    Ok(Some(Head {
        len,
        status,
        body_len,
        keep_alive: keep_alive && body_len.is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(answer: &[u8]) -> Head {
        parse_head(answer).expect("valid").expect("complete")
    }

    #[test]
    fn answers_are_framed_by_their_head() {
        let answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_head(&answer[..20]).expect("partial"), None);
        let created = head(answer);
        assert_eq!(
            (created.status, created.body_len, created.keep_alive),
            (StatusCode::CREATED, Some(5), true)
        );
        assert_eq!(&answer[created.len..], b"hello");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn what_closes_the_connection_is_read_as_such() {
        for closing in [
            &b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.0 201 Created\r\ncontent-length: 2\r\n\r\n",
        ] {
            assert!(!head(closing).keep_alive, "{}", String::from_utf8_lossy(closing));
        }
        let unframed = head(b"HTTP/1.1 201 Created\r\n\r\n");
        assert_eq!((unframed.body_len, unframed.keep_alive), (None, false));
        let interim = head(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!((interim.body_len, interim.keep_alive), (Some(0), true));
        assert_eq!(head(b"HTTP/1.1 204 No Content\r\n\r\n").body_len, Some(0));
    }

    /// A node that serves one connection after another: on each, reads a request and writes
    /// the next of its answers, and closes it after the last.
    async fn node(connections: Vec<Vec<&'static [u8]>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            for answers in connections {
                let (mut socket, _) = listener.accept().await.expect("accept");
                for answer in answers {
                    let mut request = vec![0; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(answer).await;
                }
            }
        });
        format!("http://{address}/v1/channels/c/events")
    }

    #[tokio::test]
    async fn interim_and_unframed_answers_are_read_whole() {
        let url = node(vec![
            vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"],
            vec![b"HTTP/1.1 201 Created\r\n\r\nto the end"],
        ])
        .await;
        let mut conn = Conn::new(&url, None).expect("url");
        let first = conn
            .post("{}".into(), "application/json")
            .await
            .expect("first");
        assert_eq!(first, (StatusCode::CREATED, Bytes::from_static(b"ok")));
        let second = conn
            .post("{}".into(), "application/json")
            .await
            .expect("second");
        assert_eq!(
            second,
            (StatusCode::CREATED, Bytes::from_static(b"to the end"))
        );
    }

    #[tokio::test]
    async fn a_kept_alive_connection_closed_by_the_node_is_retried_once() {
        // The first connection answers once, then closes without answering the next request.
        let url = node(vec![
            vec![b"HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\na", b""],
            vec![b"HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nb"],
        ])
        .await;
        let mut conn = Conn::new(&url, None).expect("url");
        let first = conn
            .post("{}".into(), "application/json")
            .await
            .expect("first");
        assert_eq!(first.1, Bytes::from_static(b"a"));
        let second = conn
            .post("{}".into(), "application/json")
            .await
            .expect("retried");
        assert_eq!(second.1, Bytes::from_static(b"b"));
    }
}
