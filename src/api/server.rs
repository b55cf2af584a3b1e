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

/// A listener the API can be served on.
pub(crate) trait Acceptor: Send + 'static {
    /// The connection type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection; the string names the peer for logs.
    fn accept_one(
        &self,
    ) -> impl std::future::Future<Output = std::io::Result<(Self::Stream, String)>> + Send;
}

impl Acceptor for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, String)> {
        let (stream, peer) = self.accept().await?;
        // Small JSON answers: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer.to_string()))
    }
}

impl Acceptor for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, String)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, "unix".to_owned()))
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub(crate) async fn run<L: Acceptor>(
    listener: L,
    api: Api,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept_one() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let span = tracing::debug_span!("api_conn", %peer);
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
        async move { Ok::<_, std::convert::Infallible>(api.serve(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        // Attaching to a one-off dyno turns the connection into its terminal.
        .with_upgrades();
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
