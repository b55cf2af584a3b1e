//! Serving one request: host to app, a dyno by least outstanding requests,
//! a pooled connection to it, Heroku's timeouts and error codes, and one
//! router log line when the response has been sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1 as client;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::balance::{Pick, Slot};
use super::log::RequestLog;
use super::pages::{self, Code};
use super::pool::Upstream;
use super::table::{AppRoute, Backend, TableHandle, Unavailable};
use super::{BoxError, Peer, RouterBody};

/// Longest request line or header line the router accepts (Heroku: 8 KB).
pub(crate) const MAX_LINE_BYTES: usize = 8192;

/// How many dynos a request tries when they refuse connections.
const MAX_ATTEMPTS: usize = 3;

// Parsed once here rather than from a string on every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// What every request shares.
#[derive(Debug)]
pub struct Context {
    /// The current route table.
    pub table: TableHandle,
    /// Connecting to a dyno.
    pub connect_timeout: Duration,
    /// Tunnels (after `101 Switching Protocols`).
    pub tasks: TaskTracker,
    /// Ends them on shutdown.
    pub shutdown: CancellationToken,
    /// The port of the router's TLS listener, when it has one: plain
    /// requests to apps with `force_https` are redirected there. Without
    /// one, `force_https` is ignored rather than sending clients to a port
    /// nobody answers on.
    pub https_port: Option<u16>,
    /// Where requests for `git.<base-domain>` go, if anywhere.
    pub git: Option<super::git::GitUpstream>,
}

/// Logs H27 if the request's future is dropped before it answered (the
/// client went away while the router waited for the dyno).
struct Interrupted {
    log: Option<RequestLog>,
}

impl Interrupted {
    fn done(mut self) {
        self.log = None;
    }
}

impl Drop for Interrupted {
    fn drop(&mut self) {
        if let Some(mut log) = self.log.take() {
            log.code = Some(Code::H27);
            log.status = Code::H27.status().as_u16();
            log.emit();
        }
    }
}

fn fail(mut log: RequestLog, code: Code) -> Response<RouterBody> {
    log.code = Some(code);
    log.status = code.status().as_u16();
    log.emit();
    pages::error_page(code)
}

/// The host a request is for: HTTP/2's authority, else the Host header.
fn request_host<B>(req: &Request<B>) -> String {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Why a request must not be forwarded, if it must not: ambiguous framing
/// (the request smuggling family) and oversized lines.
fn refusal<B>(req: &Request<B>) -> Option<(StatusCode, &'static str)> {
    let headers = req.headers();
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    let mut encodings = headers.get_all(header::TRANSFER_ENCODING).iter();
    let encoding = encodings.next();
    if lengths > 1 {
        return Some((
            StatusCode::BAD_REQUEST,
            "More than one Content-Length header.",
        ));
    }
    if lengths == 1 && encoding.is_some() {
        return Some((
            StatusCode::BAD_REQUEST,
            "Content-Length and Transfer-Encoding together are ambiguous; send one.",
        ));
    }
    if encodings.next().is_some()
        || encoding.is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Some((
            StatusCode::NOT_IMPLEMENTED,
            "Only Transfer-Encoding: chunked is supported.",
        ));
    }
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_LINE_BYTES {
        return Some((
            StatusCode::URI_TOO_LONG,
            "The request target is longer than 8 KB.",
        ));
    }
    if headers
        .iter()
        .any(|(name, value)| name.as_str().len() + value.len() + 2 > MAX_LINE_BYTES)
    {
        return Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "A header line is longer than 8 KB.",
        ));
    }
    None
}

/// Heroku keeps a client's `X-Request-Id` of 20 to 200 characters of
/// `[A-Za-z0-9+/=-]`, else makes one.
fn request_id<B>(req: &Request<B>) -> String {
    req.headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (20..=200).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-'))
        })
        .map_or_else(
            // A v4 uuid from the thread's RNG: uuid's own new_v4 asks the
            // kernel for randomness on every request.
            || {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                uuid::Builder::from_random_bytes(rand::random())
                    .into_uuid()
                    .hyphenated()
                    .encode_lower(&mut text)
                    .to_owned()
            },
            str::to_owned,
        )
}

/// Headers that describe one connection, not the message (RFC 9110
/// 7.6.1), plus any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the names costs less
    // than a hashed removal of each.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    headers.remove(HTTP2_SETTINGS);
}

/// Whether `name` is one of the hop-by-hop headers that
/// [`strip_hop_by_hop`] always removes; `Connection` stands for the ones it
/// names.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == header::PROXY_AUTHORIZATION
        || *name == header::PROXY_AUTHENTICATE
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
        || *name == HTTP2_SETTINGS
}

/// The protocol a request asks to switch to, unless it is `h2c`, which a
/// proxy must not pass on.
fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    let wants = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = req.headers().get(header::UPGRADE)?.clone();
    let h2c = protocol
        .to_str()
        .is_ok_and(|p| p.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c")));
    (wants && !h2c && req.version() == Version::HTTP_11).then_some(protocol)
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    let ours = match version {
        Version::HTTP_2 => "2 corral",
        Version::HTTP_10 => "1.0 corral",
        _ => "1.1 corral",
    };
    let via = match headers.get(header::VIA).map(HeaderValue::to_str) {
        Some(Ok(existing)) => HeaderValue::from_str(&format!("{existing}, {ours}")),
        // The usual case: no copy of a string per request.
        None => Ok(HeaderValue::from_static(ours)),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "Via is not text; replaced");
            Ok(HeaderValue::from_static(ours))
        }
    };
    if let Ok(value) = via {
        headers.insert(header::VIA, value);
    }
}

/// The answer to a request whose head had both `Content-Length` and
/// `Transfer-Encoding` (seen by [`super::framing`]); it is logged and never
/// forwarded, and hyper closes the connection after it.
pub(crate) fn refuse_ambiguous<B>(peer: Peer, req: &Request<B>) -> Response<RouterBody> {
    let log = RequestLog {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        host: request_host(req),
        request_id: request_id(req),
        fwd: peer.addr.ip().to_string(),
        protocol: peer.scheme,
        status: StatusCode::BAD_REQUEST.as_u16(),
        ..RequestLog::default()
    };
    log.emit();
    pages::bad_request(
        StatusCode::BAD_REQUEST,
        "Content-Length and Transfer-Encoding together are ambiguous; send one.",
    )
}

/// Serves one request.
pub(crate) async fn handle(
    ctx: Arc<Context>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<RouterBody> {
    let host = request_host(&req);
    let fwd = match req
        .headers()
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {}", peer.addr.ip()),
        None => peer.addr.ip().to_string(),
    };
    let mut log = RequestLog {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        host: host.clone(),
        request_id: request_id(&req),
        fwd,
        protocol: peer.scheme,
        ..RequestLog::default()
    };
    if let Some((status, why)) = refusal(&req) {
        log.status = status.as_u16();
        log.emit();
        return pages::bad_request(status, why);
    }
    if let Some(git) = ctx.git.as_ref().filter(|g| g.host == host) {
        return super::git::forward(git, peer, req, log, &ctx.tasks).await;
    }
    let table = ctx.table.load();
    let Some(route) = table.lookup(&host).cloned() else {
        log.status = StatusCode::NOT_FOUND.as_u16();
        log.emit();
        return pages::no_such_app();
    };
    drop(table);
    log.app = Some(route.app.to_string());
    log.counters = Some(Arc::clone(&route.metrics));
    if let Some(port) = ctx.https_port.filter(|_| route.settings.force_https) {
        if peer.scheme == "http" {
            return redirect_to_https(log, &req, &host, port);
        }
    }
    if route.maintenance {
        return fail(log, Code::H80);
    }
    // The guard owns the log while the request is forwarded: if the client
    // goes away meanwhile, dropping it logs H27 with what is known by then.
    let mut interrupted = Interrupted { log: Some(log) };
    let response = match interrupted.log.as_mut() {
        Some(log) => forward(&ctx, peer, req, route, &host, log).await,
        None => pages::error_page(Code::H13),
    };
    interrupted.done();
    response
}

/// 301 for GET and HEAD; 308 for the rest, which (unlike 301 in practice)
/// keeps the method and body.
fn redirect_status(method: &http::Method) -> StatusCode {
    if method == http::Method::GET || method == http::Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    }
}

/// `https://host[:port]/path?query`; the port only when it is not 443.
fn https_location(host: &str, port: u16, path_and_query: &str) -> String {
    let host = super::table::normalize_host(host);
    if port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{port}{path_and_query}")
    }
}

/// Sends a plain HTTP request for a `force_https` app to HTTPS.
fn redirect_to_https<B>(
    mut log: RequestLog,
    req: &Request<B>,
    host: &str,
    port: u16,
) -> Response<RouterBody> {
    let status = redirect_status(req.method());
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(location) = HeaderValue::from_str(&https_location(host, port, path)) else {
        log.status = StatusCode::BAD_REQUEST.as_u16();
        log.emit();
        return pages::bad_request(
            StatusCode::BAD_REQUEST,
            "The Host header is not a hostname.",
        );
    };
    log.status = status.as_u16();
    log.emit();
    let mut response = Response::new(
        http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// Waits for a dyno slot: at once, in the app's queue, or (while web
/// dynos boot) for one to come up.
async fn acquire(
    ctx: &Context,
    host: &str,
    mut route: Arc<AppRoute>,
) -> Result<(Slot, Arc<AppRoute>), Code> {
    let boot_deadline = tokio::time::Instant::now() + route.settings.boot_wait;
    // Only a request that waits for a booting dyno watches the table.
    let mut versions = None;
    loop {
        match route.pick() {
            Pick::Slot(slot) => return Ok((slot, route)),
            Pick::Full => return Err(Code::H11),
            Pick::Queued(rx) => {
                return match tokio::time::timeout(route.settings.request_timeout, rx).await {
                    Ok(Ok(slot)) => Ok((slot, route)),
                    _ => Err(Code::H11),
                }
            }
            Pick::NoDyno if !route.backends.is_empty() => return Err(Code::H10),
            Pick::NoDyno => match route.unavailable {
                Unavailable::Crashed => return Err(Code::H10),
                Unavailable::NoWebDynos => return Err(Code::H14),
                Unavailable::Booting => {
                    match versions.as_mut() {
                        // Subscribed before the table is read again below,
                        // so a dyno that came up meanwhile is not missed.
                        None => versions = Some(ctx.table.subscribe()),
                        Some(versions) => {
                            match tokio::time::timeout_at(boot_deadline, versions.changed()).await {
                                Ok(Ok(())) => {}
                                _ => return Err(Code::H20),
                            }
                        }
                    }
                    route = ctx.table.load().lookup(host).cloned().ok_or(Code::H14)?;
                }
            },
        }
    }
}

/// A connection to the dyno, ready for a request: an idle pooled one, or
/// a new one.
async fn connect(ctx: &Context, backend: &Backend) -> std::io::Result<Upstream> {
    while let Some(mut conn) = backend.pool.take() {
        // Nothing was sent on it yet: one the dyno closed while it sat
        // idle is dropped and the next one tried.
        if conn.ready().await.is_ok() {
            return Ok(conn);
        }
    }
    let stream = tokio::time::timeout(ctx.connect_timeout, TcpStream::connect(backend.addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = client::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    // No task of its own: the request that uses the connection drives it
    // (see `Upstream`), so on shutdown it lives exactly as long as the
    // client connection that is draining its response.
    Ok(Upstream::new(sender, conn.with_upgrades()))
}

async fn forward(
    ctx: &Context,
    peer: Peer,
    req: Request<Incoming>,
    route: Arc<AppRoute>,
    host: &str,
    log: &mut RequestLog,
) -> Response<RouterBody> {
    let waited = Instant::now();
    let mut route = route;
    let mut attempt = 0;
    let (slot, mut conn) = loop {
        attempt += 1;
        let slot = match acquire(ctx, host, route).await {
            Ok((slot, current)) => {
                route = current;
                slot
            }
            Err(code) => {
                log.queue = waited.elapsed();
                return fail(std::mem::take(log), code);
            }
        };
        log.queue = waited.elapsed();
        log.dyno = Some(slot.backend().dyno.clone());
        let connecting = Instant::now();
        match connect(ctx, slot.backend()).await {
            Ok(conn) => {
                log.connect = connecting.elapsed();
                break (slot, conn);
            }
            Err(e) => {
                tracing::debug!(dyno = %slot.backend().dyno, error = %e, "dyno refused a connection");
                // Nothing was sent yet: another dyno may take it.
                slot.backend().quarantine();
                slot.abandon();
                if attempt >= MAX_ATTEMPTS {
                    return fail(std::mem::take(log), Code::H10);
                }
                route = ctx.table.load().lookup(host).cloned().unwrap_or(route);
            }
        }
    };

    let upgrade = upgrade_protocol(&req);
    let (mut parts, body) = req.into_parts();
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    if !headers.contains_key(header::HOST) {
        if let Ok(value) = HeaderValue::from_str(host) {
            headers.insert(header::HOST, value);
        }
    }
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    // Values are built straight from what the log holds: no string copies.
    for (name, value) in [
        (X_FORWARDED_FOR, HeaderValue::from_str(&log.fwd).ok()),
        (
            X_FORWARDED_PROTO,
            Some(HeaderValue::from_static(peer.scheme)),
        ),
        (X_FORWARDED_PORT, Some(HeaderValue::from(peer.local_port))),
        (X_REQUEST_START, Some(HeaderValue::from(start_ms))),
        (X_REQUEST_ID, HeaderValue::from_str(&log.request_id).ok()),
    ] {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    append_via(&mut headers, parts.version);
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    // Origin form for the dyno: the client's path and query, already
    // parsed (no second parse on the request path).
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = Uri::from(path);
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = headers;

    let sent = Instant::now();
    if conn.ready().await.is_err() {
        log.service = sent.elapsed();
        return fail(std::mem::take(log), Code::H13);
    }
    let response =
        match tokio::time::timeout(route.settings.request_timeout, conn.send(upstream)).await {
            Err(_) => {
                log.service = sent.elapsed();
                return fail(std::mem::take(log), Code::H12);
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "dyno closed the connection without a response");
                log.service = sent.elapsed();
                return fail(std::mem::take(log), Code::H13);
            }
            Ok(Ok(response)) => response,
        };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            return tunnel(
                ctx,
                response,
                client_upgrade,
                conn,
                slot,
                std::mem::take(log),
                sent,
            );
        }
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    append_via(&mut parts.headers, Version::HTTP_11);
    log.status = parts.status.as_u16();
    let idle = route.settings.idle_timeout;
    let relay = Relay {
        inner: body,
        idle,
        timer: None,
        bytes: 0,
        failed: None,
        done: Some(Done {
            log: std::mem::take(log),
            sent,
            conn,
            slot,
            shutdown: ctx.shutdown.clone(),
        }),
    };
    Response::from_parts(parts, relay.boxed_unsync())
}

/// A `101 Switching Protocols`: the router answers the client with the
/// dyno's 101 and then copies bytes both ways until either side closes.
fn tunnel(
    ctx: &Context,
    mut response: Response<Incoming>,
    client_upgrade: hyper::upgrade::OnUpgrade,
    conn: Upstream,
    slot: Slot,
    mut log: RequestLog,
    sent: Instant,
) -> Response<RouterBody> {
    let upstream_upgrade = hyper::upgrade::on(&mut response);
    log.status = response.status().as_u16();
    log.service = sent.elapsed();
    log.emit();
    let shutdown = ctx.shutdown.clone();
    ctx.tasks.spawn(async move {
        // The slot counts the tunnel as in flight until it closes.
        let _slot = slot;
        // The connection hands its socket over once it has read the 101.
        if let Some(driver) = conn.into_driver() {
            let _ = driver.await;
        }
        let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            () = shutdown.cancelled() => {}
        }
    });
    let (mut parts, _) = response.into_parts();
    // Keep Upgrade and Connection: they are the point of a 101.
    parts.headers.remove(header::TRANSFER_ENCODING);
    append_via(&mut parts.headers, Version::HTTP_11);
    Response::from_parts(
        parts,
        http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
}

/// What a relayed response settles when it ends.
struct Done {
    log: RequestLog,
    sent: Instant,
    conn: Upstream,
    slot: Slot,
    /// After shutdown a finished connection is closed, not pooled.
    shutdown: CancellationToken,
}

/// The dyno's response body on its way to the client: drives the upstream
/// connection that reads it, counts bytes, enforces the idle timeout
/// (H15), reports a dyno that closes mid-body (H18), and when the body
/// ends returns the connection to the pool, releases the dyno slot and
/// writes the router log line.
struct Relay {
    inner: Incoming,
    idle: Duration,
    /// Made at the first wait for the dyno: most responses never wait.
    timer: Option<Pin<Box<Sleep>>>,
    bytes: u64,
    done: Option<Done>,
    /// The dyno's error, handed on at the next poll.
    failed: Option<BoxError>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RelayError(&'static str);

impl Relay {
    fn finish(&mut self, code: Option<Code>, reuse: bool) {
        let Some(done) = self.done.take() else {
            return;
        };
        let mut log = done.log;
        log.bytes = self.bytes;
        log.service = done.sent.elapsed();
        log.code = code;
        log.emit();
        if reuse && !done.shutdown.is_cancelled() {
            done.slot.backend().pool.put(done.conn);
        }
        drop(done.slot);
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(done) = this.done.as_mut() {
            done.conn.drive(cx);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if let Some(timer) = this.timer.as_mut() {
                    timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(Code::H18), false);
                // hyper drops the client connection on a body error without
                // writing what it buffered, and the connection may have
                // read the start of the body and the dyno's close in one
                // go: yield once so the client gets the status and the
                // partial body before the cut.
                this.failed = Some(Box::new(e));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finish(None, true);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.finish(Some(Code::H15), false);
                    return Poll::Ready(Some(Err(Box::new(RelayError(
                        "the dyno sent nothing within the idle timeout",
                    )))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // An empty body may never be polled; a client that went away
        // mid-body leaves the connection unusable.
        let ended = self.inner.is_end_stream();
        self.finish(None, ended);
    }
}

#[cfg(test)]
mod tests;
