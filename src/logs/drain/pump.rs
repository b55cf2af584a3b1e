//! At-least-once delivery of one drain: batches from the reader, sent in order, the cursor saved only once the receiver has them.
//!
//! A batch is confirmed when the transport accepted it (HTTPS: a 2xx) and,
//! for transports without acknowledgements (syslog over TCP: "written and
//! flushed" only means the kernel took it), once the connection was still
//! open `settle` later: a receiver that went away with bytes unread resets
//! the connection, and every unconfirmed batch is sent again in order on a
//! new one. Only then is the cursor of the batch's last entry saved, so a
//! restart or an outage resends from there: duplicates are possible, loss
//! and reordering are not.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::frame::{frame, Frame};
use super::DrainError;
use crate::logs::LogEntry;

/// Entries per batch at most.
pub(crate) const MAX_BATCH: usize = 500;
/// Entries sent but not yet confirmed at most, before waiting.
const MAX_UNCONFIRMED: usize = 20_000;
/// The first wait after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where a drain's batches go.
pub(crate) trait Transport: Send {
    /// Sends one batch, connecting first if needed; `Ok` once accepted.
    fn send(&mut self, frame: &Frame) -> impl Future<Output = Result<(), DrainError>> + Send;
    /// Whether the connection that took earlier batches still stands
    /// (true when there is nothing to lose by asking).
    fn healthy(&mut self) -> impl Future<Output = bool> + Send;
    /// How long after a send its batch counts as delivered if the
    /// connection still stands then.
    fn settle(&self) -> Duration;
    /// Drops the connection (the next send reconnects).
    fn reset(&mut self);
}

/// Where confirmed cursors are saved.
pub(crate) trait CursorSink: Send {
    /// Saves `cursor` as delivered.
    fn save(&mut self, cursor: String) -> impl Future<Output = ()> + Send;
}

/// Waits that double from 0.5 s up to a bound.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff capped at `max`.
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            next: FIRST_BACKOFF.min(max),
            max,
        }
    }

    /// The wait before the next attempt, doubling the one after.
    pub(crate) fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Back to the first wait after a success.
    pub(crate) fn succeed(&mut self) {
        self.next = FIRST_BACKOFF.min(self.max);
    }
}

#[derive(Debug)]
struct Pending {
    frame: Frame,
    cursor: String,
    entries: usize,
    sent_at: Option<Instant>,
}

/// One drain's sending side.
#[derive(Debug)]
pub(crate) struct Pump<T, C> {
    transport: T,
    cursors: C,
    token: String,
    platform_name: String,
    backoff: Backoff,
    pending: VecDeque<Pending>,
    /// What is logged about this drain (its id, never its credentials).
    label: String,
}

impl<T: Transport, C: CursorSink> Pump<T, C> {
    /// A pump for drain `token` over `transport`.
    pub(crate) fn new(
        transport: T,
        cursors: C,
        token: &str,
        platform_name: &str,
        max_backoff: Duration,
        label: String,
    ) -> Self {
        Self {
            transport,
            cursors,
            token: token.to_owned(),
            platform_name: platform_name.to_owned(),
            backoff: Backoff::new(max_backoff),
            pending: VecDeque::new(),
            label,
        }
    }

    fn unconfirmed(&self) -> usize {
        self.pending.iter().map(|p| p.entries).sum()
    }

    /// Delivers what `entries` yields until it closes (then what was
    /// taken is delivered first) or `shutdown`.
    pub(crate) async fn run(
        &mut self,
        entries: &mut mpsc::Receiver<LogEntry>,
        shutdown: &CancellationToken,
    ) {
        let mut open = true;
        while open || !self.pending.is_empty() {
            if shutdown.is_cancelled() {
                return;
            }
            if !self.deliver(shutdown).await {
                return;
            }
            self.confirm().await;
            // Wait for entries, or for the oldest batch to settle.
            let settle_at = self
                .pending
                .front()
                .and_then(|p| p.sent_at)
                .map(|at| at + self.transport.settle());
            if !open || self.unconfirmed() >= MAX_UNCONFIRMED {
                match settle_at {
                    Some(at) => tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep_until(at) => continue,
                    },
                    None => continue,
                }
            }
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sleep_until_opt(settle_at) => continue,
                e = entries.recv() => e,
            };
            let Some(first) = first else {
                open = false;
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match entries.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let cursor = batch.last().map(|e| e.cursor.clone()).unwrap_or_default();
            let id = Uuid::new_v4().simple().to_string().to_uppercase();
            self.pending.push_back(Pending {
                frame: frame(&batch, &self.token, &self.platform_name, id),
                cursor,
                entries: batch.len(),
                sent_at: None,
            });
        }
    }

    /// Sends every batch not sent yet, in order, retrying with backoff;
    /// false on shutdown.
    async fn deliver(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            let mut failed = None;
            for p in self.pending.iter_mut().filter(|p| p.sent_at.is_none()) {
                match self.transport.send(&p.frame).await {
                    Ok(()) => p.sent_at = Some(Instant::now()),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let Some(e) = failed else {
                self.backoff.succeed();
                return true;
            };
            self.retry_all();
            let wait = self.backoff.fail();
            tracing::warn!(drain = %self.label, error = %e, retry_in = ?wait, "log drain delivery failed");
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The connection failed: batches it took unconfirmed go again.
    fn retry_all(&mut self) {
        self.transport.reset();
        for p in &mut self.pending {
            p.sent_at = None;
        }
    }

    /// Saves the cursor of the newest settled batch if the connection
    /// stands; else schedules every unconfirmed batch again.
    async fn confirm(&mut self) {
        let settle = self.transport.settle();
        let now = Instant::now();
        let settled = self
            .pending
            .iter()
            .take_while(|p| p.sent_at.is_some_and(|at| at + settle <= now))
            .count();
        if settled == 0 {
            return;
        }
        if !self.transport.healthy().await {
            tracing::warn!(drain = %self.label, "log drain connection closed; resending what it may have lost");
            self.retry_all();
            return;
        }
        let mut cursor = None;
        for _ in 0..settled {
            cursor = self.pending.pop_front().map(|p| p.cursor);
        }
        if let Some(cursor) = cursor {
            self.cursors.save(cursor).await;
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Source;
    use std::sync::{Arc, Mutex};

    fn entry(n: u64) -> LogEntry {
        LogEntry {
            cursor: format!("c{n}"),
            usec: n,
            app: "demo".into(),
            source: Source::App,
            dyno: "web.1".into(),
            message: format!("line {n}"),
        }
    }

    /// Records what it was sent; fails while `down` says so, and can
    /// lose what it took since the last health check (a receiver that
    /// died with bytes unread).
    #[derive(Clone, Default)]
    struct Fake {
        state: Arc<Mutex<FakeState>>,
        settle: Duration,
    }

    #[derive(Default)]
    struct FakeState {
        down: u32,
        received: Vec<String>,
        in_flight: Vec<String>,
        lose_in_flight: bool,
        frame_ids: Vec<String>,
    }

    fn lines(frame: &Frame) -> Vec<String> {
        super::super::frame::parse_octet_counted(&frame.body)
            .expect("well-framed")
            .iter()
            .filter_map(|m| m.rsplit_once("line ").map(|(_, n)| n.to_owned()))
            .collect()
    }

    impl Transport for Fake {
        async fn send(&mut self, frame: &Frame) -> Result<(), DrainError> {
            let mut s = self.state.lock().expect("lock");
            s.frame_ids.push(frame.id.clone());
            if s.down > 0 {
                s.down -= 1;
                return Err(DrainError::Io("connection refused".into()));
            }
            s.in_flight.extend(lines(frame));
            Ok(())
        }
        async fn healthy(&mut self) -> bool {
            let mut s = self.state.lock().expect("lock");
            if s.lose_in_flight {
                s.lose_in_flight = false;
                s.in_flight.clear();
                return false;
            }
            let taken = std::mem::take(&mut s.in_flight);
            s.received.extend(taken);
            true
        }
        fn settle(&self) -> Duration {
            self.settle
        }
        fn reset(&mut self) {}
    }

    #[derive(Clone, Default)]
    struct Cursors(Arc<Mutex<Vec<String>>>);

    impl CursorSink for Cursors {
        async fn save(&mut self, cursor: String) {
            self.0.lock().expect("lock").push(cursor);
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let waits: Vec<_> = (0..5).map(|_| b.fail().as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_in_order_and_saves_the_cursor_only_after_acceptance() {
        let fake = Fake::default();
        fake.state.lock().expect("lock").down = 3;
        let cursors = Cursors::default();
        let mut pump = Pump::new(
            fake.clone(),
            cursors.clone(),
            "d.x",
            "corral",
            Duration::from_secs(2),
            "t".into(),
        );
        let (tx, mut rx) = mpsc::channel(1000);
        let produce = async move {
            for n in 1..=1200 {
                tx.send(entry(n)).await.expect("send");
            }
        };
        let shutdown = CancellationToken::new();
        tokio::join!(produce, pump.run(&mut rx, &shutdown));
        let s = fake.state.lock().expect("lock");
        let got: Vec<u64> = s.received.iter().map(|l| l.parse().expect("n")).collect();
        assert_eq!(got, (1..=1200).collect::<Vec<_>>());
        // The failed batch kept its frame id on every retry.
        assert_eq!(s.frame_ids[0], s.frame_ids[3]);
        let saved = cursors.0.lock().expect("lock");
        assert_eq!(saved.last().map(String::as_str), Some("c1200"));
        assert!(saved.iter().all(|c| c != "c0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_lost_before_settling_resends_without_loss() {
        let fake = Fake {
            settle: Duration::from_secs(1),
            ..Fake::default()
        };
        let cursors = Cursors::default();
        let mut pump = Pump::new(
            fake.clone(),
            cursors.clone(),
            "d.x",
            "corral",
            Duration::from_secs(2),
            "t".into(),
        );
        let (tx, mut rx) = mpsc::channel(1000);
        for n in 1..=10 {
            tx.send(entry(n)).await.expect("send");
        }
        // The receiver dies with the first batch unread.
        fake.state.lock().expect("lock").lose_in_flight = true;
        drop(tx);
        pump.run(&mut rx, &CancellationToken::new()).await;
        let s = fake.state.lock().expect("lock");
        let got: Vec<u64> = s.received.iter().map(|l| l.parse().expect("n")).collect();
        assert_eq!(got, (1..=10).collect::<Vec<_>>());
        assert_eq!(cursors.0.lock().expect("lock").as_slice(), ["c10"]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_mid_outage_saves_nothing_unsent() {
        let fake = Fake::default();
        fake.state.lock().expect("lock").down = u32::MAX;
        let cursors = Cursors::default();
        let mut pump = Pump::new(
            fake.clone(),
            cursors.clone(),
            "d.x",
            "corral",
            Duration::from_secs(2),
            "t".into(),
        );
        let (tx, mut rx) = mpsc::channel(10);
        tx.send(entry(1)).await.expect("send");
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let run = async { pump.run(&mut rx, &shutdown).await };
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            stop.cancel();
        };
        tokio::join!(run, cancel);
        assert!(cursors.0.lock().expect("lock").is_empty());
        assert!(fake.state.lock().expect("lock").received.is_empty());
        drop(tx);
    }
}
