//! Reads a client connection's request heads as they pass, to refuse
//! ambiguous framing that hyper would quietly normalize.
//!
//! A request with both `Content-Length` and `Transfer-Encoding` is the
//! classic request smuggling probe. hyper follows RFC 9112 (the chunked
//! encoding wins, the connection closes afterwards) but drops the
//! `Content-Length` header before the router sees the request, so the
//! router could not tell and would forward it. This wrapper follows the
//! HTTP/1.1 byte stream (heads, fixed-length and chunked bodies) and
//! queues one verdict per request head, in order; the service takes one
//! per request and refuses the ambiguous ones. After an `Upgrade` or
//! `CONNECT`, or anything it cannot follow (HTTP/2's preface, a head too
//! large), it stops looking: hyper rejects what it cannot parse itself.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Heads larger than this are left to hyper's own limit.
const MAX_HEAD: usize = 64 * 1024;

/// One verdict per request head seen on a connection, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    queue: Mutex<VecDeque<bool>>,
}

impl Verdicts {
    fn push(&self, ambiguous: bool) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(ambiguous);
    }

    /// Whether the next request's head was ambiguous (`false` when nothing
    /// was recorded, e.g. on HTTP/2).
    pub(crate) fn next_is_ambiguous(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or(false)
    }
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    ChunkEnd(u8),
    Trailers(Vec<u8>),
    Passthrough,
}

/// What a parsed head says about the body that follows.
fn verdict(req: &httparse::Request<'_, '_>) -> Option<(bool, State)> {
    let (mut lengths, mut length, mut te, mut chunked, mut upgrade) =
        (0, None, false, false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            length = std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let ambiguous = te && lengths > 0;
    let next = if upgrade || req.method == Some("CONNECT") {
        State::Passthrough
    } else if te && chunked {
        State::ChunkSize(Vec::new())
    } else if te {
        State::Passthrough
    } else {
        match length {
            Some(0) | None if lengths == 0 => State::Head(Vec::new()),
            Some(0) => State::Head(Vec::new()),
            Some(n) => State::Body(n),
            None => State::Passthrough,
        }
    };
    Some((ambiguous, next))
}

/// A head that ends exactly at the end of `head`.
fn inspect_head(head: &[u8]) -> Option<(bool, State)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => verdict(&req),
        _ => None,
    }
}

/// What [`inspect_start`] found at the start of a read.
enum Start {
    /// A complete head of `len` bytes, and its verdict.
    Head {
        len: usize,
        ambiguous: bool,
        next: State,
    },
    /// A head that continues in a later read.
    Partial,
    /// Not an HTTP/1.1 head the inspector can follow.
    Unknown,
}

/// A head at the start of `bytes`, read in place: the usual case, where a
/// whole head arrives in one read, costs one parse and no copy.
fn inspect_start(bytes: &[u8]) -> Start {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => match verdict(&req) {
            Some((ambiguous, next)) => Start::Head {
                len,
                ambiguous,
                next,
            },
            None => Start::Unknown,
        },
        Ok(httparse::Status::Partial) => Start::Partial,
        Err(_) => Start::Unknown,
    }
}

/// A connection whose read side is watched (see the module doc).
#[derive(Debug)]
pub(crate) struct Inspect<S> {
    inner: S,
    state: State,
    verdicts: std::sync::Arc<Verdicts>,
}

impl<S> Inspect<S> {
    /// Watches `inner`, recording verdicts into `verdicts`.
    pub(crate) fn new(inner: S, verdicts: std::sync::Arc<Verdicts>) -> Self {
        Self {
            inner,
            state: State::Head(Vec::new()),
            verdicts,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Passthrough => return,
                State::Head(head) => {
                    // Empty lines before a request line are allowed.
                    if head.is_empty() && (bytes[0] == b'\r' || bytes[0] == b'\n') {
                        bytes = &bytes[1..];
                        continue;
                    }
                    if head.is_empty() {
                        match inspect_start(bytes) {
                            Start::Head {
                                len,
                                ambiguous,
                                next,
                            } => {
                                self.verdicts.push(ambiguous);
                                self.state = next;
                                bytes = &bytes[len..];
                                continue;
                            }
                            Start::Unknown => {
                                self.state = State::Passthrough;
                                return;
                            }
                            // Split across reads: collected below.
                            Start::Partial => {}
                        }
                    }
                    let take = bytes.len().min(MAX_HEAD + 1 - head.len().min(MAX_HEAD));
                    let start = head.len().saturating_sub(3);
                    head.extend_from_slice(&bytes[..take]);
                    let Some(end) = head[start..]
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| start + p + 4)
                    else {
                        if head.len() > MAX_HEAD {
                            self.state = State::Passthrough;
                        }
                        bytes = &bytes[take..];
                        continue;
                    };
                    // Bytes after the head's end belong to the body.
                    let over = head.len() - end;
                    let verdict = inspect_head(&head[..end]);
                    bytes = &bytes[take - over..];
                    match verdict {
                        Some((ambiguous, next)) => {
                            self.verdicts.push(ambiguous);
                            self.state = next;
                        }
                        None => self.state = State::Passthrough,
                    }
                }
                State::Body(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                }
                State::ChunkSize(line) => {
                    let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > 1024 {
                            self.state = State::Passthrough;
                        }
                        return;
                    };
                    line.extend_from_slice(&bytes[..nl]);
                    bytes = &bytes[nl + 1..];
                    let text = String::from_utf8_lossy(line);
                    let size = text.split(';').next().unwrap_or("").trim();
                    self.state = match u64::from_str_radix(size, 16) {
                        Ok(0) => State::Trailers(Vec::new()),
                        Ok(n) => State::ChunkData(n),
                        Err(_) => State::Passthrough,
                    };
                }
                State::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                }
                State::ChunkEnd(left) => {
                    let n = (*left as usize).min(bytes.len());
                    *left -= n as u8;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                }
                State::Trailers(line) => {
                    let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_HEAD {
                            self.state = State::Passthrough;
                        }
                        return;
                    };
                    let empty = line.iter().all(|b| *b == b'\r') && nl <= 1;
                    line.clear();
                    bytes = &bytes[nl + 1..];
                    if empty {
                        self.state = State::Head(Vec::new());
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inspect<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.feed(&buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inspect<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn verdicts(stream: &[u8], chunk: usize) -> Vec<bool> {
        let v = Arc::new(Verdicts::default());
        let mut inspect = Inspect::new((), Arc::clone(&v));
        for part in stream.chunks(chunk) {
            inspect.feed(part);
        }
        let mut out = Vec::new();
        let q = v.queue.lock().expect("lock");
        out.extend(q.iter().copied());
        out
    }

    #[test]
    fn follows_pipelined_requests_and_flags_ambiguous_ones() {
        let stream = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n\
POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello\
POST /c HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nworld\r\n0\r\nt: 1\r\n\r\n\
POST /s HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n\
GET /after HTTP/1.1\r\nhost: a\r\n\r\n";
        let expected = vec![false, false, false, true, false];
        for chunk in [1, 3, 7, 1000] {
            assert_eq!(verdicts(stream, chunk), expected, "in chunks of {chunk}");
        }
        // Content-Length first, then Transfer-Encoding: same verdict.
        let cl_first =
            b"POST / HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(cl_first, 5), vec![true]);
    }

    #[test]
    fn stops_looking_after_upgrades_and_unknown_protocols() {
        let ws = b"GET /ws HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nPOST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(ws, 4), vec![false]);
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert!(verdicts(h2, 4).is_empty());
        assert!(!Verdicts::default().next_is_ambiguous());
    }
}
