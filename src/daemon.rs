//! The composition root: builds every part of corrald and runs them under
//! one cancellation tree.
//!
//! Only this file wires concrete types together. Every task is spawned on
//! one [`TaskTracker`]; on shutdown the token is cancelled, listeners stop
//! accepting, open requests finish, and the tracker is awaited within a
//! bounded drain time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::unistd::{chown, Gid, Group};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::api::{server, Api};
use crate::builds::{Builds, BuildsDeps};
use crate::config::Config;
use crate::config::RouterMode;
use crate::dynos::release_phase::ReleasePhase;
use crate::dynos::{DynoManager, DynoWaker, OneOffs, RuntimeMetrics};
use crate::gc;
use crate::logs::drain::{DrainError, DrainSupervisor, DrainWaker};
use crate::logs::{self, sessions::LogSessions, LogHub};
use crate::router::{self, AppInfo, RouteFeed, RouteHub, RouteSettings, TableHandle};
use crate::slug::{SlugError, SlugStore};
use crate::state::{SharedStore, SqliteStore, StoreError};
use crate::systemd::Systemd;

/// How long open requests get to finish after shutdown is asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The slug store could not be opened.
    #[error(transparent)]
    Slugs(#[from] SlugError),
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
    /// The configured dyno sizes could not be installed.
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

async fn bind_router(addr: std::net::SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind {
            what: format!("router {addr}"),
            source,
        })
}

/// Which protocol a socket from systemd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketRole {
    Http,
    Https,
}

/// The role of each of `count` sockets from systemd, by their
/// `LISTEN_FDNAMES` (`FileDescriptorName=`): `https` serves TLS, `http`
/// plain HTTP. When no socket has either name (one socket unit with two
/// `ListenStream=` lines, which systemd names alike), the second socket is
/// the TLS one and the rest are plain.
fn socket_roles(names: Option<&str>, count: usize) -> Vec<SocketRole> {
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    let named = names.iter().any(|n| *n == "http" || *n == "https");
    (0..count)
        .map(|i| match names.get(i).copied() {
            Some("https") => SocketRole::Https,
            _ if !named && i == 1 => SocketRole::Https,
            _ => SocketRole::Http,
        })
        .collect()
}

/// Runs the router's listeners on `tracker`: plain HTTP on `http`, TLS on
/// `https` (certificates by SNI from `table`).
fn spawn_router(
    config: &Config,
    table: &TableHandle,
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), DaemonError> {
    let https_port = https
        .first()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let ctx = Arc::new(router::Context {
        table: table.clone(),
        connect_timeout: Duration::from_millis(config.router.connect_timeout_ms),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
        https_port,
        git: Some(router::git::GitUpstream {
            host: format!("git.{}", config.router.base_domain),
            socket: config.api_socket(),
        }),
    });
    let limits = router::Limits {
        header_timeout: Duration::from_secs(config.router.header_timeout_secs),
        max_connections_per_ip: config.router.max_connections_per_ip,
        ..router::Limits::default()
    };
    for listener in http {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "router listening");
        }
        tracker.spawn(
            router::serve(
                listener,
                Arc::clone(&ctx),
                limits,
                shutdown.clone(),
                tracker.clone(),
            )
            .instrument(tracing::info_span!("router")),
        );
    }
    if https.is_empty() {
        return Ok(());
    }
    let tls =
        router::tls::server_config(table.clone()).map_err(|e| DaemonError::Tls(e.to_string()))?;
    for listener in https {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "router listening for TLS");
        }
        tracker.spawn(
            router::serve_tls(
                listener,
                Arc::clone(&tls),
                Arc::clone(&ctx),
                limits,
                shutdown.clone(),
                tracker.clone(),
            )
            .instrument(tracing::info_span!("router_tls")),
        );
    }
    Ok(())
}

/// The group whose members may connect to the API's Unix socket (a system
/// group made by `systemd/corral.sysusers.conf`). Connecting is only the
/// first gate: every call but `GET /health` still needs a token.
pub const API_GROUP: &str = "corral";

/// Subdirectories of the state directory made owner-only at start (see
/// [`open_store`]). Any new top-level entry of the state directory must be
/// owner-only too: members of [`API_GROUP`] may traverse the directory.
const PRIVATE_SUBDIRS: &[&str] = &["slugs", "repos", "builds", "build-logs"];

/// The id of group `name`, or `None` when the system has no such group
/// (then the socket and state directory keep root's group).
pub fn group_id(name: &str) -> Option<Gid> {
    match Group::from_name(name) {
        Ok(group) => group.map(|g| g.gid),
        Err(e) => {
            tracing::warn!(group = name, error = %e, "cannot look up the group; the API socket stays root's");
            None
        }
    }
}

/// Binds the API socket with mode 0660 and, given one, group `group`,
/// replacing a stale socket file left by a daemon that did not exit
/// cleanly (but never a live one).
fn bind_unix(path: &Path, group: Option<Gid>) -> Result<UnixListener, DaemonError> {
    let io = |source| DaemonError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Bind {
                what: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "a server already answers on this socket",
                ),
            });
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(|source| DaemonError::Bind {
        what: path.display().to_string(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    if let Some(gid) = group {
        chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
    }
    Ok(listener)
}

/// Opens the store in the configured state directory, after securing the
/// directory: mode 0710, of group [`API_GROUP`] when the system has it (its
/// members may reach the API socket in it, not list it), and every entry
/// in it owner-only, since the group can traverse it.
pub fn open_store(config: &Config) -> Result<SqliteStore, DaemonError> {
    secure_state_dir(&config.state_dir, group_id(API_GROUP))?;
    let store = SqliteStore::open(&config.database_path())?;
    // SQLite made a new database (and its -wal and -shm, which take the
    // database's mode) with the process's umask; it holds token hashes,
    // config vars and TLS keys.
    restrict_entries(&config.state_dir)?;
    Ok(store)
}

/// Creates `dir` (mode 0710, group `group` if given) and its
/// [`PRIVATE_SUBDIRS`], then makes every entry in it owner-only.
fn secure_state_dir(dir: &Path, group: Option<Gid>) -> Result<(), DaemonError> {
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710)).map_err(io_at(dir))?;
    if let Some(gid) = group {
        chown(dir, None, Some(gid)).map_err(|e| io_at(dir)(e.into()))?;
    }
    for sub in PRIVATE_SUBDIRS {
        let path = dir.join(sub);
        match std::fs::create_dir(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_at(&path)(e)),
            _ => {}
        }
    }
    restrict_entries(dir)
}

/// Removes group and other permission bits from the regular files and
/// directories directly in `dir` (not following links, not descending).
/// Sockets keep theirs: the API socket is meant for the group, and the
/// others are bound 0600.
fn restrict_entries(dir: &Path) -> Result<(), DaemonError> {
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Gone meanwhile (SQLite removes its -wal on close).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if (meta.is_file() || meta.is_dir()) && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o077))
                .map_err(io_at(&path))?;
        }
    }
    Ok(())
}

/// A `map_err` adapter naming `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_owned();
    move |source| DaemonError::Io { path, source }
}

/// Opens the slug store in the state directory.
pub fn open_slugs(config: &Config) -> Result<SlugStore, DaemonError> {
    Ok(SlugStore::open(&config.slugs_dir(), config.slugs.clone())?)
}

/// How long a router without a saved table waits for corrald's first one.
const FIRST_TABLE_WAIT: Duration = Duration::from_secs(10);

/// Runs only the router (`corrald router`): its listening sockets come
/// from systemd (`LISTEN_FDS`, so a restart of this process refuses no
/// connection: the socket stays open in systemd; see `socket_roles` for
/// which serves TLS), else it binds `router.listen` and
/// `router.listen-tls`; its table comes from corrald over the feed socket, and
/// it keeps serving its last table while corrald is away.
pub async fn run_router(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let feed = Arc::new(RouteFeed::new(
        &config.router.base_domain,
        TableHandle::default(),
    ));
    let (mut http, mut https) = (Vec::new(), Vec::new());
    let mut fds = listenfd::ListenFd::from_env();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    let roles = socket_roles(names.as_deref(), fds.len());
    for (i, role) in roles.into_iter().enumerate() {
        let taken = fds
            .take_tcp_listener(i)
            .map_err(|source| DaemonError::Bind {
                what: format!("socket {i} from systemd"),
                source,
            })?;
        if let Some(listener) = taken {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(listener))
                .map_err(|source| DaemonError::Bind {
                    what: format!("socket {i} from systemd"),
                    source,
                })?;
            match role {
                SocketRole::Http => http.push(listener),
                SocketRole::Https => https.push(listener),
            }
        }
    }
    if http.is_empty() && https.is_empty() {
        http.push(bind_router(config.router.listen).await?);
        if let Some(addr) = config.router.listen_tls {
            https.push(bind_router(addr).await?);
        }
    }
    // systemd's RuntimeDirectory= (kept across restarts): the last table,
    // so a restarted router serves at once, even while corrald is down.
    let cache = std::env::var_os("RUNTIME_DIRECTORY")
        .map(|dir| std::path::PathBuf::from(dir).join("table.json"));
    let cached = cache
        .as_deref()
        .is_some_and(|path| router::split::load_cache(path, &feed));
    let mut first_table = feed.handle().subscribe();
    let tracker = TaskTracker::new();
    tracker.spawn(
        Arc::clone(feed.metrics())
            .run_minutes(shutdown.clone())
            .instrument(tracing::info_span!("router_metrics")),
    );
    tracker.spawn(
        router::split::follow(
            config.router_socket(),
            Arc::clone(&feed),
            cache,
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("route_follower")),
    );
    if !cached {
        // Connections wait in the listen backlog meanwhile: better than
        // 404s from an empty table.
        let waited = tokio::time::timeout(FIRST_TABLE_WAIT, first_table.changed()).await;
        if waited.is_err() {
            tracing::warn!("no route table from corrald yet; serving an empty one");
        }
    }
    spawn_router(&config, feed.handle(), http, https, &shutdown, &tracker)?;
    shutdown.cancelled().await;
    tracing::info!("router shutting down");
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout passed; abandoning open connections");
    }
    Ok(())
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

/// Runs corrald on the given listeners until `shutdown` is cancelled, then
/// drains.
pub async fn serve(
    config: Config,
    store: SharedStore,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    crate::model::install_sizes(&config.dynos.sizes).map_err(DaemonError::Sizes)?;
    // Before the dyno manager and the router start, so both begin from the
    // declared state.
    crate::declared::apply(&*store, &config.apps).await?;
    let systemd = Arc::new(Systemd::new());
    let slugs = Arc::new(open_slugs(&config)?);
    let waker = DynoWaker::default();
    let oneoffs = Arc::new(OneOffs::new(
        store.clone(),
        Arc::clone(&slugs),
        Arc::clone(&systemd),
        config.dynos.clone(),
    ));
    let releases = Arc::new(ReleasePhase::new(
        store.clone(),
        Arc::clone(&slugs),
        Arc::clone(&systemd),
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
                Arc::clone(&systemd),
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
    Ok(())
}

/// Binds, serves and drains: what `corrald serve` does.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let store = open_store(&config)?;
    let listeners = Listeners::bind(&config).await?;
    let socket = config.api_socket();
    let result = serve(config, store.shared(), listeners, shutdown).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    fn gid(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).expect("metadata").gid()
    }

    #[test]
    fn the_state_dir_lets_the_group_reach_the_socket_and_nothing_else() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // What an older corrald left: a database of the umask's mode.
        let db = dir.join("corral.db");
        std::fs::write(&db, "").expect("db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let slugs = dir.join("slugs");
        std::fs::create_dir(&slugs).expect("slugs");
        std::fs::set_permissions(&slugs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).expect("symlink");
        // The own group stands in for `corral`: changing to it needs no
        // privilege, so this runs unprivileged (the Nix build) too.
        let own = nix::unistd::getegid();
        let socket = dir.join("api.sock");
        let _listener = {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _guard = runtime.enter();
            bind_unix(&socket, Some(own)).expect("bind")
        };

        secure_state_dir(&dir, Some(own)).expect("secure");

        assert_eq!(mode(&dir), 0o710);
        assert_eq!(gid(&dir), own.as_raw());
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&slugs), 0o700);
        for sub in PRIVATE_SUBDIRS {
            assert_eq!(mode(&dir.join(sub)), 0o700, "{sub}");
        }
        assert_eq!(mode(&socket), 0o660, "the socket keeps its mode");
        assert_eq!(gid(&socket), own.as_raw());
        // A link is left alone, and its target too.
        assert_ne!(mode(Path::new("/etc/hostname")) & 0o004, 0);
    }

    #[test]
    fn a_missing_group_is_none() {
        assert_eq!(group_id("corral-no-such-group-for-tests"), None);
    }

    #[test]
    fn sockets_from_systemd_are_told_apart_by_name_then_order() {
        use SocketRole::{Http, Https};
        assert_eq!(socket_roles(Some("https:http"), 2), [Https, Http]);
        assert_eq!(
            socket_roles(Some("http:http:https"), 3),
            [Http, Http, Https]
        );
        assert_eq!(socket_roles(Some("http"), 1), [Http]);
        // One socket unit with two ListenStream= lines: names alike.
        assert_eq!(
            socket_roles(Some("corral-router.socket:corral-router.socket"), 2),
            [Http, Https]
        );
        assert_eq!(socket_roles(None, 1), [Http]);
        assert_eq!(socket_roles(None, 0), []);
    }
}
