//! One up web dyno as the router sees it: requests in flight, quarantine after a refused connection, idle connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::pool::Pool;

/// One up web dyno.
#[derive(Debug)]
pub struct Backend {
    /// `web.1`.
    pub dyno: String,
    /// Its systemd unit (unique per start).
    pub unit: String,
    /// Where it listens.
    pub addr: SocketAddr,
    in_flight: AtomicUsize,
    /// Milliseconds since `clock_epoch` until which the dyno is skipped
    /// after it refused a connection.
    quarantined_until_ms: AtomicU64,
    /// When the backend was made, on tokio's clock, which the quarantine
    /// reads so that a test with a paused clock can step through one
    /// (outside such a test it is the monotonic clock, as `epoch` is).
    clock_epoch: tokio::time::Instant,
    /// Microseconds since `epoch` of the dyno's last sign of progress: a
    /// request answered, or one started while it was idle.
    progress_us: AtomicU64,
    epoch: Instant,
    /// Set when the dyno leaves the table: nothing new is sent to it.
    retired: AtomicBool,
    /// Idle keep-alive connections to it.
    pub(super) pool: Pool,
    /// Signalled when the last in-flight request ends.
    idle: tokio::sync::Notify,
}

/// How long a dyno that refused a connection is skipped.
pub(super) const QUARANTINE: Duration = Duration::from_secs(5);

impl Backend {
    /// A backend with nothing in flight.
    pub(crate) fn new(dyno: &str, unit: &str, addr: SocketAddr) -> Self {
        Self {
            dyno: dyno.to_owned(),
            unit: unit.to_owned(),
            addr,
            in_flight: AtomicUsize::new(0),
            quarantined_until_ms: AtomicU64::new(0),
            clock_epoch: tokio::time::Instant::now(),
            progress_us: AtomicU64::new(0),
            epoch: Instant::now(),
            retired: AtomicBool::new(false),
            pool: Pool::default(),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// Requests being served by this dyno now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(super) fn in_flight_counter(&self) -> &AtomicUsize {
        &self.in_flight
    }

    pub(super) fn add_in_flight(&self) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.mark_progress(Instant::now());
        }
    }

    /// Notes that the dyno answered a request, or started one while idle.
    pub(super) fn mark_progress(&self, now: Instant) {
        let us = now.saturating_duration_since(self.epoch).as_micros();
        self.progress_us
            .store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// How long the dyno has gone without progress by `now`: for a
    /// single-threaded dyno, how long its current request has run.
    pub(super) fn since_progress(&self, now: Instant) -> Duration {
        let at = Duration::from_micros(self.progress_us.load(Ordering::Acquire));
        now.saturating_duration_since(self.epoch).saturating_sub(at)
    }

    pub(super) fn sub_in_flight(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no request is in flight here, or `limit` passes;
    /// whether it drained.
    pub(crate) async fn drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so no wake-up is missed.
            idle.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Whether new requests may go here.
    pub(crate) fn available(&self) -> bool {
        !self.retired.load(Ordering::Acquire) && !self.quarantined()
    }

    /// How long ago the backend was made, by the quarantine's clock.
    fn age(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.clock_epoch)
    }

    fn quarantined(&self) -> bool {
        let until = self.quarantined_until_ms.load(Ordering::Acquire);
        until != 0 && (self.age().as_millis() as u64) < until
    }

    /// Skips the dyno for a few seconds (it refused a connection).
    pub(crate) fn quarantine(&self) {
        let until = self.age() + QUARANTINE;
        self.quarantined_until_ms
            .store(until.as_millis() as u64, Ordering::Release);
        self.pool.clear();
    }

    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.pool.clear();
    }

    /// Whether the dyno left the table.
    #[cfg(test)]
    pub(crate) fn retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}
