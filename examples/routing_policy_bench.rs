//! Benchmark: the Rap Genius scenario, one seeded heavy-tailed trace through the real router under each routing policy (run by `bench/routing-policy/run.sh`).
//!
//! Usage: `cargo run --release --example routing_policy_bench -- [REQUESTS] [SCALE] [DYNOS] [SEED]`
//! (defaults 2000, 0.5, 10, 42).
//!
//! DYNOS single-threaded backends (each serves one request at a time; the
//! rest wait in its FIFO queue, as in a one-process dyno's accept backlog)
//! sit behind Corral's router. An open-loop generator replays one trace of
//! REQUESTS arrivals at 70% of the dynos' capacity, each request on its own
//! connection and task, so nothing in the generator serializes them. The
//! service times are 95% "fast" (uniform 25-75 ms) and 5% "slow" (uniform
//! 1-5 s), all multiplied by SCALE to keep the run short. The same trace is
//! replayed under random (Heroku's router), round-robin, least outstanding
//! (Corral's default) and least outstanding with `max-concurrency=1`, and
//! simulated through an ideal single FIFO queue over all dynos. Total time
//! runs from a request's scheduled arrival to the end of its response;
//! queue time is total minus the service time the backend reports.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral::model::AppName;
use corral::router::{
    self, AppDynos, AppInfo, Context, Limits, Policy, RouteFeed, RouteSettings, TableHandle, UpDyno,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Offered load as a fraction of the dynos' capacity.
const LOAD: f64 = 0.7;
/// Share of slow requests.
const SLOW_SHARE: f64 = 0.05;
/// Fast requests, microseconds before scaling.
const FAST_US: (u64, u64) = (25_000, 75_000);
/// Slow requests, microseconds before scaling.
const SLOW_US: (u64, u64) = (1_000_000, 5_000_000);
const HOST: &str = "bench.localhost";

struct Params {
    requests: usize,
    scale: f64,
    dynos: usize,
    seed: u64,
}

fn parse_args() -> Option<Params> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let params = Params {
        requests: arg(0).map_or(Some(2000), |a| a.parse().ok())?,
        scale: arg(1).map_or(Some(0.5), |a| a.parse().ok())?,
        dynos: arg(2).map_or(Some(10), |a| a.parse().ok())?,
        seed: arg(3).map_or(Some(42), |a| a.parse().ok())?,
    };
    let valid = params.requests >= 100
        && params.scale > 0.0
        && params.scale.is_finite()
        && (1..=200).contains(&params.dynos);
    valid.then_some(params)
}

fn main() -> ExitCode {
    let Some(params) = parse_args() else {
        eprintln!("usage: routing_policy_bench [REQUESTS>=100] [SCALE>0] [DYNOS 1-200] [SEED]");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(params)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routing_policy_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One request of the trace.
#[derive(Debug, Clone, Copy)]
struct Job {
    /// Since the start of the run.
    arrival_us: u64,
    service_us: u64,
}

fn trace(p: &Params) -> (Vec<Job>, f64) {
    let mut rng = StdRng::seed_from_u64(p.seed);
    let scaled = |(lo, hi): (u64, u64)| ((lo as f64 * p.scale), (hi as f64 * p.scale));
    let (fast, slow) = (scaled(FAST_US), scaled(SLOW_US));
    let services: Vec<u64> = (0..p.requests)
        .map(|_| {
            let (lo, hi) = if rng.gen_bool(SLOW_SHARE) { slow } else { fast };
            rng.gen_range(lo..hi) as u64
        })
        .collect();
    // The rate that offers exactly LOAD of capacity for this trace's own
    // mean service time, so the load is right whatever the sample.
    let mean_us = services.iter().sum::<u64>() as f64 / services.len() as f64;
    let rate_per_us = LOAD * p.dynos as f64 / mean_us;
    let mut at = 0.0;
    let jobs = services
        .into_iter()
        .map(|service_us| {
            // Poisson arrivals: exponential gaps by inversion (1 - u is in
            // (0, 1], so the log is finite).
            let u: f64 = rng.gen();
            at += -(1.0 - u).ln() / rate_per_us;
            Job {
                arrival_us: at as u64,
                service_us,
            }
        })
        .collect();
    (jobs, rate_per_us * 1e6)
}

/// What one request saw, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    total_us: u64,
    queue_us: u64,
}

#[derive(Debug, Default)]
struct Stats {
    mean_total: f64,
    p99_total: f64,
    mean_queue: f64,
    p99_queue: f64,
    errors: usize,
    /// Longest the generator sent a request after its scheduled time.
    max_late_us: u64,
}

fn p99(sorted: &[u64]) -> f64 {
    // Nearest rank.
    let rank = ((sorted.len() as f64) * 0.99).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .map_or(f64::NAN, |&v| v as f64)
}

fn stats(outcomes: &[Outcome], errors: usize, max_late_us: u64) -> Stats {
    let mut totals: Vec<u64> = outcomes.iter().map(|o| o.total_us).collect();
    let mut queues: Vec<u64> = outcomes.iter().map(|o| o.queue_us).collect();
    totals.sort_unstable();
    queues.sort_unstable();
    let n = outcomes.len().max(1) as f64;
    Stats {
        mean_total: totals.iter().sum::<u64>() as f64 / n,
        p99_total: p99(&totals),
        mean_queue: queues.iter().sum::<u64>() as f64 / n,
        p99_queue: p99(&queues),
        errors,
        max_late_us,
    }
}

/// The ideal: one FIFO queue in front of all dynos, each request starting
/// on the first dyno to come free.
fn ideal(jobs: &[Job], dynos: usize) -> Stats {
    let mut free_at: BinaryHeap<Reverse<u64>> = (0..dynos).map(|_| Reverse(0)).collect();
    let outcomes: Vec<Outcome> = jobs
        .iter()
        .map(|job| {
            let Reverse(free) = free_at.pop().unwrap_or(Reverse(0));
            let start = free.max(job.arrival_us);
            free_at.push(Reverse(start + job.service_us));
            Outcome {
                total_us: start + job.service_us - job.arrival_us,
                queue_us: start - job.arrival_us,
            }
        })
        .collect();
    stats(&outcomes, 0, 0)
}

/// Starts a dyno that serves one request at a time: `GET /work?us=N` holds
/// it for N microseconds and answers with the time it actually served in
/// `x-service-us`. Requests beyond the one in service wait in a fair (FIFO)
/// semaphore's queue, the stand-in for a single-threaded server's backlog.
async fn dyno(tracker: &TaskTracker, shutdown: &CancellationToken) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let busy = Arc::new(Semaphore::new(1));
    let (tasks, shutdown) = (tracker.clone(), shutdown.clone());
    tracker.spawn(async move {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    // Out of descriptors: back off instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let busy = Arc::clone(&busy);
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let busy = Arc::clone(&busy);
                    async move { Ok::<_, Infallible>(work(&busy, &req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
    });
    Ok(port)
}

async fn work(busy: &Semaphore, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let us: u64 = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("us=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let Ok(_permit) = busy.acquire().await else {
        return Response::new(Full::new(Bytes::from_static(b"closed\n")));
    };
    let start = std::time::Instant::now();
    // A thread sleep is exact to tens of microseconds, where tokio's timer
    // rounds up to the next millisecond: the dyno is busy for just `us`.
    let _ =
        tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_micros(us))).await;
    let served = start.elapsed().as_micros();
    let mut response = Response::new(Full::new(Bytes::from_static(b"done\n")));
    if let Ok(value) = served.to_string().parse() {
        response.headers_mut().insert("x-service-us", value);
    }
    response
}

/// One routing setup under test.
struct Setup {
    name: &'static str,
    policy: Policy,
    max_concurrency: Option<u32>,
}

async fn start_router(
    setup: &Setup,
    ports: &[u16],
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> std::io::Result<SocketAddr> {
    let app = AppName::parse("bench").expect("a valid app name");
    let feed = RouteFeed::new("localhost", TableHandle::default());
    feed.set_apps(vec![AppInfo {
        certificates: Vec::new(),
        app: app.clone(),
        maintenance: false,
        domains: Vec::new(),
        settings: RouteSettings {
            policy: setup.policy,
            max_concurrency: setup.max_concurrency,
            // Heroku's 30 s would cut random's tail short (as H12s) and
            // flatter it; here every request is served to the end.
            request_timeout: Duration::from_secs(600),
            ..RouteSettings::default()
        },
    }]);
    let up = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| UpDyno {
            dyno: format!("web.{}", i + 1),
            unit: format!("bench-web.{}", i + 1),
            port,
        })
        .collect();
    feed.set_dynos(BTreeMap::from([(
        app,
        AppDynos {
            up,
            starting: 0,
            crashed: 0,
        },
    )]));
    let ctx = Arc::new(Context {
        https_port: None,
        git: None,
        table: feed.handle().clone(),
        connect_timeout: Duration::from_secs(5),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Every generator connection comes from 127.0.0.1: lift the per-address
    // cap so that none is refused when random's queues grow.
    let limits = Limits {
        max_connections_per_ip: 1_000_000,
        ..Limits::default()
    };
    tracker.spawn(router::serve(
        listener,
        ctx,
        limits,
        shutdown.clone(),
        tracker.clone(),
    ));
    Ok(addr)
}

/// Sends one request on a fresh connection; the backend's service time.
async fn send(router: SocketAddr, job: Job) -> Result<u64, String> {
    let stream = TcpStream::connect(router)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = Request::get(format!("/work?us={}", job.service_us))
        .header("host", HOST)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let served = response
            .headers()
            .get("x-service-us")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        match served {
            Some(us) if status.is_success() => Ok(us),
            _ => Err(format!("status {status}")),
        }
    };
    tokio::pin!(conn);
    tokio::select! {
        result = exchange => result,
        ended = &mut conn => Err(format!("connection ended early: {ended:?}")),
    }
}

/// Replays the trace through the router at `router`: every request is
/// sent at its own time on its own task, whatever is still in flight.
async fn replay(router: SocketAddr, jobs: &[Job]) -> Stats {
    let start = Instant::now();
    let mut requests = JoinSet::new();
    let mut max_late_us = 0;
    for &job in jobs {
        let due = start + Duration::from_micros(job.arrival_us);
        tokio::time::sleep_until(due).await;
        max_late_us = max_late_us.max(due.elapsed().as_micros() as u64);
        requests.spawn(async move {
            let served = send(router, job).await;
            (served, due.elapsed())
        });
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut errors = 0;
    while let Some(joined) = requests.join_next().await {
        match joined {
            Ok((Ok(service_us), total)) => {
                let total_us = total.as_micros() as u64;
                outcomes.push(Outcome {
                    total_us,
                    queue_us: total_us.saturating_sub(service_us),
                });
            }
            Ok((Err(e), _)) => {
                if errors == 0 {
                    eprintln!("first failed request: {e}");
                }
                errors += 1;
            }
            Err(e) => {
                eprintln!("a request task failed: {e}");
                errors += 1;
            }
        }
    }
    stats(&outcomes, errors, max_late_us)
}

async fn run(p: Params) -> std::io::Result<()> {
    let (jobs, rate) = trace(&p);
    let n = jobs.len() as f64;
    let slow = jobs
        .iter()
        .filter(|j| j.service_us as f64 >= SLOW_US.0 as f64 * p.scale)
        .count();
    let mean_ms = jobs.iter().map(|j| j.service_us).sum::<u64>() as f64 / n / 1e3;
    let span_s = jobs.last().map_or(0.0, |j| j.arrival_us as f64 / 1e6);
    println!(
        "trace: seed {}, {} requests on {} single-threaded dynos; service {:.0}-{:.0} ms ({:.1}%) or {:.0}-{:.0} ms ({:.1}%, {slow} requests),",
        p.seed,
        jobs.len(),
        p.dynos,
        FAST_US.0 as f64 * p.scale / 1e3,
        FAST_US.1 as f64 * p.scale / 1e3,
        100.0 * (n - slow as f64) / n,
        SLOW_US.0 as f64 * p.scale / 1e3,
        SLOW_US.1 as f64 * p.scale / 1e3,
        100.0 * slow as f64 / n,
    );
    println!(
        "       i.e. 50 ms / 1-5 s scaled by {}; mean service {mean_ms:.1} ms; Poisson arrivals at {rate:.1}/s = {:.0}% of capacity; {span_s:.1} s per policy",
        p.scale,
        LOAD * 100.0,
    );

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut ports = Vec::with_capacity(p.dynos);
    for _ in 0..p.dynos {
        ports.push(dyno(&tracker, &shutdown).await?);
    }

    let setups = [
        Setup {
            name: "random (Heroku)",
            policy: Policy::Random,
            max_concurrency: None,
        },
        Setup {
            name: "round-robin",
            policy: Policy::RoundRobin,
            max_concurrency: None,
        },
        Setup {
            name: "least-outstanding",
            policy: Policy::LeastOutstanding,
            max_concurrency: None,
        },
        Setup {
            name: "least-out. + max-conc=1",
            policy: Policy::LeastOutstanding,
            max_concurrency: Some(1),
        },
    ];
    let mut results = Vec::new();
    for setup in &setups {
        // A router of its own per setup, so no queue or pooled connection
        // carries over; the dynos are idle again after each replay.
        let router_shutdown = shutdown.child_token();
        let addr = start_router(setup, &ports, &tracker, &router_shutdown).await?;
        let s = replay(addr, &jobs).await;
        router_shutdown.cancel();
        eprintln!(
            "{}: done (generator at most {:.1} ms late)",
            setup.name,
            s.max_late_us as f64 / 1e3
        );
        results.push((setup.name, s));
    }
    let ideal = ideal(&jobs, p.dynos);
    shutdown.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;

    let ms = |us: f64| us / 1e3;
    println!();
    println!(
        "{:<26} {:>11} {:>11} {:>11} {:>11} {:>7}",
        "policy (ms)", "mean total", "p99 total", "mean queue", "p99 queue", "errors"
    );
    for (name, s) in results
        .iter()
        .map(|(n, s)| (*n, s))
        .chain([("ideal FIFO (simulated)", &ideal)])
    {
        println!(
            "{name:<26} {:>11.1} {:>11.1} {:>11.1} {:>11.1} {:>7}",
            ms(s.mean_total),
            ms(s.p99_total),
            ms(s.mean_queue),
            ms(s.p99_queue),
            s.errors
        );
    }
    let random = &results[0].1;
    println!();
    println!(
        "{:<26} {:>11} {:>11} {:>11} {:>11}",
        "ratio to random", "mean total", "p99 total", "mean queue", "p99 queue"
    );
    for (name, s) in results
        .iter()
        .map(|(n, s)| (*n, s))
        .chain([("ideal FIFO (simulated)", &ideal)])
    {
        println!(
            "{name:<26} {:>11.2} {:>11.2} {:>11.2} {:>11.2}",
            s.mean_total / random.mean_total,
            s.p99_total / random.p99_total,
            s.mean_queue / random.mean_queue,
            s.p99_queue / random.p99_queue,
        );
    }
    println!();
    println!(
        "least-outstanding p99 total / random's:        {:.2}  (goal <= 0.4)",
        results[2].1.p99_total / random.p99_total
    );
    println!(
        "max-concurrency=1 p99 total / ideal FIFO's:    {:.2}  (goal <= 1.1)",
        results[3].1.p99_total / ideal.p99_total
    );
    Ok(())
}
