//! Idle keep-alive connections to one dyno, reused by later requests.

use std::sync::Mutex;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per dyno; more are closed when returned.
const MAX_IDLE: usize = 64;

/// A dyno's idle upstream connections.
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<SendRequest<Incoming>>>,
}

impl Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SendRequest<Incoming>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection that is still open and ready for a request.
    pub fn take(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle();
        while let Some(conn) = idle.pop() {
            if !conn.is_closed() && conn.is_ready() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose response has been read completely.
    pub fn put(&self, conn: SendRequest<Incoming>) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Closes every idle connection (the dyno left or refused).
    pub fn clear(&self) {
        self.idle().clear();
    }
}
