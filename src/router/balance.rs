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

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::Rng;
use tokio::sync::oneshot;

use super::table::{AppRoute, Backend, Policy};

/// How many queued requests per available dyno before H11.
pub const MAX_QUEUE_PER_DYNO: usize = 50;

/// A request's hold on one dyno: one in-flight count. Dropping it frees
/// the count, or hands it straight to the oldest queued request.
#[derive(Debug)]
pub struct Slot {
    backend: Option<Arc<Backend>>,
    queue: Arc<AppQueue>,
    limited: bool,
}

impl Slot {
    /// The dyno.
    pub fn backend(&self) -> &Arc<Backend> {
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
        if self.limited && backend.available() {
            while let Some(waiter) = self.queue.pop() {
                let handed = Slot {
                    backend: Some(Arc::clone(&backend)),
                    queue: Arc::clone(&self.queue),
                    limited: true,
                };
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
}

impl AppQueue {
    fn waiters(&self) -> std::sync::MutexGuard<'_, VecDeque<oneshot::Sender<Slot>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pop(&self) -> Option<oneshot::Sender<Slot>> {
        self.waiters().pop_front()
    }

    /// Requests waiting now (including ones that gave up but were not
    /// reached yet).
    pub fn len(&self) -> usize {
        self.waiters().len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.waiters().is_empty()
    }

    /// Hands free slots of `backends` to waiting requests, oldest first
    /// (after a dyno joined the table).
    pub fn pump(self: &Arc<Self>, backends: &[Arc<Backend>], max: Option<u32>) {
        let Some(max) = max else {
            return;
        };
        while !self.is_empty() {
            let Some(backend) = least_busy(backends, |b| try_acquire(b, max)) else {
                return;
            };
            // Dropping the slot hands it to the oldest waiter, or frees it.
            drop(Slot {
                backend: Some(backend),
                queue: Arc::clone(self),
                limited: true,
            });
        }
    }
}

/// The outcome of [`pick`].
#[derive(Debug)]
pub enum Pick {
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
    backend
        .in_flight_counter()
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// The available backend with the fewest requests in flight, ties at
/// random (one pass, no allocation: this runs for every request).
fn least_loaded(backends: &[Arc<Backend>]) -> Option<&Arc<Backend>> {
    let mut rng = rand::thread_rng();
    let mut best: Option<(&Arc<Backend>, usize)> = None;
    let mut ties = 0u32;
    for backend in backends.iter().filter(|b| b.available()) {
        let load = backend.in_flight();
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
            let mut keyed: Vec<(usize, u32, &Arc<Backend>)> = available
                .into_iter()
                .map(|b| (b.in_flight(), rng.gen::<u32>(), b))
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

/// Among available backends, tries them from least to most in-flight
/// (ties in random order) and returns the first that `acquire` accepts.
fn least_busy(
    backends: &[Arc<Backend>],
    mut acquire: impl FnMut(&Backend) -> bool,
) -> Option<Arc<Backend>> {
    let mut candidates: Vec<(usize, u32, &Arc<Backend>)> = {
        let mut rng = rand::thread_rng();
        backends
            .iter()
            .filter(|b| b.available())
            .map(|b| (b.in_flight(), rng.gen::<u32>(), b))
            .collect()
    };
    candidates.sort_unstable_by_key(|(n, tie, _)| (*n, *tie));
    candidates
        .into_iter()
        .find(|(_, _, b)| acquire(b))
        .map(|(_, _, b)| Arc::clone(b))
}

/// Chooses a dyno for one request of `route`.
pub fn pick(route: &AppRoute) -> Pick {
    let available = route.backends.iter().filter(|b| b.available()).count();
    if available == 0 {
        return Pick::NoDyno;
    }
    let Some(max) = route.settings.max_concurrency else {
        let chosen = if route.settings.policy == Policy::LeastOutstanding {
            least_loaded(&route.backends)
        } else {
            candidates(&route.backends, route.settings.policy, &route.queue)
                .into_iter()
                .next()
        };
        let backend = chosen.map(|b| {
            b.add_in_flight();
            Arc::clone(b)
        });
        return match backend {
            Some(backend) => Pick::Slot(Slot {
                backend: Some(backend),
                queue: Arc::clone(&route.queue),
                limited: false,
            }),
            None => Pick::NoDyno,
        };
    };
    // Nobody jumps the queue: while requests wait, a new one waits too.
    if route.queue.is_empty() {
        let order = candidates(&route.backends, route.settings.policy, &route.queue);
        if let Some(backend) = order
            .into_iter()
            .find(|b| try_acquire(b, max))
            .map(Arc::clone)
        {
            return Pick::Slot(Slot {
                backend: Some(backend),
                queue: Arc::clone(&route.queue),
                limited: true,
            });
        }
    }
    let mut waiters = route.queue.waiters();
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
    use crate::router::table::{RouteSettings, Unavailable};

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
        let a = slot(pick(&r));
        let b = slot(pick(&r));
        let c = slot(pick(&r));
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
        assert_eq!(slot(pick(&r)).backend().dyno, freed);
    }

    #[test]
    fn round_robin_takes_turns_and_random_ignores_load() {
        let mut r = route(3, None);
        r.settings.policy = Policy::RoundRobin;
        let turns: Vec<String> = (0..6)
            .map(|_| slot(pick(&r)).backend().dyno.clone())
            .collect();
        assert_eq!(turns[..3], turns[3..], "{turns:?}");
        let mut distinct = turns[..3].to_vec();
        distinct.sort();
        assert_eq!(distinct, ["web.1", "web.2", "web.3"]);

        // Random ignores load: 30000 held requests do not come out even
        // (the odds of exactly 10000 each are about 3 in 100000).
        r.settings.policy = Policy::Random;
        let held: Vec<Slot> = (0..30_000).map(|_| slot(pick(&r))).collect();
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
            seen.insert(slot(pick(&r)).backend().dyno.clone());
        }
        assert_eq!(seen.len(), 4, "every idle dyno gets picked sometimes");
    }

    #[test]
    fn max_concurrency_queues_in_fifo_order_and_hands_slots_over() {
        let r = route(2, Some(1));
        let a = slot(pick(&r));
        let b = slot(pick(&r));
        let Pick::Queued(mut first) = pick(&r) else {
            panic!("third request queues");
        };
        let Pick::Queued(mut second) = pick(&r) else {
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
        let a = slot(pick(&r));
        let Pick::Queued(gone) = pick(&r) else {
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
        let _held = slot(pick(&r));
        let mut queued = Vec::new();
        for _ in 0..MAX_QUEUE_PER_DYNO {
            match pick(&r) {
                Pick::Queued(rx) => queued.push(rx),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(pick(&r), Pick::Full));
        assert!(matches!(pick(&route(0, None)), Pick::NoDyno));
    }

    #[tokio::test]
    async fn a_new_dyno_takes_queued_requests() {
        let mut r = route(1, Some(1));
        let _held = slot(pick(&r));
        let Pick::Queued(rx) = pick(&r) else {
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
