//! The composition root: builds every part of corrald and runs them under
//! one cancellation tree.
//!
//! Only this module wires concrete types together (its files hold the
//! state directory and the router's listeners). Every task is spawned on
//! one [`TaskTracker`]; on shutdown the token is cancelled, listeners stop
//! accepting, open requests finish, and the tracker is awaited within a
//! bounded drain time.

mod router_listeners;
mod state_dir;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::api::{server, Api};
use crate::builds::{Builds, BuildsDeps};
use crate::config::Config;
use crate::config::RouterMode;
use crate::dynos::release_phase::ReleasePhase;
use crate::dynos::{DynoManager, DynoWaker, OneOffs, RuntimeMetrics, Units};
use crate::gc;
use crate::logs::drain::{DrainError, DrainSupervisor, DrainWaker};
use crate::logs::{self, sessions::LogSessions, LogHub};
use crate::router::{self, AppInfo, RouteFeed, RouteHub, RouteSettings, TableHandle};
use crate::slug::{GcReport, SlugError};
use crate::state::{SharedStore, SqliteStore, StoreError};
use crate::systemd::Systemd;

/// How long open requests get to finish after shutdown is asked for.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The slug store could not be opened.
    #[error(transparent)]
    Slugs(#[from] SlugError),
    /// A garbage collection failed.
    #[error(transparent)]
    Gc(#[from] crate::gc::GcError),
    /// A listener could not be bound.
    #[error(
        "cannot listen on {what}: {source}; is another corrald running, or is the address wrong?"
    )]
    Bind {
        /// The address or socket path.
        what: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Log drains could not be set up (the operator's CA file).
    #[error("cannot set up log drains: {0}")]
    Drains(DrainError),
    /// rustls refused the router's TLS configuration.
    #[error("cannot set up TLS for the router: {0}")]
    Tls(String),
    /// The configured dyno sizes are not a usable table.
    #[error("dynos.sizes: {0}")]
    Sizes(String),
    /// A directory or file could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

pub use router_listeners::run_router;
use router_listeners::spawn_router;
use state_dir::bind_unix;
pub(crate) use state_dir::open_slugs;
pub use state_dir::open_store;
pub(crate) use state_dir::{group_id, API_GROUP};

/// The listeners the API serves on, bound before the daemon starts.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The Unix socket.
    pub unix: Option<UnixListener>,
    /// The optional TCP listener.
    pub tcp: Option<TcpListener>,
    /// The router's listener.
    pub router: Option<TcpListener>,
    /// The router's TLS listener (`router.listen-tls`).
    pub router_tls: Option<TcpListener>,
}

impl Listeners {
    /// Binds what the configuration asks for.
    pub async fn bind(config: &Config) -> Result<Self, DaemonError> {
        let unix = Some(bind_unix(&config.api_socket(), group_id(API_GROUP))?);
        let tcp = match config.api.listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| DaemonError::Bind {
                            what: addr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let embedded = config.router.mode == RouterMode::Embedded;
        let router = match embedded {
            true => Some(bind_router(config.router.listen).await?),
            false => None,
        };
        let router_tls = match config.router.listen_tls.filter(|_| embedded) {
            Some(addr) => Some(bind_router(addr).await?),
            None => None,
        };
        Ok(Self {
            unix,
            tcp,
            router,
            router_tls,
        })
    }
}

pub(super) async fn bind_router(addr: std::net::SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            what: format!("router {addr}"),
            source,
        })
}

/// Keeps the route table's apps (names, domains, maintenance, settings)
/// in step with the store: at start, after every API change, and every
/// 30 s as a safety net. The router itself never reads the store.
async fn refresh_routes(
    store: SharedStore,
    routes: Arc<RouteHub>,
    waker: DynoWaker,
    shutdown: CancellationToken,
) {
    loop {
        match store.route_apps().await {
            Ok(apps) => routes.set_apps(
                apps.into_iter()
                    .map(|app| AppInfo {
                        settings: RouteSettings::for_app(&app.settings),
                        app: app.app,
                        maintenance: app.maintenance,
                        domains: app.domains,
                        certificates: app.certificates,
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read apps for the route table; keeping the last one")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = waker.routes_changed() => {}
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// One slug garbage collection (`corrald gc-once`), with what a running
/// corrald would keep; the report names what went.
pub async fn collect_garbage(config: &Config) -> Result<GcReport, DaemonError> {
    let store = open_store(config)?;
    let slugs = Arc::new(open_slugs(config)?);
    Ok(crate::gc::gc_once(
        &store,
        &slugs,
        &config.gc,
        Some(config.builds.nix_gcroots_dir.clone()),
    )
    .await?)
}

/// Runs corrald on the given listeners, over the store [`open_store`]
/// opened, until `shutdown` is cancelled, then drains.
pub async fn serve(
    config: Config,
    store: SqliteStore,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let store: SharedStore = store.shared();
    let config = Arc::new(config);
    // Checked again here for a config not loaded from a file; the parts
    // that size dynos take the table from `config.dynos.size_table()`.
    let sizes = crate::model::SizeTable::new(&config.dynos.sizes).map_err(DaemonError::Sizes)?;
    // Before the dyno manager and the router start, so both begin from the
    // declared state.
    crate::declared::apply(&*store, &config.apps, &sizes).await?;
    let systemd = Arc::new(Systemd::new());
    let slugs = Arc::new(open_slugs(&config)?);
    let waker = DynoWaker::default();
    let units = Arc::clone(&systemd) as Arc<dyn Units>;
    let oneoffs = Arc::new(OneOffs::new(
        store.clone(),
        Arc::clone(&slugs),
        Arc::clone(&units),
        config.dynos.clone(),
    ));
    let releases = Arc::new(ReleasePhase::new(
        store.clone(),
        Arc::clone(&slugs),
        Arc::clone(&units),
        config.dynos.clone(),
        waker.clone(),
    ));
    let builds = Arc::new(Builds::new(
        BuildsDeps {
            store: store.clone(),
            slugs: Arc::clone(&slugs),
            systemd: Arc::clone(&systemd),
            config: Arc::clone(&config),
            waker: waker.clone(),
            releases: Arc::clone(&releases),
        },
        std::env::current_exe().ok(),
    ));
    match builds.shipped_buildpacks() {
        Some(dir) => tracing::info!(dir = %dir.display(), "shipped buildpacks"),
        None => tracing::warn!(
            "no shipped buildpacks found beside corrald; set builds.buildpacks-dir or give apps buildpacks by URL"
        ),
    }
    let tracker = TaskTracker::new();
    let runtime_metrics =
        (config.dynos.enabled && config.dynos.metrics_interval_secs > 0).then(|| {
            Arc::new(RuntimeMetrics::new(
                store.clone(),
                Arc::clone(&systemd),
                sizes.clone(),
                Duration::from_secs(config.dynos.metrics_interval_secs),
            ))
        });
    let mut api = Api::new(
        store.clone(),
        Arc::clone(&slugs),
        Arc::clone(&systemd),
        Arc::clone(&config),
        waker.clone(),
        Arc::clone(&oneoffs),
    )
    .with_builds(Arc::clone(&builds), tracker.clone());
    if config.logs.enabled {
        let hub = LogHub::new();
        spawn_log_follower(hub.clone(), &shutdown, &tracker);
        // Drains read the journal themselves, each from its own cursor.
        let drains = DrainSupervisor::new(store.clone(), &config.logs, tracker.clone())
            .map_err(DaemonError::Drains)?;
        let waker = DrainWaker::default();
        tracker.spawn(
            drains
                .run(waker.clone(), shutdown.clone())
                .instrument(tracing::info_span!("log_drains")),
        );
        api = api
            .with_logs(LogSessions::new(
                hub,
                &config.logs.platform_name,
                shutdown.clone(),
            ))
            .with_drains(waker);
    }
    if let Some(sampler) = &runtime_metrics {
        api = api.with_runtime_metrics(Arc::clone(sampler));
        tracker.spawn(
            Arc::clone(sampler)
                .run(shutdown.clone())
                .instrument(tracing::info_span!("runtime_metrics")),
        );
    }
    let hook_socket = config.git_hook_socket();
    let hooks = Builds::bind_hooks(&hook_socket).map_err(|source| DaemonError::Bind {
        what: hook_socket.display().to_string(),
        source,
    })?;
    tracker.spawn(
        Arc::clone(&builds)
            .serve_hooks(hooks, shutdown.clone(), tracker.clone())
            .instrument(tracing::info_span!("builds")),
    );
    // The data plane reads route table snapshots that the control plane
    // (the dyno manager, the refresher below) publishes through the feed.
    let routes = Arc::new(RouteHub::new(Arc::new(RouteFeed::new(
        &config.router.base_domain,
        TableHandle::default(),
    ))));
    if config.router.mode == RouterMode::Split {
        let path = config.router_socket();
        let listener = router::split::bind_feed(&path).map_err(|source| DaemonError::Bind {
            what: path.display().to_string(),
            source,
        })?;
        tracing::info!(socket = %path.display(), "feeding a split router");
        tracker.spawn(
            Arc::clone(&routes)
                .serve(listener, shutdown.clone(), tracker.clone())
                .instrument(tracing::info_span!("route_hub")),
        );
    }
    tracker.spawn(
        Arc::clone(routes.feed().metrics())
            .run_minutes(shutdown.clone())
            .instrument(tracing::info_span!("router_metrics")),
    );
    let api = api.with_router_metrics(Arc::clone(&routes));
    tracker.spawn(
        refresh_routes(
            store.clone(),
            Arc::clone(&routes),
            waker.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("route_refresher")),
    );
    if let Some(dir) = config.router.certificates_dir.clone() {
        let routes = Arc::clone(&routes);
        tracker.spawn(
            router::tls::watch_certificates_dir(
                dir,
                move |certs| routes.set_operator_certificates(certs),
                shutdown.clone(),
            )
            .instrument(tracing::info_span!("operator_certificates")),
        );
    }
    spawn_router(
        &config,
        routes.feed().handle(),
        listeners.router.into_iter().collect(),
        listeners.router_tls.into_iter().collect(),
        &shutdown,
        &tracker,
    )?;
    if config.dynos.enabled {
        tracker.spawn(
            releases
                .run(shutdown.clone())
                .instrument(tracing::info_span!("release_phase")),
        );
        tracker.spawn(
            oneoffs
                .run(shutdown.clone())
                .instrument(tracing::info_span!("one_off_dynos")),
        );
        let manager = Arc::new(
            DynoManager::new(
                store.clone(),
                Arc::clone(&slugs),
                Arc::clone(&units),
                config.dynos.clone(),
                waker,
            )
            .with_routes(Arc::clone(&routes)),
        );
        tracker.spawn(
            manager
                .run(shutdown.clone())
                .instrument(tracing::info_span!("dyno_manager")),
        );
    }
    tracker.spawn(
        gc::run_gc(
            store,
            slugs,
            config.gc.clone(),
            Some(config.builds.nix_gcroots_dir.clone()),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("slug_gc")),
    );

    if let Some(listener) = listeners.unix {
        tracing::info!(socket = %config.api_socket().display(), "API listening");
        tracker.spawn(
            server::run(listener, api.clone(), shutdown.clone(), tracker.clone())
                .instrument(tracing::info_span!("api_unix")),
        );
    }
    if let Some(listener) = listeners.tcp {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "API listening");
        }
        tracker.spawn(
            server::run(listener, api.clone(), shutdown.clone(), tracker.clone())
                .instrument(tracing::info_span!("api_tcp")),
        );
    }

    // Report systemd once at start: not fatal, the API serves without it.
    match systemd.version().await {
        Ok(version) => tracing::info!(%version, "connected to systemd"),
        Err(e) => {
            tracing::warn!(error = %e, "systemd is not reachable; dynos cannot run until it is")
        }
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    drain(&tracker).await;
    Ok(())
}

/// Closes `tracker` and waits up to [`DRAIN_TIMEOUT`] for its tasks (open
/// requests among them) to finish; what is left then is abandoned.
async fn drain(tracker: &TaskTracker) {
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tracker.len(),
            "drain timeout passed; abandoning open connections"
        );
    }
}

/// Binds, serves and drains: what `corrald serve` does.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let store = open_store(&config)?;
    let listeners = Listeners::bind(&config).await?;
    let socket = config.api_socket();
    let result = serve(config, store, listeners, shutdown).await;
    // Leaving the socket file would make the next start check it; removing
    // it on a clean exit keeps the state directory tidy.
    let _ = std::fs::remove_file(socket);
    result
}

/// Follows the journal on a blocking thread of its own, feeding `hub`,
/// until shutdown.
fn spawn_log_follower(hub: LogHub, shutdown: &CancellationToken, tracker: &TaskTracker) {
    let shutdown = shutdown.clone();
    let note: logs::reader::PlatformNote = Box::new(|app, dyno, message| {
        tracing::warn!(target: "corral::platform", app, dyno, "{message}");
    });
    tracker.spawn(async move {
        let follow = tokio::task::spawn_blocking(move || {
            logs::reader::run_follower(&hub, &shutdown, &note);
        });
        if let Err(e) = follow.await {
            tracing::error!(error = %e, "the journal follower panicked");
        }
    });
}
