//! Upstream connections to one dyno, driven by the request that uses them,
//! and the idle keep-alive ones kept for later requests.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per dyno and thread; more are closed when
/// returned.
const MAX_IDLE: usize = 64;

/// Idle lists per dyno: one per router thread (threads beyond that share).
const SHARDS: usize = 8;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's idle list: a connection is used on the thread whose
    /// event loop registered its socket, so its I/O wakes no other thread.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// hyper's connection future (with upgrades), which does the socket I/O.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One HTTP/1.1 connection to a dyno: the handle that sends requests and
/// the future that does its I/O.
///
/// The future is polled by whichever task is using the connection (the
/// client connection's task, through [`Upstream::send`] and the response
/// body) instead of by a task of its own: a request then costs no wakeups
/// between tasks, which on a loaded machine often meant between threads.
/// An idle connection is polled by nobody; the next user's first poll
/// notices a dyno that closed it meanwhile.
pub(super) struct Upstream {
    sender: SendRequest<Incoming>,
    driver: Option<Driver>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("open", &self.driver.is_some())
            .finish()
    }
}

impl Upstream {
    /// A connection from hyper's handshake.
    pub(super) fn new<F>(sender: SendRequest<Incoming>, driver: F) -> Self
    where
        F: Future<Output = hyper::Result<()>> + Send + 'static,
    {
        Self {
            sender,
            driver: Some(Box::pin(driver)),
        }
    }

    /// Does whatever socket I/O is pending; a finished connection is
    /// dropped, which fails a request still waiting on it.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        if let Poll::Ready(result) = driver.as_mut().poll(cx) {
            if let Err(e) = result {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
            self.driver = None;
        }
    }

    /// Waits until the connection can take a request; an error means it
    /// is closed.
    pub(super) async fn ready(&mut self) -> hyper::Result<()> {
        poll_fn(|cx| {
            self.drive(cx);
            self.sender.poll_ready(cx)
        })
        .await
    }

    /// Sends a request and waits for the response head.
    pub(super) async fn send(
        &mut self,
        req: Request<Incoming>,
    ) -> hyper::Result<Response<Incoming>> {
        let mut response = std::pin::pin!(self.sender.send_request(req));
        poll_fn(|cx| {
            self.drive(cx);
            response.as_mut().poll(cx)
        })
        .await
    }

    /// The I/O future, for a connection that switched protocols: it must
    /// run to completion to hand the socket over to the tunnel.
    pub(super) fn into_driver(self) -> Option<Driver> {
        self.driver
    }

    fn is_closed(&self) -> bool {
        self.driver.is_none() || self.sender.is_closed()
    }
}

/// A dyno's idle upstream connections, kept by the thread that used them.
#[derive(Debug, Default)]
pub(super) struct Pool {
    shards: [Mutex<Vec<Upstream>>; SHARDS],
}

impl Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Upstream>> {
        Self::lock(&self.shards[SHARD.with(|s| *s)])
    }

    fn lock(shard: &Mutex<Vec<Upstream>>) -> std::sync::MutexGuard<'_, Vec<Upstream>> {
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection not known to be closed (check it with
    /// [`Upstream::ready`]).
    pub(super) fn take(&self) -> Option<Upstream> {
        let mut idle = self.idle();
        while let Some(conn) = idle.pop() {
            if !conn.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose response has been read completely.
    pub(super) fn put(&self, conn: Upstream) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Closes every idle connection (the dyno left or refused).
    pub(super) fn clear(&self) {
        for shard in &self.shards {
            // Dropped outside the lock: closing sockets takes a while.
            let idle = std::mem::take(&mut *Self::lock(shard));
            drop(idle);
        }
    }
}
