//! Accept loops that serve the API over TCP and over a Unix socket.
//!
//! Listeners are bound by the caller and passed in (mini-redis style), so
//! tests run the real server on `127.0.0.1:0`. On cancellation a loop stops
//! accepting and asks each open connection to finish its current request;
//! the caller's task tracker waits for them within its drain timeout.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::Api;

/// A client that has not sent its request headers by then is cut off.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the API on a TCP listener until `shutdown` is cancelled.
pub async fn run_tcp(
    listener: TcpListener,
    api: Api,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("api_conn", %peer);
                tracker.spawn(
                    serve_connection(stream, api.clone(), shutdown.clone()).instrument(span),
                );
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Serves the API on a Unix socket until `shutdown` is cancelled.
pub async fn run_unix(
    listener: UnixListener,
    api: Api,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let span = tracing::debug_span!("api_conn", peer = "unix");
                tracker.spawn(
                    serve_connection(stream, api.clone(), shutdown.clone()).instrument(span),
                );
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Running out of file descriptors makes `accept` fail in a tight loop;
/// backing off briefly lets connections close instead of spinning a core.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection<S>(stream: S, api: Api, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(api.handle(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
