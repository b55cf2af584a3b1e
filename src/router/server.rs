//! The router's accept loops: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, or both over TLS (ALPN) on another; a header read timeout against
//! slowloris (which also bounds a TLS handshake), a cap on head size and on
//! connections per client address.
//!
//! Each listener's connections are dealt out in turn to `workers` threads
//! with an event loop each (a current-thread runtime), like nginx's worker
//! processes: a connection, its requests and the upstream connections they
//! use stay on one thread, where a shared work-stealing runtime kept waking
//! its other worker for each step of a request.

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
use super::proxy::{self, Context};
use super::Peer;

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

/// Accepts from `listener` until `shutdown` and deals the connections out
/// in turn to `limits.workers` threads; returns once every thread has
/// drained its connections.
async fn run_workers(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let local_port = listener.local_addr().map_or(0, |a| a.port());
    let span = tracing::Span::current();
    let mut workers = Vec::new();
    let mut finished = Vec::new();
    for i in 0..limits.workers.max(1) {
        let (hand, take) = tokio::sync::mpsc::unbounded_channel();
        let worker = Worker {
            take,
            tls: tls.clone(),
            ctx: Arc::clone(&ctx),
            limits,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        };
        let (done, finish) = tokio::sync::oneshot::channel::<()>();
        let span = span.clone();
        let started = std::thread::Builder::new()
            .name(format!("router-{i}"))
            .spawn(move || {
                worker.run(span);
                drop(done);
            });
        match started {
            Ok(_) => {
                workers.push(hand);
                finished.push(finish);
            }
            Err(e) => tracing::error!(error = %e, "cannot start a router thread"),
        }
    }
    if workers.is_empty() {
        return;
    }
    let per_ip = Arc::new(PerIp::default());
    let mut turn = 0;
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
        // Out of this event loop, into the worker's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "accepted connection unusable");
                continue;
            }
        };
        let peer = Peer {
            addr,
            local_port,
            scheme: if tls.is_some() { "https" } else { "http" },
        };
        // In turn rather than whoever wakes first: with one listening
        // socket in several event loops, one thread took nearly every
        // connection of a burst.
        turn = (turn + 1) % workers.len();
        let _ = workers[turn].send(Accepted {
            stream,
            peer,
            permit,
        });
    }
    // The workers see the end of their queues, drain and stop.
    drop(workers);
    drop(listener);
    for finish in finished {
        // Sent never: the sender drops when the thread is done.
        let _ = finish.await;
    }
}

/// A connection on its way to a worker thread.
struct Accepted {
    stream: std::net::TcpStream,
    peer: Peer,
    permit: IpPermit,
}

/// What one router thread needs.
struct Worker {
    take: tokio::sync::mpsc::UnboundedReceiver<Accepted>,
    tls: Option<TlsAcceptor>,
    ctx: Arc<Context>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Worker {
    fn run(mut self, span: tracing::Span) {
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
                // This thread's connections, so that it keeps running
                // them until they have drained; the caller's tracker sees
                // them too.
                let local = TaskTracker::new();
                while let Some(accepted) = self.take.recv().await {
                    let stream = match TcpStream::from_std(accepted.stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(error = %e, "connection unusable");
                            continue;
                        }
                    };
                    local.spawn(self.tracker.track_future(connection(
                        stream,
                        self.tls.clone(),
                        accepted.peer,
                        Arc::clone(&self.ctx),
                        self.limits,
                        self.shutdown.clone(),
                        accepted.permit,
                    )));
                }
                local.close();
                local.wait().await;
            }
            .instrument(span),
        );
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
