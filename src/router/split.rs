//! The split router: corrald (the control plane) feeds a separate
//! `corrald router` process over a Unix socket, so that restarting either
//! one drops no request.
//!
//! The protocol is JSON lines. corrald sends the whole table (apps and up
//! dynos; a few kilobytes) on connect and after every change, and asks the
//! router to drain a dyno before stopping it; the router answers when the
//! dyno's requests have finished. A router that loses corrald keeps serving
//! its last table and reconnects; corrald with no router connected goes on
//! without waiting.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::certs::OperatorCert;
use super::metrics::{now_secs, Window};
use super::table::{AppDynos, AppInfo, Policy, RouteFeed, RouteSettings, Snapshot, UpDyno};
use crate::model::AppName;
use crate::tls::PemPair;

/// Longest line either side accepts (a table of thousands of apps fits).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// An app on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct WireApp {
    name: String,
    maintenance: bool,
    domains: Vec<String>,
    request_timeout_ms: u64,
    idle_timeout_ms: u64,
    boot_wait_ms: u64,
    max_concurrency: Option<u32>,
    policy: String,
    /// Absent from an older corrald: off.
    #[serde(default)]
    force_https: bool,
    /// The app's SNI endpoints, PEM (keys included: the socket and the
    /// router's cache are root's alone).
    #[serde(default)]
    certificates: Vec<PemPair>,
}

/// An up dyno on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct WireDyno {
    dyno: String,
    unit: String,
    port: u16,
}

/// An app's dynos on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct WireDynos {
    up: Vec<WireDyno>,
    starting: usize,
    crashed: usize,
}

/// corrald to router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum ToRouter {
    /// The whole table.
    Table {
        apps: Vec<WireApp>,
        dynos: BTreeMap<String, WireDynos>,
        /// `router.certificates-dir`, read by corrald.
        #[serde(default)]
        operator_certificates: Vec<OperatorCert>,
    },
    /// Take `unit` out and answer once its requests finished (or after
    /// `limit_ms`).
    Drain {
        id: u64,
        unit: String,
        limit_ms: u64,
    },
    /// Answer with `app`'s requests over the last `minutes`.
    Metrics { id: u64, app: String, minutes: u32 },
}

/// Router to corrald.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum FromRouter {
    /// The answer to a drain request.
    Drained { id: u64, drained: bool },
    /// The answer to a metrics request.
    Metrics { id: u64, window: Window },
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn to_wire(snapshot: &Snapshot) -> ToRouter {
    let Snapshot {
        apps,
        dynos,
        operator_certificates,
    } = snapshot;
    ToRouter::Table {
        operator_certificates: operator_certificates.clone(),
        apps: apps
            .iter()
            .map(|a| WireApp {
                name: a.app.to_string(),
                maintenance: a.maintenance,
                domains: a.domains.clone(),
                request_timeout_ms: ms(a.settings.request_timeout),
                idle_timeout_ms: ms(a.settings.idle_timeout),
                boot_wait_ms: ms(a.settings.boot_wait),
                max_concurrency: a.settings.max_concurrency,
                policy: match a.settings.policy {
                    Policy::LeastOutstanding => "least-outstanding",
                    Policy::Random => "random",
                    Policy::RoundRobin => "round-robin",
                }
                .to_owned(),
                force_https: a.settings.force_https,
                certificates: a.certificates.clone(),
            })
            .collect(),
        dynos: dynos
            .iter()
            .map(|(app, d)| {
                (
                    app.to_string(),
                    WireDynos {
                        up: d
                            .up
                            .iter()
                            .map(|u| WireDyno {
                                dyno: u.dyno.clone(),
                                unit: u.unit.clone(),
                                port: u.port,
                            })
                            .collect(),
                        starting: d.starting,
                        crashed: d.crashed,
                    },
                )
            })
            .collect(),
    }
}

/// Applies a table from corrald; names that do not parse are skipped (a
/// newer corrald may know more than this router).
fn apply(
    feed: &RouteFeed,
    apps: Vec<WireApp>,
    dynos: BTreeMap<String, WireDynos>,
    operator_certificates: Vec<OperatorCert>,
) {
    let apps = apps
        .into_iter()
        .filter_map(|a| {
            Some(AppInfo {
                app: AppName::parse(&a.name).ok()?,
                maintenance: a.maintenance,
                domains: a.domains,
                settings: RouteSettings {
                    request_timeout: Duration::from_millis(a.request_timeout_ms),
                    idle_timeout: Duration::from_millis(a.idle_timeout_ms),
                    boot_wait: Duration::from_millis(a.boot_wait_ms),
                    max_concurrency: a.max_concurrency,
                    policy: match a.policy.as_str() {
                        "random" => Policy::Random,
                        "round-robin" => Policy::RoundRobin,
                        _ => Policy::LeastOutstanding,
                    },
                    force_https: a.force_https,
                },
                certificates: a.certificates,
            })
        })
        .collect();
    let dynos = dynos
        .into_iter()
        .filter_map(|(name, d)| {
            Some((
                AppName::parse(&name).ok()?,
                AppDynos {
                    up: d
                        .up
                        .into_iter()
                        .map(|u| UpDyno {
                            dyno: u.dyno,
                            unit: u.unit,
                            port: u.port,
                        })
                        .collect(),
                    starting: d.starting,
                    crashed: d.crashed,
                },
            ))
        })
        .collect();
    feed.set_operator_certificates(operator_certificates);
    feed.set_apps(apps);
    feed.set_dynos(dynos);
}

/// How long corrald waits for a split router's figures.
const METRICS_WAIT: Duration = Duration::from_secs(2);

/// Requests to one router that wait for its answer, by id.
#[derive(Debug, Default)]
struct Pending {
    drains: HashMap<u64, oneshot::Sender<bool>>,
    metrics: HashMap<u64, oneshot::Sender<Window>>,
}

/// One connected router, as corrald sees it.
#[derive(Debug)]
struct Remote {
    tx: mpsc::UnboundedSender<ToRouter>,
    pending: Arc<Mutex<Pending>>,
}

/// corrald's side: the route feed, plus the routers in other processes
/// that follow it.
#[derive(Debug)]
pub(crate) struct RouteHub {
    feed: Arc<RouteFeed>,
    remotes: Mutex<Vec<Remote>>,
    next_id: AtomicU64,
    /// Whether the dyno manager published its first view of the dynos. A
    /// corrald that just started knows its apps before its dynos; sending
    /// that table would empty a running router's, so routers get nothing
    /// until then and keep what they have.
    ready: std::sync::atomic::AtomicBool,
}

impl RouteHub {
    /// A hub over `feed` (which an embedded router may read too).
    pub(crate) fn new(feed: Arc<RouteFeed>) -> Self {
        Self {
            feed,
            remotes: Mutex::default(),
            next_id: AtomicU64::new(1),
            ready: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The local feed.
    pub(crate) fn feed(&self) -> &Arc<RouteFeed> {
        &self.feed
    }

    fn remotes(&self) -> std::sync::MutexGuard<'_, Vec<Remote>> {
        self.remotes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn broadcast(&self) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        let table = to_wire(&self.feed.snapshot());
        self.remotes()
            .retain(|remote| remote.tx.send(table.clone()).is_ok());
    }

    /// Replaces the apps (see [`RouteFeed::set_apps`]).
    pub(crate) fn set_apps(&self, apps: Vec<AppInfo>) {
        if self.feed.set_apps(apps) {
            self.broadcast();
        }
    }

    /// Replaces the operator's certificates (see
    /// [`RouteFeed::set_operator_certificates`]).
    pub(crate) fn set_operator_certificates(&self, certs: Vec<OperatorCert>) {
        if self.feed.set_operator_certificates(certs) {
            self.broadcast();
        }
    }

    /// Replaces the dynos (see [`RouteFeed::set_dynos`]).
    pub(crate) fn set_dynos(&self, dynos: BTreeMap<AppName, AppDynos>) {
        let changed = self.feed.set_dynos(dynos);
        let first = !self.ready.swap(true, Ordering::AcqRel);
        if changed || first {
            self.broadcast();
        }
    }

    /// Takes a dyno out of every router and waits, up to `limit`, until
    /// the requests it is serving have finished; whether they all did.
    pub(crate) async fn withdraw(&self, unit: &str, limit: Duration) -> bool {
        let local = self.feed.withdraw(unit);
        self.broadcast();
        let mut answers = Vec::new();
        for remote in self.remotes().iter() {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            remote
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drains
                .insert(id, tx);
            let ask = ToRouter::Drain {
                id,
                unit: unit.to_owned(),
                limit_ms: ms(limit),
            };
            if remote.tx.send(ask).is_ok() {
                answers.push(rx);
            }
        }
        let local_drained = async {
            match local {
                Some(backend) => backend.drained(limit).await,
                None => true,
            }
        };
        let remote_drained = async {
            let mut all = true;
            for rx in answers {
                // A router that went away has nothing left in flight.
                all &= tokio::time::timeout(limit + Duration::from_secs(1), rx)
                    .await
                    .is_ok_and(|r| r.unwrap_or(true));
            }
            all
        };
        let (a, b) = tokio::join!(local_drained, remote_drained);
        a && b
    }

    /// An app's requests over the last `minutes`, counted by the router
    /// inside this process (if any) and by every split router following
    /// this hub, merged. A router that does not answer within two seconds
    /// is left out (and says so in the log).
    pub(crate) async fn metrics(&self, app: &AppName, minutes: u32) -> Window {
        let mut window = self.feed.metrics().window(app, minutes, now_secs());
        let mut answers = Vec::new();
        for remote in self.remotes().iter() {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            remote
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .metrics
                .insert(id, tx);
            let ask = ToRouter::Metrics {
                id,
                app: app.to_string(),
                minutes,
            };
            if remote.tx.send(ask).is_ok() {
                answers.push(rx);
            }
        }
        for rx in answers {
            match tokio::time::timeout(METRICS_WAIT, rx).await {
                Ok(Ok(remote)) => window.merge(&remote),
                _ => tracing::warn!(%app, "a split router did not report its figures in time"),
            }
        }
        window
    }

    /// Accepts routers on `listener` until `shutdown`.
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: UnixListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "router feed accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            tracing::info!("a router connected");
            let (tx, mut rx) = mpsc::unbounded_channel::<ToRouter>();
            let pending: Arc<Mutex<Pending>> = Arc::default();
            {
                if self.ready.load(Ordering::Acquire) {
                    let _ = tx.send(to_wire(&self.feed.snapshot()));
                }
                self.remotes().push(Remote {
                    tx,
                    pending: Arc::clone(&pending),
                });
            }
            let (read, mut write) = stream.into_split();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let mut lines = BufReader::new(read).lines();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        out = rx.recv() => {
                            let Some(message) = out else { return };
                            let Ok(mut line) = serde_json::to_string(&message) else { continue };
                            line.push('\n');
                            if write.write_all(line.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        line = lines.next_line() => {
                            let Ok(Some(line)) = line else {
                                tracing::info!("a router disconnected");
                                return;
                            };
                            if line.len() > MAX_LINE {
                                return;
                            }
                            match serde_json::from_str(&line) {
                                Ok(FromRouter::Drained { id, drained }) => {
                                    let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).drains.remove(&id);
                                    if let Some(waiter) = waiter {
                                        let _ = waiter.send(drained);
                                    }
                                }
                                Ok(FromRouter::Metrics { id, window }) => {
                                    let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).metrics.remove(&id);
                                    if let Some(waiter) = waiter {
                                        let _ = waiter.send(window);
                                    }
                                }
                                Err(e) => tracing::warn!(error = %e, "unreadable message from a router"),
                            }
                        }
                    }
                }
            });
        }
    }
}

/// Binds the feed socket, owner only: the router runs as root without
/// capabilities (see `systemd/corral-router.service`).
pub(crate) fn bind_feed(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Loads the table a previous router process saved at `cache`; whether
/// there was one. A restarted router serves it at once instead of an empty
/// table while it reconnects to corrald (or while corrald is down).
pub(crate) fn load_cache(cache: &Path, feed: &RouteFeed) -> bool {
    let Ok(text) = std::fs::read_to_string(cache) else {
        return false;
    };
    match serde_json::from_str::<ToRouter>(&text) {
        Ok(ToRouter::Table {
            apps,
            dynos,
            operator_certificates,
        }) => {
            apply(feed, apps, dynos, operator_certificates);
            true
        }
        _ => false,
    }
}

/// Saves a table for the next router process: write, then rename, so a
/// crash leaves the old table or the new one.
fn save_cache(cache: &Path, line: &str) {
    let tmp = cache.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, line).and_then(|()| std::fs::rename(&tmp, cache)) {
        tracing::warn!(path = %cache.display(), error = %e, "cannot save the route table");
    }
}

/// The router's side: follows corrald at `socket`, applying tables to
/// `feed` (and saving each to `cache`) and answering drain requests,
/// reconnecting until `shutdown`. Without corrald the last table stays in
/// use.
pub(crate) async fn follow(
    socket: PathBuf,
    feed: Arc<RouteFeed>,
    cache: Option<PathBuf>,
    shutdown: CancellationToken,
) {
    let mut logged = false;
    loop {
        match UnixStream::connect(&socket).await {
            Ok(stream) => {
                tracing::info!(socket = %socket.display(), "following corrald's route table");
                logged = false;
                session(stream, &feed, cache.as_deref(), &shutdown).await;
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!("lost corrald; serving the last route table and reconnecting");
            }
            Err(e) if !logged => {
                tracing::warn!(socket = %socket.display(), error = %e, "cannot reach corrald; retrying");
                logged = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn session(
    stream: UnixStream,
    feed: &Arc<RouteFeed>,
    cache: Option<&Path>,
    shutdown: &CancellationToken,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let (tx, mut rx) = mpsc::unbounded_channel::<FromRouter>();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            answer = rx.recv() => {
                let Some(answer) = answer else { return };
                let Ok(mut line) = serde_json::to_string(&answer) else { continue };
                line.push('\n');
                if write.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                if line.len() > MAX_LINE {
                    return;
                }
                match serde_json::from_str::<ToRouter>(&line) {
                    Ok(ToRouter::Table { apps, dynos, operator_certificates }) => {
                        apply(feed, apps, dynos, operator_certificates);
                        if let Some(cache) = cache {
                            save_cache(cache, &line);
                        }
                    }
                    Ok(ToRouter::Drain { id, unit, limit_ms }) => {
                        let backend = feed.withdraw(&unit);
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let drained = match backend {
                                Some(b) => b.drained(Duration::from_millis(limit_ms)).await,
                                None => true,
                            };
                            let _ = tx.send(FromRouter::Drained { id, drained });
                        });
                    }
                    Ok(ToRouter::Metrics { id, app, minutes }) => {
                        let window = AppName::parse(&app)
                            .map(|app| feed.metrics().window(&app, minutes, now_secs()))
                            .unwrap_or_default();
                        let _ = tx.send(FromRouter::Metrics { id, window });
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable message from corrald"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::TableHandle;

    fn app(name: &str) -> AppName {
        AppName::parse(name).expect("app")
    }

    #[tokio::test]
    async fn a_router_follows_the_hub_and_drains_on_request() {
        let dir = tempfile::tempdir().expect("dir");
        let socket = dir.path().join("router.sock");
        let hub = Arc::new(RouteHub::new(Arc::new(RouteFeed::new(
            "apps.test",
            TableHandle::default(),
        ))));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ca = crate::tls::testing::Ca::new("Test CA");
        let cert = ca.leaf(&["www.demo.org"]);
        let fallback = ca.leaf(&["*.apps.test"]);
        tokio::spawn(Arc::clone(&hub).serve(
            bind_feed(&socket).expect("bind"),
            shutdown.clone(),
            tracker.clone(),
        ));
        hub.set_apps(vec![AppInfo {
            app: app("demo"),
            maintenance: false,
            domains: vec!["www.demo.org".into()],
            settings: RouteSettings {
                max_concurrency: Some(3),
                force_https: true,
                ..RouteSettings::default()
            },
            certificates: vec![cert.clone()],
        }]);
        hub.set_operator_certificates(vec![OperatorCert {
            hostname: "*.apps.test".into(),
            pem: fallback,
        }]);
        hub.set_dynos(BTreeMap::from([(
            app("demo"),
            AppDynos {
                up: vec![UpDyno {
                    dyno: "web.1".into(),
                    unit: "u1".into(),
                    port: 30001,
                }],
                starting: 0,
                crashed: 0,
            },
        )]));

        let remote = Arc::new(RouteFeed::new("apps.test", TableHandle::default()));
        let cache = dir.path().join("table.json");
        tokio::spawn(follow(
            socket.clone(),
            Arc::clone(&remote),
            Some(cache.clone()),
            shutdown.clone(),
        ));
        let route = {
            let mut versions = remote.handle().subscribe();
            loop {
                if let Some(r) = remote.handle().load().lookup("www.demo.org").cloned() {
                    if !r.backends.is_empty() {
                        break r;
                    }
                }
                tokio::time::timeout(Duration::from_secs(5), versions.changed())
                    .await
                    .expect("the table arrives")
                    .expect("open");
            }
        };
        assert_eq!(route.settings.max_concurrency, Some(3));
        assert!(route.settings.force_https);
        assert_eq!(route.certificates.len(), 1, "the SNI endpoint arrived");
        assert!(crate::router::tls::pick(&remote.handle().load(), None).is_some());
        // A request in flight on the remote router holds the drain.
        let backend = Arc::clone(&route.backends[0]);
        backend.add_in_flight();
        let drain = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.withdraw("u1", Duration::from_secs(5)).await }
        });
        let mut versions = remote.handle().subscribe();
        while !remote
            .handle()
            .load()
            .lookup("www.demo.org")
            .is_some_and(|r| r.backends.is_empty())
        {
            tokio::time::timeout(Duration::from_secs(5), versions.changed())
                .await
                .expect("the withdrawal arrives")
                .expect("open");
        }
        assert!(!drain.is_finished(), "it waits for the request");
        backend.sub_in_flight();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), drain)
                .await
                .expect("in time")
                .expect("join"),
            "drained"
        );
        // Figures counted by the split router reach corrald on request,
        // merged with corrald's own.
        route
            .metrics
            .record(404, Duration::from_millis(3), Duration::ZERO);
        hub.feed().metrics().counters(&app("demo")).record(
            200,
            Duration::from_millis(1),
            Duration::ZERO,
        );
        let window = hub.metrics(&app("demo"), 10).await;
        assert_eq!(window.requests, [0, 1, 0, 1, 0]);
        assert!(hub.metrics(&app("other"), 10).await.is_empty());
        shutdown.cancel();
        // The next router process starts from the saved table.
        let restarted = RouteFeed::new("apps.test", TableHandle::default());
        assert!(load_cache(&cache, &restarted));
        assert!(restarted.handle().load().lookup("www.demo.org").is_some());
    }
}
