//! `git.<base-domain>`: the router hands git's smart HTTP to corrald's API socket, so pushes work on the public port.
//!
//! Like Heroku's `git.heroku.com`. Each request gets its own connection to
//! the API's Unix socket (pushes are rare, long and streamed both ways, so
//! pooling buys nothing), with no H12/H15 timeouts: a build may be quiet
//! for minutes while it compiles, and git itself gives up on a dead peer.

use std::path::PathBuf;

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;

use super::log::RequestLog;
use super::{pages, Peer, RouterBody};

/// Where git requests go.
#[derive(Debug, Clone)]
pub struct GitUpstream {
    /// The host it answers, `git.<base-domain>`, lowercase.
    pub host: String,
    /// corrald's API socket.
    pub socket: PathBuf,
}

/// Forwards one request to the API socket and streams the answer back.
pub(crate) async fn forward(
    upstream: &GitUpstream,
    peer: Peer,
    mut req: Request<Incoming>,
    mut log: RequestLog,
    tasks: &TaskTracker,
) -> Response<RouterBody> {
    let failed = |mut log: RequestLog, why: &str| {
        tracing::warn!(socket = %upstream.socket.display(), error = why, "git request not forwarded");
        log.status = StatusCode::BAD_GATEWAY.as_u16();
        log.emit();
        pages::bad_request(
            StatusCode::BAD_GATEWAY,
            "corrald's git service is not reachable right now; try again shortly.",
        )
    };
    let stream = match tokio::net::UnixStream::connect(&upstream.socket).await {
        Ok(s) => s,
        Err(e) => return failed(log, &e.to_string()),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(pair) => pair,
        Err(e) => return failed(log, &e.to_string()),
    };
    // The connection ends with the request: a push in progress is not
    // cut short by the router's shutdown, only by its drain timeout.
    tasks.spawn(async move {
        let _ = conn.await;
    });
    let headers = req.headers_mut();
    let fwd = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", peer.addr.ip()),
        None => peer.addr.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&fwd) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(peer.scheme));
    match sender.send_request(req).await {
        Ok(response) => {
            log.status = response.status().as_u16();
            log.emit();
            response.map(|body| body.map_err(Into::into).boxed_unsync())
        }
        Err(e) => failed(log, &e.to_string()),
    }
}
