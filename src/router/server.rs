//! The router's accept loops: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, or both over TLS (ALPN) on another; a header read timeout against
//! slowloris (which also bounds a TLS handshake), a cap on head size and on
//! connections per client address.
//!
//! Each listener is served by `workers` threads with an event loop each
//! (a current-thread runtime), all accepting from the same socket, like
//! nginx's worker processes: a connection, its requests and the upstream
//! connections they use stay on one thread, where a shared work-stealing
//! runtime kept waking its other worker for each step of a request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::framing::{Inspect, Verdicts};
use super::proxy::{self, Context, Peer};

/// Limits on what clients may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection that has not sent its request head by then is closed.
    pub header_timeout: Duration,
    /// Largest request head (request line plus headers).
    pub max_head_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Open connections per client address; more are closed at once.
    pub max_connections_per_ip: usize,
    /// Threads serving each listener (default: one per CPU).
    pub workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_connections_per_ip: 512,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; released on drop.
struct IpPermit {
    counts: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpPermit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpPermit {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves the router over plain HTTP on `listener` until `shutdown`; open
/// connections finish their current request (the caller's tracker waits
/// for them).
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    run_workers(listener, None, ctx, limits, shutdown, tracker).await;
}

/// Serves the router over TLS on `listener` (see [`super::tls`] for the
/// configuration), like [`serve`]; requests carry `X-Forwarded-Proto:
/// https`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let acceptor = TlsAcceptor::from(tls);
    run_workers(listener, Some(acceptor), ctx, limits, shutdown, tracker).await;
}

/// Runs `limits.workers` threads accepting from `listener` until
/// `shutdown`, and returns once every one has drained its connections.
async fn run_workers(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "router listener unusable");
            return;
        }
    };
    let per_ip = Arc::new(PerIp::default());
    let span = tracing::Span::current();
    let mut finished = Vec::new();
    for i in 0..limits.workers.max(1) {
        let worker = Worker {
            tls: tls.clone(),
            ctx: Arc::clone(&ctx),
            limits,
            per_ip: Arc::clone(&per_ip),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        };
        let (done, finish) = tokio::sync::oneshot::channel::<()>();
        let started = listener.try_clone().and_then(|listener| {
            let span = span.clone();
            std::thread::Builder::new()
                .name(format!("router-{i}"))
                .spawn(move || {
                    worker.run(listener, span);
                    drop(done);
                })
        });
        match started {
            Ok(_) => finished.push(finish),
            Err(e) => tracing::error!(error = %e, "cannot start a router thread"),
        }
    }
    // The threads hold their own handles: the socket closes when the last
    // one stops accepting, as a single accept loop's did.
    drop(listener);
    for finish in finished {
        // Sent never: the sender drops when the thread is done.
        let _ = finish.await;
    }
}

/// What one router thread needs.
struct Worker {
    tls: Option<TlsAcceptor>,
    ctx: Arc<Context>,
    limits: Limits,
    per_ip: Arc<PerIp>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Worker {
    fn run(self, listener: std::net::TcpListener, span: tracing::Span) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a router thread's runtime");
                return;
            }
        };
        runtime.block_on(
            async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(error = %e, "router listener unusable");
                        return;
                    }
                };
                // This thread's connections, so that it keeps running
                // them until they have drained; the caller's tracker sees
                // them too.
                let local = TaskTracker::new();
                accept_loop(
                    listener,
                    self.tls,
                    self.ctx,
                    self.limits,
                    &self.per_ip,
                    &self.shutdown,
                    &local,
                    &self.tracker,
                )
                .await;
                local.close();
                local.wait().await;
            }
            .instrument(span),
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: Arc<Context>,
    limits: Limits,
    per_ip: &Arc<PerIp>,
    shutdown: &CancellationToken,
    local: &TaskTracker,
    tracker: &TaskTracker,
) {
    let local_port = listener.local_addr().map_or(0, |a| a.port());
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => {
                // Idle upstream connections end now; busy ones finish.
                ctx.table.close_idle_connections();
                break;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "router accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = per_ip.acquire(addr.ip(), limits.max_connections_per_ip) else {
            tracing::debug!(%addr, "too many connections from one address; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            addr,
            local_port,
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        local.spawn(tracker.track_future(connection(
            stream,
            tls.clone(),
            peer,
            Arc::clone(&ctx),
            limits,
            shutdown.clone(),
            permit,
        )));
    }
}

async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    peer: Peer,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    permit: IpPermit,
) {
    let _permit = permit;
    let Some(acceptor) = tls else {
        return serve_http(stream, peer, ctx, limits, shutdown).await;
    };
    // A client that opens a connection and never finishes the handshake
    // holds it like a slowloris client: the header timeout bounds both.
    let handshake = tokio::select! {
        done = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)) => done,
        () = shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(stream)) => serve_http(stream, peer, ctx, limits, shutdown).await,
        Ok(Err(e)) => {
            tracing::debug!(addr = %peer.addr, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            tracing::debug!(addr = %peer.addr, "TLS handshake timed out");
        }
    }
}

/// HTTP/1.1 or HTTP/2 (hyper tells them apart by the first bytes, which
/// over TLS follow the ALPN choice) on one connection.
async fn serve_http<S>(
    stream: S,
    peer: Peer,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let verdicts = Arc::new(Verdicts::default());
    let io = Inspect::new(stream, Arc::clone(&verdicts));
    let first_request = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::clone(&first_request);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&ctx);
        arrived.notify_one();
        // hyper asks in order, one request at a time per connection.
        let ambiguous = verdicts.next_is_ambiguous();
        async move {
            if ambiguous {
                return Ok::<_, std::convert::Infallible>(proxy::refuse_ambiguous(peer, &req));
            }
            Ok(proxy::handle(ctx, peer, req).await)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Without a timer hyper ignores header_read_timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_head_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            // hyper closes a connection that has no request in progress at
            // once, and one just accepted may hold a request not parsed
            // yet: closing it would reset the client. So a connection that
            // has not had a request yet gets until the header timeout to
            // bring one (which is then served); after that, or for one
            // that is between keep-alive requests, a graceful close.
            let first = tokio::time::timeout(limits.header_timeout, first_request.notified());
            let early = tokio::select! {
                result = conn.as_mut() => Some(result),
                _ = first => None,
            };
            match early {
                Some(result) => result,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(addr = %peer.addr, error = %e, "router connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_address_are_capped_and_released() {
        let per_ip = Arc::new(PerIp::default());
        let ip = IpAddr::from([127, 0, 0, 1]);
        let a = per_ip.acquire(ip, 2).expect("first");
        let _b = per_ip.acquire(ip, 2).expect("second");
        assert!(per_ip.acquire(ip, 2).is_none());
        drop(a);
        assert!(per_ip.acquire(ip, 2).is_some());
    }
}
