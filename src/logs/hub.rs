//! The fan-out hub: one journal reader publishes, any number of tail sessions subscribe per app.
//!
//! Publishing never blocks the reader: each subscriber has a bounded queue,
//! and a subscriber that falls behind loses lines, counted, so its session
//! can say how many (Logplex's L10) instead of slowing everyone else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::LogEntry;

/// Lines a subscriber may have queued before it starts losing them.
pub(crate) const SUBSCRIBER_QUEUE: usize = 8192;

#[derive(Debug)]
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Arc<LogEntry>>,
    lost: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    by_app: HashMap<String, Vec<Subscriber>>,
}

/// Routes each app's entries to that app's subscribers.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogHub {
    inner: Arc<Mutex<Inner>>,
}

/// A live subscription; dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct Subscription {
    rx: mpsc::Receiver<Arc<LogEntry>>,
    lost: Arc<AtomicU64>,
    hub: LogHub,
    app: String,
    id: u64,
}

impl Subscription {
    /// The next entry, or `None` once the hub is gone.
    pub(crate) async fn recv(&mut self) -> Option<Arc<LogEntry>> {
        self.rx.recv().await
    }

    /// Lines dropped because this subscriber fell behind, since the last
    /// call.
    pub(crate) fn take_lost(&self) -> u64 {
        self.lost.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        if let Some(subs) = inner.by_app.get_mut(&self.app) {
            subs.retain(|s| s.id != self.id);
            if subs.is_empty() {
                inner.by_app.remove(&self.app);
            }
        }
    }
}

impl LogHub {
    /// An empty hub.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries of `app` published from now on.
    pub(crate) fn subscribe(&self, app: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let lost = Arc::new(AtomicU64::new(0));
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner
            .by_app
            .entry(app.to_owned())
            .or_default()
            .push(Subscriber {
                id,
                tx,
                lost: lost.clone(),
            });
        Subscription {
            rx,
            lost,
            hub: self.clone(),
            app: app.to_owned(),
            id,
        }
    }

    /// Hands `entry` to its app's subscribers without waiting on any.
    pub(crate) fn publish(&self, entry: LogEntry) {
        let mut inner = self.lock();
        let Some(subs) = inner.by_app.get_mut(&entry.app) else {
            return;
        };
        let entry = Arc::new(entry);
        subs.retain(|s| match s.tx.try_send(entry.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.lost.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Subscribers of `app` right now.
    #[cfg(test)]
    pub(crate) fn subscribers(&self, app: &str) -> usize {
        self.lock().by_app.get(app).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Source;

    fn entry(app: &str, n: u64) -> LogEntry {
        LogEntry {
            cursor: format!("c{n}"),
            usec: n,
            app: app.into(),
            source: Source::App,
            dyno: "web.1".into(),
            message: format!("line {n}"),
        }
    }

    #[tokio::test]
    async fn fans_out_per_app_and_unsubscribes_on_drop() {
        let hub = LogHub::new();
        let mut a1 = hub.subscribe("a");
        let mut a2 = hub.subscribe("a");
        let b = hub.subscribe("b");
        hub.publish(entry("a", 1));
        hub.publish(entry("c", 2));
        assert_eq!(a1.recv().await.map(|e| e.usec), Some(1));
        assert_eq!(a2.recv().await.map(|e| e.usec), Some(1));
        assert!(b.rx.is_empty());
        drop(a2);
        assert_eq!(hub.subscribers("a"), 1);
        drop(b);
        assert_eq!(hub.subscribers("b"), 0);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_lines_and_is_told_how_many() {
        let hub = LogHub::new();
        let mut slow = hub.subscribe("a");
        let total = SUBSCRIBER_QUEUE as u64 + 10;
        for n in 0..total {
            hub.publish(entry("a", n));
        }
        assert_eq!(slow.take_lost(), 10);
        assert_eq!(slow.take_lost(), 0);
        assert_eq!(slow.recv().await.map(|e| e.usec), Some(0));
    }
}
