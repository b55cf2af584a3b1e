//! Benchmark front: Corral's real router serving one app on the given backend ports (used by `bench/router/run.sh`).
//!
//! Usage: `cargo run --release --example bench_router -- [--threads=N] PORT BACKEND_PORT...`
//!
//! Listens on `127.0.0.1:PORT` and routes Host `bench.localhost` to an app
//! `bench` whose up web dynos are the backend ports, with the router's
//! default settings (least outstanding requests, no concurrency limit) and
//! default limits. The router has N worker threads (default 2, like
//! nginx's `worker_processes 2` and HAProxy's `nbthread 2` in the script),
//! as `Limits::workers` (the daemon keeps the default, one per CPU); the
//! runtime that starts it does nothing else, like the daemon's would.
//! Tracing is at `warn` (override with `RUST_LOG`), so the per-request
//! router log line is not written: nginx and HAProxy run with their access
//! logs off too. SIGTERM or Ctrl-C stops it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use corral::model::AppName;
use corral::router::{
    self, AppDynos, AppInfo, Context, Limits, RouteFeed, RouteSettings, TableHandle, UpDyno,
};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Args {
    threads: usize,
    port: u16,
    backends: Vec<u16>,
}

fn parse_args() -> Option<Args> {
    let mut threads = 2;
    let mut ports = Vec::new();
    for arg in std::env::args().skip(1) {
        if let Some(n) = arg.strip_prefix("--threads=") {
            threads = n.parse().ok().filter(|&n| n > 0)?;
        } else {
            ports.push(arg.parse::<u16>().ok()?);
        }
    }
    let (&port, backends) = ports.split_first()?;
    if backends.is_empty() {
        return None;
    }
    Some(Args {
        threads,
        port,
        backends: backends.to_vec(),
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!("usage: bench_router [--threads=N] PORT BACKEND_PORT...");
        return ExitCode::FAILURE;
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_router: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let app = AppName::parse("bench").expect("a valid app name");
    let feed = RouteFeed::new("localhost", TableHandle::default());
    feed.set_apps(vec![AppInfo {
        certificates: Vec::new(),
        app: app.clone(),
        maintenance: false,
        domains: Vec::new(),
        settings: RouteSettings::default(),
    }]);
    let up = args
        .backends
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

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ctx = Arc::new(Context {
        https_port: None,
        git: None,
        table: feed.handle().clone(),
        // The daemon's default.
        connect_timeout: Duration::from_secs(5),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
    });
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    let server = tracker.spawn(router::serve(
        listener,
        ctx,
        Limits {
            workers: args.threads,
            ..Limits::default()
        },
        shutdown.clone(),
        tracker.clone(),
    ));

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    shutdown.cancel();
    tracker.close();
    let _ = server.await;
    // Keep-alive clients may hold connections open: do not wait long.
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    Ok(())
}
