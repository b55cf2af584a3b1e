//! Choosing a dyno: exact least-outstanding-requests with random ties, and
//! with a per-app `max-concurrency`, one FIFO queue per app that hands each
//! freed dyno slot to the oldest waiting request.
//!
//! Heroku's router picked a dyno at random, so a request could wait behind
//! a slow one while other dynos idled (the 2013 Rap Genius tail). One
//! router sees all of its own in-flight requests, so it can send each
//! request to the least busy dyno exactly; and with a concurrency limit it
//! keeps the excess in a single queue per app instead of one per dyno,
//! which is the global queue Heroku's FAQ said it could not offer.
//!
//! Ties between equally loaded dynos go first to those that answered
//! something lately: web request times are heavy-tailed, so a request that
//! has run for several times the app's mean is likely to run much longer,
//! and a new request sent behind it would wait (the 2013 tail again, within
//! least-outstanding). Other ties are broken at random.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use tokio::sync::oneshot;

use super::backend::Backend;

/// How many queued requests per available dyno before H11.
pub(crate) const MAX_QUEUE_PER_DYNO: usize = 50;

/// How the router chooses among an app's up dynos.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// The fewest requests in flight, ties at random (the default).
    #[default]
    LeastOutstanding,
    /// Uniformly at random, like Heroku's router (for comparison).
    Random,
    /// In turn (for comparison).
    RoundRobin,
}

/// A busy dyno that has answered nothing for this many times the app's
/// mean service time loses ties to one that has.
const STUCK_FACTOR: u64 = 2;

/// Each service time moves the app's mean by 1/this of the difference.
const SERVICE_WEIGHT: u64 = 8;

/// Service times are counted up to this: a long-lived stream or tunnel
/// says nothing about ordinary requests.
const MAX_SERVICE_SAMPLE: Duration = Duration::from_secs(60);

/// A request's hold on one dyno: one in-flight count. Dropping it frees
/// the count, or hands it straight to the oldest queued request.
#[derive(Debug)]
pub(crate) struct Slot {
    backend: Option<Arc<Backend>>,
    queue: Arc<AppQueue>,
    limited: bool,
    /// When the request got the dyno.
    started: Instant,
    /// Whether dropping the slot counts as the dyno answering (not when
    /// it was [`abandon`](Self::abandon)ed).
    answered: bool,
}

impl Slot {
    fn new(backend: Arc<Backend>, queue: Arc<AppQueue>, limited: bool) -> Self {
        Self {
            backend: Some(backend),
            queue,
            limited,
            started: Instant::now(),
            answered: true,
        }
    }

    /// Gives the slot back without counting it as the dyno's answer: the
    /// dyno could not be reached, so it made no progress and the time
    /// says nothing about the app's service times.
    pub(crate) fn abandon(mut self) {
        self.answered = false;
    }

    /// The dyno.
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        // Only `drop` takes it out.
        self.backend
            .as_ref()
            .unwrap_or_else(|| unreachable!("a live slot has its backend"))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(backend) = self.backend.take() else {
            return;
        };
        if self.answered {
            let now = Instant::now();
            backend.mark_progress(now);
            self.queue
                .record_service(now.saturating_duration_since(self.started));
        }
        if self.limited && backend.available() {
            while let Some(waiter) = self.queue.pop() {
                let handed = Slot::new(Arc::clone(&backend), Arc::clone(&self.queue), true);
                match waiter.send(handed) {
                    // The count moves to the waiter.
                    Ok(()) => return,
                    // That request gave up: forget the slot without
                    // releasing the count, and try the next one.
                    Err(mut unsent) => unsent.backend = None,
                }
            }
        }
        backend.sub_in_flight();
    }
}

/// An app's queue of requests waiting for a dyno slot.
#[derive(Debug, Default)]
pub struct AppQueue {
    waiters: Mutex<VecDeque<oneshot::Sender<Slot>>>,
    /// The round-robin policy's turn.
    turn: std::sync::atomic::AtomicUsize,
    /// A moving mean of how long the app's requests hold a dyno, in µs
    /// (0: nothing measured yet).
    service_us: std::sync::atomic::AtomicU64,
}

impl AppQueue {
    fn waiters(&self) -> std::sync::MutexGuard<'_, VecDeque<oneshot::Sender<Slot>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pop(&self) -> Option<oneshot::Sender<Slot>> {
        self.waiters().pop_front()
    }

    fn record_service(&self, took: Duration) {
        let sample = u64::try_from(took.min(MAX_SERVICE_SAMPLE).as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .service_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(if mean == 0 {
                    sample.max(1)
                } else {
                    (mean - mean / SERVICE_WEIGHT + sample / SERVICE_WEIGHT).max(1)
                })
            });
    }

    /// How long a busy dyno may go without answering before it loses ties;
    /// `None` until a request has been measured.
    fn stuck_after(&self) -> Option<Duration> {
        let mean = self.service_us.load(Ordering::Relaxed);
        (mean > 0).then(|| Duration::from_micros(mean.saturating_mul(STUCK_FACTOR)))
    }

    /// Requests waiting now (including ones that gave up but were not
    /// reached yet).
    pub fn len(&self) -> usize {
        self.waiters().len()
    }

    /// Whether no request waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters().is_empty()
    }

    /// Hands free slots of `backends` to waiting requests, oldest first
    /// (after a dyno joined the table).
    pub(crate) fn pump(self: &Arc<Self>, backends: &[Arc<Backend>], max: Option<u32>) {
        let Some(max) = max else {
            return;
        };
        while !self.is_empty() {
            let Some(backend) = least_busy(backends, self.stuck_after(), |b| try_acquire(b, max))
            else {
                return;
            };
            // Dropping the slot hands it to the oldest waiter, or frees it.
            drop(Slot::new(backend, Arc::clone(self), true));
        }
    }
}

/// The outcome of [`pick`].
#[derive(Debug)]
pub(crate) enum Pick {
    /// A dyno, held.
    Slot(Slot),
    /// Every dyno is at `max-concurrency`: wait for a slot.
    Queued(oneshot::Receiver<Slot>),
    /// The queue is full (H11).
    Full,
    /// No dyno is available at all.
    NoDyno,
}

fn try_acquire(backend: &Backend, max: u32) -> bool {
    let max = max as usize;
    match backend
        .in_flight_counter()
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        }) {
        Ok(0) => {
            backend.mark_progress(Instant::now());
            true
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// How a backend ranks for a new request: its requests in flight, then
/// whether it is busy without having answered for `stuck_after` (read at
/// most once per choice, into `now`).
fn load_key(
    backend: &Backend,
    stuck_after: Option<Duration>,
    now: &mut Option<Instant>,
) -> (usize, bool) {
    let load = backend.in_flight();
    let stuck = load > 0
        && stuck_after.is_some_and(|limit| {
            backend.since_progress(*now.get_or_insert_with(Instant::now)) > limit
        });
    (load, stuck)
}

/// The available backend with the lowest [`load_key`], ties at random (one
/// pass, no allocation: this runs for every request). `now` is read on
/// first need unless given.
fn least_loaded(
    backends: &[Arc<Backend>],
    stuck_after: Option<Duration>,
    mut now: Option<Instant>,
) -> Option<&Arc<Backend>> {
    let mut rng = rand::thread_rng();
    let mut best: Option<(&Arc<Backend>, (usize, bool))> = None;
    let mut ties = 0u32;
    for backend in backends.iter().filter(|b| b.available()) {
        let load = load_key(backend, stuck_after, &mut now);
        match best {
            Some((_, least)) if load > least => {}
            Some((_, least)) if load == least => {
                // Reservoir sampling: each tied backend wins with equal odds.
                ties += 1;
                if rng.gen_range(0..ties) == 0 {
                    best = Some((backend, load));
                }
            }
            _ => {
                best = Some((backend, load));
                ties = 1;
            }
        }
    }
    best.map(|(backend, _)| backend)
}

/// The order in which `policy` tries the available backends.
fn candidates<'a>(
    backends: &'a [Arc<Backend>],
    policy: Policy,
    queue: &AppQueue,
) -> Vec<&'a Arc<Backend>> {
    let available: Vec<&Arc<Backend>> = backends.iter().filter(|b| b.available()).collect();
    match policy {
        Policy::LeastOutstanding => {
            let mut rng = rand::thread_rng();
            let (stuck_after, mut now) = (queue.stuck_after(), None);
            let mut keyed: Vec<((usize, bool), u32, &Arc<Backend>)> = available
                .into_iter()
                .map(|b| (load_key(b, stuck_after, &mut now), rng.gen::<u32>(), b))
                .collect();
            keyed.sort_unstable_by_key(|(n, tie, _)| (*n, *tie));
            keyed.into_iter().map(|(_, _, b)| b).collect()
        }
        Policy::Random => {
            let mut shuffled = available;
            shuffled.shuffle(&mut rand::thread_rng());
            shuffled
        }
        Policy::RoundRobin => {
            let n = available.len().max(1);
            let start = queue.turn.fetch_add(1, Ordering::Relaxed) % n;
            let mut turned = available;
            let start = start.min(turned.len());
            turned.rotate_left(start);
            turned
        }
    }
}

/// Among available backends, tries them by [`load_key`] (ties in random
/// order) and returns the first that `acquire` accepts.
fn least_busy(
    backends: &[Arc<Backend>],
    stuck_after: Option<Duration>,
    mut acquire: impl FnMut(&Backend) -> bool,
) -> Option<Arc<Backend>> {
    let mut candidates: Vec<((usize, bool), u32, &Arc<Backend>)> = {
        let mut rng = rand::thread_rng();
        let mut now = None;
        backends
            .iter()
            .filter(|b| b.available())
            .map(|b| (load_key(b, stuck_after, &mut now), rng.gen::<u32>(), b))
            .collect()
    };
    candidates.sort_unstable_by_key(|(n, tie, _)| (*n, *tie));
    candidates
        .into_iter()
        .find(|(_, _, b)| acquire(b))
        .map(|(_, _, b)| Arc::clone(b))
}

/// Chooses one of an app's `backends` for one request, queueing it on
/// `queue` when each has `max_concurrency` requests in flight.
pub(crate) fn pick(
    backends: &[Arc<Backend>],
    queue: &Arc<AppQueue>,
    policy: Policy,
    max_concurrency: Option<u32>,
) -> Pick {
    let available = backends.iter().filter(|b| b.available()).count();
    if available == 0 {
        return Pick::NoDyno;
    }
    let Some(max) = max_concurrency else {
        let chosen = if policy == Policy::LeastOutstanding {
            least_loaded(backends, queue.stuck_after(), None)
        } else {
            candidates(backends, policy, queue).into_iter().next()
        };
        let backend = chosen.map(|b| {
            b.add_in_flight();
            Arc::clone(b)
        });
        return match backend {
            Some(backend) => Pick::Slot(Slot::new(backend, Arc::clone(queue), false)),
            None => Pick::NoDyno,
        };
    };
    // Nobody jumps the queue: while requests wait, a new one waits too.
    if queue.is_empty() {
        let order = candidates(backends, policy, queue);
        if let Some(backend) = order
            .into_iter()
            .find(|b| try_acquire(b, max))
            .map(Arc::clone)
        {
            return Pick::Slot(Slot::new(backend, Arc::clone(queue), true));
        }
    }
    let mut waiters = queue.waiters();
    if waiters.len() >= MAX_QUEUE_PER_DYNO * available {
        return Pick::Full;
    }
    let (tx, rx) = oneshot::channel();
    waiters.push_back(tx);
    Pick::Queued(rx)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::model::AppName;
    use crate::router::table::{AppRoute, RouteSettings, Unavailable};

    fn route(n: u16, max: Option<u32>) -> AppRoute {
        AppRoute {
            app: AppName::parse("demo").expect("app"),
            maintenance: false,
            backends: (1..=n)
                .map(|i| {
                    Arc::new(Backend::new(
                        &format!("web.{i}"),
                        &format!("u{i}"),
                        SocketAddr::from(([127, 0, 0, 1], 30000 + i)),
                    ))
                })
                .collect(),
            unavailable: Unavailable::NoWebDynos,
            settings: RouteSettings {
                max_concurrency: max,
                ..RouteSettings::default()
            },
            queue: Arc::default(),
            certificates: Vec::new(),
            metrics: Arc::default(),
        }
    }

    fn slot(pick: Pick) -> Slot {
        match pick {
            Pick::Slot(s) => s,
            other => panic!("expected a slot, got {other:?}"),
        }
    }

    #[test]
    fn requests_go_to_the_least_busy_dyno() {
        let r = route(3, None);
        let a = slot(r.pick());
        let b = slot(r.pick());
        let c = slot(r.pick());
        let mut dynos = vec![
            a.backend().dyno.clone(),
            b.backend().dyno.clone(),
            c.backend().dyno.clone(),
        ];
        dynos.sort();
        assert_eq!(
            dynos,
            ["web.1", "web.2", "web.3"],
            "one each before any gets two"
        );
        let freed = b.backend().dyno.clone();
        drop(b);
        assert_eq!(slot(r.pick()).backend().dyno, freed);
    }

    #[test]
    fn round_robin_takes_turns_and_random_ignores_load() {
        let mut r = route(3, None);
        r.settings.policy = Policy::RoundRobin;
        let turns: Vec<String> = (0..6)
            .map(|_| slot(r.pick()).backend().dyno.clone())
            .collect();
        assert_eq!(turns[..3], turns[3..], "{turns:?}");
        let mut distinct = turns[..3].to_vec();
        distinct.sort();
        assert_eq!(distinct, ["web.1", "web.2", "web.3"]);

        // Random ignores load: 30000 held requests do not come out even
        // (the odds of exactly 10000 each are about 3 in 100000).
        r.settings.policy = Policy::Random;
        let held: Vec<Slot> = (0..30_000).map(|_| slot(r.pick())).collect();
        let counts: Vec<usize> = r.backends.iter().map(|b| b.in_flight()).collect();
        let spread = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0);
        assert!(spread > 1, "{counts:?}");
        drop(held);
    }

    #[test]
    fn ties_are_broken_at_random() {
        let r = route(4, None);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(slot(r.pick()).backend().dyno.clone());
        }
        assert_eq!(seen.len(), 4, "every idle dyno gets picked sometimes");
    }

    #[test]
    fn ties_go_to_a_dyno_that_answered_lately_over_one_stuck_on_a_long_request() {
        let r = route(3, None);
        let held: Vec<Slot> = (0..3).map(|_| slot(r.pick())).collect();
        let (old, fresh) = (&r.backends[0], &r.backends[1]);
        // Ten seconds on: web.1 and web.3 have answered nothing since they
        // started, web.2 answered 1 ms ago. The app's requests take 10 ms.
        let now = Instant::now() + Duration::from_secs(10);
        fresh.mark_progress(now - Duration::from_millis(1));
        let stuck_after = Some(Duration::from_millis(10 * STUCK_FACTOR));
        for _ in 0..50 {
            let got = least_loaded(&r.backends, stuck_after, Some(now)).expect("a dyno");
            assert_eq!(got.dyno, "web.2");
        }
        // Fewer requests in flight still win over recent progress.
        let (on_old, mut held): (Vec<Slot>, Vec<Slot>) = held
            .into_iter()
            .partition(|s| Arc::ptr_eq(s.backend(), old));
        drop(on_old);
        assert_eq!(old.in_flight(), 0);
        let got = least_loaded(&r.backends, stuck_after, Some(now)).expect("a dyno");
        assert_eq!(got.dyno, "web.1");
        // Unknown service times (nothing measured yet): random ties.
        let mut seen = std::collections::BTreeSet::new();
        held.push(slot(r.pick()));
        assert_eq!(old.in_flight(), 1);
        for _ in 0..200 {
            seen.insert(
                least_loaded(&r.backends, None, Some(now))
                    .expect("a dyno")
                    .dyno
                    .clone(),
            );
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn the_service_time_mean_follows_requests_and_ignores_endless_ones() {
        let queue = AppQueue::default();
        assert_eq!(queue.stuck_after(), None, "nothing measured yet");
        queue.record_service(Duration::from_millis(40));
        assert_eq!(queue.stuck_after(), Some(Duration::from_millis(80)));
        for _ in 0..100 {
            queue.record_service(Duration::from_millis(10));
        }
        let after = queue.stuck_after().expect("measured");
        assert!(
            after > Duration::from_millis(19) && after < Duration::from_millis(21),
            "{after:?}"
        );
        // A day-long stream counts as the cap, not as a day.
        queue.record_service(Duration::from_secs(86_400));
        let after = queue.stuck_after().expect("measured");
        assert!(after < MAX_SERVICE_SAMPLE, "{after:?}");
        // A slot given up because the dyno was unreachable frees the
        // count without feeding the mean.
        let r = route(1, None);
        slot(r.pick()).abandon();
        assert_eq!(r.backends[0].in_flight(), 0);
        assert_eq!(r.queue.stuck_after(), None);
        // A finished request marks its dyno's progress and feeds the mean.
        let held = slot(r.pick());
        drop(held);
        assert_eq!(r.backends[0].in_flight(), 0);
        assert!(r.queue.stuck_after().is_some());
        assert!(r.backends[0].since_progress(Instant::now()) < Duration::from_secs(5));
    }

    #[test]
    fn max_concurrency_queues_in_fifo_order_and_hands_slots_over() {
        let r = route(2, Some(1));
        let a = slot(r.pick());
        let b = slot(r.pick());
        let Pick::Queued(mut first) = r.pick() else {
            panic!("third request queues");
        };
        let Pick::Queued(mut second) = r.pick() else {
            panic!("fourth request queues");
        };
        assert_eq!(r.queue.len(), 2);
        let freed = a.backend().dyno.clone();
        drop(a);
        let got = first.try_recv().expect("the oldest waiter gets the slot");
        assert_eq!(got.backend().dyno, freed);
        assert!(second.try_recv().is_err(), "the next one still waits");
        assert_eq!(got.backend().in_flight(), 1, "the count moved, not doubled");
        drop(b);
        assert!(second.try_recv().is_ok());
    }

    #[test]
    fn a_waiter_that_gave_up_is_skipped_and_counts_stay_exact() {
        let r = route(1, Some(1));
        let a = slot(r.pick());
        let Pick::Queued(gone) = r.pick() else {
            panic!("queues");
        };
        drop(gone);
        let backend = Arc::clone(a.backend());
        drop(a);
        assert_eq!(backend.in_flight(), 0);
        assert!(r.queue.is_empty());
    }

    #[test]
    fn a_full_queue_is_h11_and_no_dyno_is_reported() {
        let r = route(1, Some(1));
        let _held = slot(r.pick());
        let mut queued = Vec::new();
        for _ in 0..MAX_QUEUE_PER_DYNO {
            match r.pick() {
                Pick::Queued(rx) => queued.push(rx),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(r.pick(), Pick::Full));
        assert!(matches!(route(0, None).pick(), Pick::NoDyno));
    }

    #[tokio::test]
    async fn a_new_dyno_takes_queued_requests() {
        let mut r = route(1, Some(1));
        let _held = slot(r.pick());
        let Pick::Queued(rx) = r.pick() else {
            panic!("queues");
        };
        r.backends.push(Arc::new(Backend::new(
            "web.2",
            "u2",
            SocketAddr::from(([127, 0, 0, 1], 30002)),
        )));
        r.queue.pump(&r.backends, Some(1));
        let got = tokio::time::timeout(Duration::from_secs(1), rx)
            .await
            .expect("in time")
            .expect("a slot");
        assert_eq!(got.backend().dyno, "web.2");
    }
}
