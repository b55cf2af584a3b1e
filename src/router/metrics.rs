//! The router's own figures per app: requests by status class and histograms of service and queue time, kept in per-minute buckets.
//!
//! The request path only adds to counters: one relaxed atomic add per
//! figure, on a shard of the app's counters picked by the router thread
//! (each thread keeps to its shard, so threads do not bounce one cache
//! line between them), never a lock and never an allocation. Counters only
//! grow; once a minute [`RouterMetrics::close_minute`] (driven by
//! [`RouterMetrics::run_minutes`]) sums the shards and keeps the growth
//! since the last close as that minute's bucket, so nothing a request
//! adds is lost to a reset. A [`Window`] over the last N minutes is the
//! current minute so far plus the closed minutes that ended within them;
//! windows from several routers (corrald's and a split one) merge exactly,
//! since they carry counts, not percentiles.
//!
//! Times go into log-linear buckets of microseconds: exact below 16 µs,
//! then eight buckets per power of two, so a percentile read from them is
//! within about 6% of the true value.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::model::AppName;

/// Status classes counted: 1xx to 5xx.
pub(crate) const CLASSES: usize = 5;

/// Closed minutes kept per app (the longest window).
pub(crate) const RETAIN_MINUTES: u32 = 60;

/// Shards per app: enough for the router's threads to keep apart.
const SHARDS: usize = 8;

/// Bits of sub-bucket per power of two (8 buckets each).
const SUB_BITS: u32 = 3;
/// Values below this have a bucket each.
const EXACT: u64 = 2 << SUB_BITS;
/// The largest time told apart, in µs (about 38 hours); longer ones count
/// as this.
const MAX_MICROS: u64 = (1 << 37) - 1;
/// Buckets per histogram.
pub(crate) const BUCKETS: usize = bucket(MAX_MICROS) + 1;

/// The bucket of a time of `micros`.
const fn bucket(micros: u64) -> usize {
    let v = if micros > MAX_MICROS {
        MAX_MICROS
    } else {
        micros
    };
    if v < EXACT {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros();
    let sub = (v >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (EXACT + (exponent - SUB_BITS - 1) as u64 * (1 << SUB_BITS) + sub) as usize
}

/// The value that stands for bucket `index`, in µs: itself for exact
/// buckets, else the middle of the bucket's range.
fn bucket_value(index: usize) -> f64 {
    let index = index as u64;
    if index < EXACT {
        return index as f64;
    }
    let exponent = (index - EXACT) / (1 << SUB_BITS) + u64::from(SUB_BITS) + 1;
    let sub = (index - EXACT) % (1 << SUB_BITS);
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    let lower = (1u64 << exponent) + sub * width;
    lower as f64 + (width as f64 - 1.0) / 2.0
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One thread's counters of one app, on cache lines of its own.
#[repr(align(128))]
struct Shard {
    classes: [AtomicU64; CLASSES],
    service: [AtomicU64; BUCKETS],
    queue: [AtomicU64; BUCKETS],
}

impl Shard {
    fn new() -> Self {
        Self {
            classes: std::array::from_fn(|_| AtomicU64::new(0)),
            service: std::array::from_fn(|_| AtomicU64::new(0)),
            queue: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Counter sums at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Totals {
    classes: [u64; CLASSES],
    service: Vec<u64>,
    queue: Vec<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Self {
            classes: [0; CLASSES],
            service: vec![0; BUCKETS],
            queue: vec![0; BUCKETS],
        }
    }
}

/// A closed minute: what its requests added, sparse.
#[derive(Debug, Clone)]
struct Minute {
    /// When it was closed, seconds since the epoch.
    end_secs: u64,
    window: Window,
}

#[derive(Debug, Default)]
struct History {
    /// The sums when the last minute was closed.
    last: Totals,
    minutes: VecDeque<Minute>,
}

thread_local! {
    /// This thread's shard (`usize::MAX`: not chosen yet).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Hands out shards to threads in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|cell| {
        let mut index = cell.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            cell.set(index);
        }
        index
    })
}

/// One app's counters.
pub struct AppCounters {
    shards: Box<[Shard]>,
    history: Mutex<History>,
}

impl std::fmt::Debug for AppCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCounters").finish_non_exhaustive()
    }
}

impl Default for AppCounters {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            history: Mutex::default(),
        }
    }
}

impl AppCounters {
    /// Counts one request: the status the client got, and the service
    /// and queue times of its router log line. Statuses outside 100-599
    /// count for their times only.
    pub(crate) fn record(&self, status: u16, service: Duration, queue: Duration) {
        let shard = &self.shards[shard_index()];
        if let Some(class) = (status / 100).checked_sub(1).filter(|c| *c < 5) {
            shard.classes[usize::from(class)].fetch_add(1, Ordering::Relaxed);
        }
        shard.service[bucket(micros(service))].fetch_add(1, Ordering::Relaxed);
        shard.queue[bucket(micros(queue))].fetch_add(1, Ordering::Relaxed);
    }

    fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in self.shards.iter() {
            for (sum, c) in totals.classes.iter_mut().zip(&shard.classes) {
                *sum = sum.wrapping_add(c.load(Ordering::Relaxed));
            }
            for (sum, c) in totals.service.iter_mut().zip(&shard.service) {
                *sum = sum.wrapping_add(c.load(Ordering::Relaxed));
            }
            for (sum, c) in totals.queue.iter_mut().zip(&shard.queue) {
                *sum = sum.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        totals
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the current minute at `now_secs`: what it added becomes a
    /// bucket of its own, and buckets older than [`RETAIN_MINUTES`] go.
    pub(crate) fn close_minute(&self, now_secs: u64) {
        let totals = self.totals();
        let mut history = self.history();
        let added = Window::between(&history.last, &totals);
        history.last = totals;
        if !added.is_empty() {
            history.minutes.push_back(Minute {
                end_secs: now_secs,
                window: added,
            });
        }
        let oldest = now_secs.saturating_sub(u64::from(RETAIN_MINUTES) * 60);
        while history
            .minutes
            .front()
            .is_some_and(|m| m.end_secs <= oldest)
        {
            history.minutes.pop_front();
        }
    }

    /// The requests of the last `minutes` before `now_secs`: the current
    /// minute so far and the closed minutes that ended within them.
    pub(crate) fn window(&self, minutes: u32, now_secs: u64) -> Window {
        let totals = self.totals();
        let history = self.history();
        let mut window = Window::between(&history.last, &totals);
        let since = now_secs.saturating_sub(u64::from(minutes) * 60);
        for minute in history.minutes.iter().filter(|m| m.end_secs > since) {
            window.merge(&minute.window);
        }
        window
    }
}

/// Requests over some span, mergeable across minutes and routers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Window {
    /// Requests by status class, 1xx to 5xx.
    pub requests: [u64; CLASSES],
    /// Service time histogram: `(bucket, count)`, non-zero buckets only.
    pub service: Vec<(u16, u64)>,
    /// Queue time histogram, likewise.
    pub queue: Vec<(u16, u64)>,
}

fn sparse(before: &[u64], after: &[u64]) -> Vec<(u16, u64)> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter_map(|(i, (b, a))| {
            let n = a.wrapping_sub(*b);
            (n > 0).then(|| (u16::try_from(i).unwrap_or(u16::MAX), n))
        })
        .collect()
}

fn merge_sparse(into: &mut Vec<(u16, u64)>, from: &[(u16, u64)]) {
    let mut dense: std::collections::BTreeMap<u16, u64> = into.iter().copied().collect();
    for (bucket, n) in from {
        *dense.entry(*bucket).or_insert(0) += n;
    }
    *into = dense.into_iter().collect();
}

/// The value at quantile `q` (0 < q <= 1) of a histogram, in ms.
fn quantile_ms(histogram: &[(u16, u64)], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    // The smallest value with at least q of the requests at or below it.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, n) in histogram {
        seen += n;
        if seen >= rank {
            return Some(bucket_value(usize::from(*bucket)) / 1000.0);
        }
    }
    None
}

/// p50, p95 and p99 in ms; `None` without requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(histogram: &[(u16, u64)]) -> Self {
        Self {
            p50: quantile_ms(histogram, 0.50),
            p95: quantile_ms(histogram, 0.95),
            p99: quantile_ms(histogram, 0.99),
        }
    }
}

impl Window {
    fn between(before: &Totals, after: &Totals) -> Self {
        let mut requests = [0; CLASSES];
        for (r, (b, a)) in requests
            .iter_mut()
            .zip(before.classes.iter().zip(&after.classes))
        {
            *r = a.wrapping_sub(*b);
        }
        Self {
            requests,
            service: sparse(&before.service, &after.service),
            queue: sparse(&before.queue, &after.queue),
        }
    }

    /// Whether no request is in it.
    pub(crate) fn is_empty(&self) -> bool {
        self.service.is_empty() && self.queue.is_empty() && self.requests == [0; CLASSES]
    }

    /// Adds another window's requests to this one.
    pub(crate) fn merge(&mut self, other: &Window) {
        for (r, o) in self.requests.iter_mut().zip(other.requests) {
            *r += o;
        }
        merge_sparse(&mut self.service, &other.service);
        merge_sparse(&mut self.queue, &other.queue);
    }

    /// Service time percentiles.
    pub(crate) fn service_ms(&self) -> Percentiles {
        Percentiles::of(&self.service)
    }

    /// Queue time percentiles.
    pub(crate) fn queue_ms(&self) -> Percentiles {
        Percentiles::of(&self.queue)
    }
}

/// Seconds since the epoch now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every app's counters in one router.
#[derive(Debug, Default)]
pub(crate) struct RouterMetrics {
    apps: Mutex<HashMap<AppName, Arc<AppCounters>>>,
}

impl RouterMetrics {
    fn apps(&self) -> std::sync::MutexGuard<'_, HashMap<AppName, Arc<AppCounters>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The app's counters, made on first use (the route feed hands them to
    /// each snapshot's route, so they outlive table changes).
    pub(crate) fn counters(&self, app: &AppName) -> Arc<AppCounters> {
        Arc::clone(self.apps().entry(app.clone()).or_default())
    }

    /// Forgets the counters of apps for which `keep` says no (deleted apps).
    pub(crate) fn retain(&self, keep: impl Fn(&AppName) -> bool) {
        self.apps().retain(|app, _| keep(app));
    }

    /// Closes the current minute of every app at `now_secs`: the `*_once`
    /// twin of [`RouterMetrics::run_minutes`].
    pub(crate) fn close_minute(&self, now_secs: u64) {
        let apps: Vec<Arc<AppCounters>> = self.apps().values().cloned().collect();
        for counters in apps {
            counters.close_minute(now_secs);
        }
    }

    /// The app's requests over the last `minutes` (none if it has had none).
    pub(crate) fn window(&self, app: &AppName, minutes: u32, now_secs: u64) -> Window {
        let counters = self.apps().get(app).cloned();
        counters.map_or_else(Window::default, |c| c.window(minutes, now_secs))
    }

    /// Closes a minute at every minute of the wall clock until `shutdown`.
    pub(crate) async fn run_minutes(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let into_minute = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(Duration::ZERO, |d| {
                    Duration::from_millis(u64::try_from(d.as_millis() % 60_000).unwrap_or(0))
                });
            let wait = Duration::from_secs(60).saturating_sub(into_minute);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            self.close_minute(now_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn buckets_are_contiguous_and_close_to_their_values() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(15), 15);
        assert_eq!(bucket(16), 16);
        assert_eq!(bucket(17), 16, "16 and 17 share a bucket of width 2");
        assert_eq!(bucket(31), 23);
        assert_eq!(bucket(32), 24);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in 0..300_000u64 {
            let b = bucket(v);
            assert!(b == last || b == last + 1, "{v}: {last} -> {b}");
            last = b;
            let value = bucket_value(b);
            assert!(
                (value - v as f64).abs() <= (v as f64 / 16.0).max(0.5) + 0.5,
                "{v} -> {value}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let counters = AppCounters::default();
        // 100 requests: 1..=100 ms.
        for n in 1..=100 {
            counters.record(200, ms(n), ms(0));
        }
        let window = counters.window(10, 1000);
        assert_eq!(window.requests, [0, 100, 0, 0, 0]);
        let p = window.service_ms();
        let near = |got: Option<f64>, want: f64| {
            let got = got.expect("a value");
            assert!((got - want).abs() <= want * 0.07, "{got} vs {want}");
        };
        near(p.p50, 50.0);
        near(p.p95, 95.0);
        near(p.p99, 99.0);
        assert_eq!(window.queue_ms().p99, Some(0.0));
        assert_eq!(Window::default().service_ms(), Percentiles::default());
        // One request: every percentile is it.
        let one = AppCounters::default();
        one.record(503, ms(30_000), ms(2));
        let w = one.window(1, 0);
        assert_eq!(w.requests, [0, 0, 0, 0, 1]);
        near(w.service_ms().p50, 30_000.0);
        near(w.queue_ms().p99, 2.0);
    }

    #[test]
    fn statuses_count_by_class() {
        let counters = AppCounters::default();
        for status in [101, 200, 204, 301, 404, 499, 500, 503, 0, 999] {
            counters.record(status, ms(1), ms(0));
        }
        let window = counters.window(1, 0);
        assert_eq!(window.requests, [1, 2, 1, 2, 2]);
        let timed: u64 = window.service.iter().map(|(_, n)| n).sum();
        assert_eq!(timed, 10, "odd statuses still have times");
    }

    #[test]
    fn minutes_close_into_buckets_and_age_out() {
        let counters = AppCounters::default();
        let t0 = 1_000_000;
        counters.record(200, ms(5), ms(0));
        counters.close_minute(t0);
        counters.record(404, ms(5), ms(0));
        counters.record(404, ms(5), ms(0));
        counters.close_minute(t0 + 60);
        counters.record(500, ms(5), ms(0));
        // The current minute plus the minute that ended within the last one.
        assert_eq!(counters.window(1, t0 + 90).requests, [0, 0, 0, 2, 1]);
        // Two minutes reach back to the first close.
        assert_eq!(counters.window(2, t0 + 90).requests, [0, 1, 0, 2, 1]);
        // An empty minute adds no bucket; old ones go after an hour.
        counters.close_minute(t0 + 120);
        counters.close_minute(t0 + 60 * 61);
        assert_eq!(counters.history().minutes.len(), 1);
        assert_eq!(
            counters.window(RETAIN_MINUTES, t0 + 60 * 61).requests,
            [0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn windows_merge_exactly() {
        let (a, b) = (AppCounters::default(), AppCounters::default());
        for n in 1..=50 {
            a.record(200, ms(n), ms(0));
            b.record(200, ms(n + 50), ms(1));
        }
        let mut merged = a.window(5, 0);
        merged.merge(&b.window(5, 0));
        let both = AppCounters::default();
        for n in 1..=100 {
            both.record(200, ms(n), ms(if n > 50 { 1 } else { 0 }));
        }
        assert_eq!(merged, both.window(5, 0));
        let wire: Window =
            serde_json::from_str(&serde_json::to_string(&merged).expect("json")).expect("back");
        assert_eq!(wire, merged);
    }

    #[test]
    fn threads_count_on_their_own_shards() {
        let counters = Arc::new(AppCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&counters);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.record(200, ms(1), ms(0));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(counters.window(1, 0).requests[1], 4000);
        let registry = RouterMetrics::default();
        let app = AppName::parse("demo").expect("app");
        registry.counters(&app).record(302, ms(1), ms(0));
        assert_eq!(registry.window(&app, 1, 0).requests[2], 1);
        registry.retain(|_| false);
        assert!(registry.window(&app, 1, 0).is_empty());
    }
}
