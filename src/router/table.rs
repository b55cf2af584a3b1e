//! The route table: an immutable snapshot from host to app and its up web
//! dynos, swapped whole by the control plane and read without locks.
//!
//! The router never waits on SQLite or D-Bus: the control plane (the dyno
//! manager for dynos, a refresher for apps and domains) feeds a
//! [`RouteFeed`], which builds a new [`RouteTable`] on every change and
//! publishes it. State that must outlive a snapshot (a backend's in-flight
//! count and idle connections, an app's request queue) lives in `Arc`s that
//! the feed carries from one snapshot to the next.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

pub(crate) use super::backend::Backend;
pub use super::balance::Policy;
use super::balance::{AppQueue, Pick};
use super::certs::{OperatorCert, OperatorCerts};
use super::metrics::{AppCounters, RouterMetrics};
use crate::model::AppName;
use crate::tls::{Certificate, PemPair};

/// Per-app routing settings, with Heroku's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSettings {
    /// H12: no response headers within this long.
    pub request_timeout: Duration,
    /// H15: no data in either direction for this long after the first byte.
    pub idle_timeout: Duration,
    /// Requests one dyno gets at a time; `None` is unlimited (Heroku).
    pub max_concurrency: Option<u32>,
    /// H20: how long a request waits for a booting web dyno.
    pub boot_wait: Duration,
    /// How a dyno is chosen.
    pub policy: Policy,
    /// Plain HTTP requests are redirected to HTTPS (when the router has a
    /// TLS listener).
    pub force_https: bool,
}

impl Default for RouteSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(55),
            max_concurrency: None,
            boot_wait: Duration::from_secs(75),
            policy: Policy::LeastOutstanding,
            force_https: false,
        }
    }
}

impl RouteSettings {
    /// Heroku's defaults, changed by the app's settings.
    pub(crate) fn for_app(settings: &crate::model::AppSettings) -> Self {
        let default = Self::default();
        Self {
            request_timeout: settings
                .request_timeout
                .map_or(default.request_timeout, Duration::from_secs),
            idle_timeout: settings
                .idle_timeout
                .map_or(default.idle_timeout, Duration::from_secs),
            max_concurrency: settings.max_concurrency,
            boot_wait: default.boot_wait,
            policy: match settings.routing_policy.as_deref() {
                Some("random") => Policy::Random,
                Some("round-robin") => Policy::RoundRobin,
                _ => Policy::LeastOutstanding,
            },
            force_https: settings.force_https.unwrap_or(false),
        }
    }
}

/// Why an app has no dyno to send a request to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Its formation has no web dynos (H14).
    NoWebDynos,
    /// Web dynos should run but all crashed (H10).
    Crashed,
    /// Web dynos are starting; a request may wait for one (H20).
    Booting,
}

/// One app as the router sees it.
#[derive(Debug)]
pub struct AppRoute {
    /// The app.
    pub app: AppName,
    /// Maintenance mode: H80 for every request.
    pub maintenance: bool,
    /// Up web dynos.
    pub backends: Vec<Arc<Backend>>,
    /// What to say when `backends` is empty.
    pub unavailable: Unavailable,
    /// Timeouts and concurrency.
    pub settings: RouteSettings,
    /// The app's queue for `max_concurrency`, shared across snapshots.
    pub queue: Arc<AppQueue>,
    /// Its SNI endpoints' certificates, parsed when they entered the feed.
    pub certificates: Vec<Arc<Certificate>>,
    /// Its request counters, shared across snapshots.
    pub metrics: Arc<AppCounters>,
}

impl AppRoute {
    /// Chooses one of the app's up dynos for a request (see [`super::balance`]).
    pub(crate) fn pick(&self) -> Pick {
        super::balance::pick(
            &self.backends,
            &self.queue,
            self.settings.policy,
            self.settings.max_concurrency,
        )
    }
}

/// The immutable snapshot the router serves from.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_host: HashMap<String, Arc<AppRoute>>,
    operator: Arc<OperatorCerts>,
}

impl RouteTable {
    /// The app serving `host` (a Host header or URI authority: case and
    /// port are ignored, as is one trailing dot).
    pub fn lookup(&self, host: &str) -> Option<&Arc<AppRoute>> {
        let host = normalize_host(host);
        if let Some(route) = self.by_host.get(host.as_ref()) {
            return Some(route);
        }
        // A wildcard domain (`*.example.com`) covers one more label.
        let (_, parent) = host.split_once('.')?;
        self.by_host.get(&format!("*.{parent}"))
    }

    /// Every app, for tests and diagnostics.
    pub(crate) fn apps(&self) -> impl Iterator<Item = &Arc<AppRoute>> {
        self.by_host.values()
    }

    /// The operator's certificates (`router.certificates-dir`).
    pub(crate) fn operator(&self) -> &OperatorCerts {
        &self.operator
    }
}

/// Lowercases a host and drops its port and one trailing dot; borrows
/// when the host is already in that form (the usual case, on every
/// request).
pub(crate) fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = host.trim();
    let without_port = match host.rsplit_once(':') {
        // An IPv6 literal keeps its colons: only `]:port` is a port.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let host = without_port.strip_suffix('.').unwrap_or(without_port);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The router's handle on the current table.
#[derive(Debug, Clone)]
pub struct TableHandle {
    current: Arc<ArcSwap<RouteTable>>,
    version: watch::Sender<u64>,
}

impl Default for TableHandle {
    fn default() -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(RouteTable::default())),
            version: watch::channel(0).0,
        }
    }
}

impl TableHandle {
    /// The current snapshot.
    pub fn load(&self) -> Arc<RouteTable> {
        self.current.load_full()
    }

    /// A receiver that sees every publication (for requests waiting on a
    /// booting dyno).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Drops every dyno's idle keep-alive connections (on shutdown).
    pub(crate) fn close_idle_connections(&self) {
        for route in self.load().apps() {
            for backend in &route.backends {
                backend.pool.clear();
            }
        }
    }

    fn publish(&self, table: RouteTable) {
        self.current.store(Arc::new(table));
        self.version.send_modify(|v| *v += 1);
    }
}

/// What the control plane knows about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The app.
    pub app: AppName,
    /// Maintenance mode.
    pub maintenance: bool,
    /// Custom domains, lowercase.
    pub domains: Vec<String>,
    /// Routing settings.
    pub settings: RouteSettings,
    /// Its SNI endpoints' certificates, PEM.
    pub certificates: Vec<PemPair>,
}

/// One up web dyno, as the dyno manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpDyno {
    /// `web.1`.
    pub dyno: String,
    /// The unit.
    pub unit: String,
    /// Its `$PORT` on the loopback address.
    pub port: u16,
}

/// An app's web dynos, as the dyno manager reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppDynos {
    /// Accepting connections.
    pub up: Vec<UpDyno>,
    /// Started, not accepting yet.
    pub starting: usize,
    /// Dead and waiting for a restart.
    pub crashed: usize,
}

#[derive(Debug, Default)]
struct FeedState {
    apps: BTreeMap<AppName, AppInfo>,
    dynos: BTreeMap<AppName, AppDynos>,
    backends: HashMap<String, Arc<Backend>>,
    /// Dynos that left, while requests still hold them (for draining).
    retired: HashMap<String, std::sync::Weak<Backend>>,
    queues: HashMap<AppName, Arc<AppQueue>>,
    /// Apps' certificates, parsed once: by PEM, so an unchanged one is not
    /// parsed again when the apps are set again (`None`: it did not parse).
    parsed: HashMap<PemPair, Option<Arc<Certificate>>>,
    /// Each app's parsed certificates.
    certificates: HashMap<AppName, Vec<Arc<Certificate>>>,
    /// The operator's certificates, as given and parsed.
    operator_pems: Vec<OperatorCert>,
    operator: Arc<OperatorCerts>,
}

/// Everything a feed was given, to hand on to another feed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// The apps.
    pub apps: Vec<AppInfo>,
    /// Their dynos.
    pub dynos: BTreeMap<AppName, AppDynos>,
    /// The operator's certificates.
    pub operator_certificates: Vec<OperatorCert>,
}

/// Builds and publishes route tables from the control plane's updates.
#[derive(Debug)]
pub struct RouteFeed {
    base_domain: String,
    state: Mutex<FeedState>,
    handle: TableHandle,
    metrics: Arc<RouterMetrics>,
}

impl RouteFeed {
    /// A feed serving `<app>.<base_domain>` into `handle`.
    pub fn new(base_domain: &str, handle: TableHandle) -> Self {
        Self {
            base_domain: base_domain.to_ascii_lowercase(),
            state: Mutex::default(),
            handle,
            metrics: Arc::default(),
        }
    }

    /// The request counters of the router(s) serving from this feed.
    pub(crate) fn metrics(&self) -> &Arc<RouterMetrics> {
        &self.metrics
    }

    /// The handle the router reads.
    pub fn handle(&self) -> &TableHandle {
        &self.handle
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the set of apps (after any app, domain, setting or
    /// certificate change); whether they changed. The refresher calls this
    /// every 30 s as a safety net: an unchanged set publishes nothing.
    pub fn set_apps(&self, apps: Vec<AppInfo>) -> bool {
        let apps: BTreeMap<AppName, AppInfo> =
            apps.into_iter().map(|a| (a.app.clone(), a)).collect();
        let mut state = self.state();
        if state.apps == apps {
            return false;
        }
        let mut parsed = HashMap::new();
        let mut certificates = HashMap::new();
        for app in apps.values() {
            let mut certs = Vec::new();
            for pem in &app.certificates {
                let cert = match state.parsed.get(pem) {
                    Some(known) => known.clone(),
                    None => match Certificate::parse(pem) {
                        Ok(cert) => Some(Arc::new(cert)),
                        Err(e) => {
                            // The API checked it on upload; a certificate
                            // this router cannot read is skipped, not fatal.
                            tracing::warn!(app = %app.app, error = %e, "skipping an SNI endpoint's certificate");
                            None
                        }
                    },
                };
                certs.extend(cert.clone());
                parsed.insert(pem.clone(), cert);
            }
            certificates.insert(app.app.clone(), certs);
        }
        state.parsed = parsed;
        state.certificates = certificates;
        state.apps = apps;
        self.publish(&mut state);
        true
    }

    /// Replaces the operator's certificates (`router.certificates-dir`);
    /// whether they changed.
    pub fn set_operator_certificates(&self, certs: Vec<OperatorCert>) -> bool {
        let mut state = self.state();
        if state.operator_pems == certs {
            return false;
        }
        state.operator = Arc::new(OperatorCerts::build(&certs, &self.base_domain));
        state.operator_pems = certs;
        self.publish(&mut state);
        true
    }

    /// Replaces every app's dynos (after a dyno manager pass). A dyno
    /// missing from `dynos` leaves the table now: the manager calls this
    /// before it stops a dyno, so no new request reaches a stopping dyno.
    pub fn set_dynos(&self, dynos: BTreeMap<AppName, AppDynos>) -> bool {
        let mut state = self.state();
        if state.dynos == dynos {
            return false;
        }
        state.dynos = dynos;
        self.publish(&mut state);
        true
    }

    /// What the feed holds now: apps, their dynos and the operator's
    /// certificates (to pass on to a router in another process).
    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            apps: state.apps.values().cloned().collect(),
            dynos: state.dynos.clone(),
            operator_certificates: state.operator_pems.clone(),
        }
    }

    /// Takes one dyno out of the table at once (before it is stopped) and
    /// returns it, so the caller can wait for its requests to finish.
    pub(crate) fn withdraw(&self, unit: &str) -> Option<Arc<Backend>> {
        let mut state = self.state();
        let backend = state
            .backends
            .get(unit)
            .cloned()
            .or_else(|| state.retired.get(unit).and_then(std::sync::Weak::upgrade));
        let mut changed = false;
        for dynos in state.dynos.values_mut() {
            let before = dynos.up.len();
            dynos.up.retain(|d| d.unit != unit);
            changed |= dynos.up.len() != before;
        }
        if changed {
            self.publish(&mut state);
        }
        backend
    }

    fn publish(&self, state: &mut FeedState) {
        let mut live_units = HashMap::new();
        let mut by_host = HashMap::new();
        let mut live_queues = HashMap::new();
        for (name, info) in &state.apps {
            let dynos = state.dynos.get(name).cloned().unwrap_or_default();
            let backends: Vec<Arc<Backend>> = dynos
                .up
                .iter()
                .map(|up| {
                    let backend = state
                        .backends
                        .get(&up.unit)
                        .filter(|b| b.addr.port() == up.port)
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(Backend::new(
                                &up.dyno,
                                &up.unit,
                                SocketAddr::from(([127, 0, 0, 1], up.port)),
                            ))
                        });
                    live_units.insert(up.unit.clone(), Arc::clone(&backend));
                    backend
                })
                .collect();
            let unavailable = if dynos.starting > 0 {
                Unavailable::Booting
            } else if dynos.crashed > 0 {
                Unavailable::Crashed
            } else {
                Unavailable::NoWebDynos
            };
            let queue = state.queues.get(name).cloned().unwrap_or_default();
            live_queues.insert(name.clone(), Arc::clone(&queue));
            let route = Arc::new(AppRoute {
                app: name.clone(),
                maintenance: info.maintenance,
                backends,
                unavailable,
                settings: info.settings.clone(),
                queue,
                certificates: state.certificates.get(name).cloned().unwrap_or_default(),
                metrics: self.metrics.counters(name),
            });
            by_host.insert(
                format!("{}.{}", name.as_str(), self.base_domain),
                Arc::clone(&route),
            );
            for domain in &info.domains {
                by_host.insert(normalize_host(domain).into_owned(), Arc::clone(&route));
            }
        }
        state.retired.retain(|_, weak| weak.strong_count() > 0);
        for (unit, backend) in &state.backends {
            if !live_units.contains_key(unit) {
                backend.retire();
                state.retired.insert(unit.clone(), Arc::downgrade(backend));
            }
        }
        state.backends = live_units;
        state.queues = live_queues;
        self.metrics.retain(|app| state.apps.contains_key(app));
        self.handle.publish(RouteTable {
            by_host,
            operator: Arc::clone(&state.operator),
        });
        // Requests queued for a dyno slot may fit on a new dyno now.
        let table = self.handle.load();
        for route in table.apps() {
            route
                .queue
                .pump(&route.backends, route.settings.max_concurrency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::backend::QUARANTINE;

    fn app(name: &str) -> AppName {
        AppName::parse(name).expect("app")
    }

    fn info(name: &str, domains: &[&str]) -> AppInfo {
        AppInfo {
            app: app(name),
            maintenance: false,
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            settings: RouteSettings::default(),
            certificates: Vec::new(),
        }
    }

    fn up(dyno: &str, unit: &str, port: u16) -> UpDyno {
        UpDyno {
            dyno: dyno.to_owned(),
            unit: unit.to_owned(),
            port,
        }
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host("Demo.Apps.Example.COM:8080"),
            "demo.apps.example.com"
        );
        assert_eq!(normalize_host("demo.example.com."), "demo.example.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("[::1]"), "[::1]");
    }

    #[test]
    fn the_table_routes_by_host_and_keeps_backends_across_snapshots() {
        let feed = RouteFeed::new("apps.test", TableHandle::default());
        let apps = vec![
            info("one", &["www.one.org"]),
            info("two", &["*.two.org", "exact.two.org"]),
        ];
        assert!(feed.set_apps(apps.clone()));
        let published = *feed.handle().subscribe().borrow();
        assert!(!feed.set_apps(apps), "the same apps again change nothing");
        assert_eq!(
            *feed.handle().subscribe().borrow(),
            published,
            "nor publish"
        );
        let table = feed.handle().load();
        assert_eq!(
            table.lookup("ONE.apps.test:80").map(|r| r.app.as_str()),
            Some("one")
        );
        assert_eq!(
            table.lookup("www.one.org").map(|r| r.app.as_str()),
            Some("one")
        );
        assert_eq!(
            table.lookup("two.apps.test").map(|r| r.app.as_str()),
            Some("two")
        );
        assert!(table.lookup("three.apps.test").is_none());
        assert_eq!(
            table.lookup("any.two.org").map(|r| r.app.as_str()),
            Some("two")
        );
        assert_eq!(
            table.lookup("exact.two.org").map(|r| r.app.as_str()),
            Some("two")
        );
        assert!(
            table.lookup("two.org").is_none(),
            "a wildcard needs a label"
        );
        assert!(table.lookup("a.b.two.org").is_none(), "one label only");
        assert_eq!(
            table.lookup("one.apps.test").map(|r| r.unavailable),
            Some(Unavailable::NoWebDynos)
        );

        let mut dynos = BTreeMap::new();
        dynos.insert(
            app("one"),
            AppDynos {
                up: vec![up("web.1", "u1", 30001), up("web.2", "u2", 30002)],
                starting: 0,
                crashed: 0,
            },
        );
        feed.set_dynos(dynos.clone());
        let first = feed.handle().load();
        let b1 = Arc::clone(&first.lookup("one.apps.test").expect("one").backends[0]);
        b1.add_in_flight();

        // web.2 leaves: web.1 is the same backend (its count survives), and
        // web.2 is retired so no queued request goes to it.
        let b2 = Arc::clone(&first.lookup("one.apps.test").expect("one").backends[1]);
        dynos.get_mut(&app("one")).expect("one").up.pop();
        dynos.get_mut(&app("one")).expect("one").crashed = 1;
        feed.set_dynos(dynos);
        let second = feed.handle().load();
        let route = second.lookup("one.apps.test").expect("one");
        assert_eq!(route.backends.len(), 1);
        assert!(Arc::ptr_eq(&route.backends[0], &b1));
        assert_eq!(route.backends[0].in_flight(), 1);
        assert!(b2.retired() && !b2.available());
        assert_eq!(route.unavailable, Unavailable::Crashed);
    }

    #[tokio::test]
    async fn a_withdrawn_dyno_leaves_at_once_and_drains() {
        let feed = RouteFeed::new("apps.test", TableHandle::default());
        feed.set_apps(vec![info("one", &[])]);
        let mut dynos = BTreeMap::new();
        dynos.insert(
            app("one"),
            AppDynos {
                up: vec![up("web.1", "u1", 30001), up("web.2", "u2", 30002)],
                starting: 0,
                crashed: 0,
            },
        );
        feed.set_dynos(dynos);
        let b1 = Arc::clone(
            &feed
                .handle()
                .load()
                .lookup("one.apps.test")
                .expect("one")
                .backends[0],
        );
        b1.add_in_flight();
        let withdrawn = feed.withdraw("u1").expect("known");
        assert!(Arc::ptr_eq(&withdrawn, &b1) && withdrawn.retired());
        let table = feed.handle().load();
        let left: Vec<&str> = table
            .lookup("one.apps.test")
            .expect("one")
            .backends
            .iter()
            .map(|b| b.unit.as_str())
            .collect();
        assert_eq!(left, ["u2"]);
        assert!(
            !withdrawn.drained(Duration::from_millis(50)).await,
            "one request still runs"
        );
        let waiter = tokio::spawn({
            let w = Arc::clone(&withdrawn);
            async move { w.drained(Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        b1.sub_in_flight();
        assert!(
            waiter.await.expect("join"),
            "drained when the request ended"
        );
    }

    /// The dyno a pick for `route` chose, and the slot that holds it.
    fn picked(route: &AppRoute) -> (String, super::super::balance::Slot) {
        match route.pick() {
            super::super::balance::Pick::Slot(slot) => (slot.backend().dyno.clone(), slot),
            other => panic!("no dyno picked: {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quarantined_backend_is_skipped_for_five_seconds() {
        let feed = RouteFeed::new("apps.test", TableHandle::default());
        feed.set_apps(vec![info("one", &[])]);
        let mut dynos = BTreeMap::new();
        dynos.insert(
            app("one"),
            AppDynos {
                up: vec![up("web.1", "u1", 30001), up("web.2", "u2", 30002)],
                starting: 0,
                crashed: 0,
            },
        );
        feed.set_dynos(dynos);
        let table = feed.handle().load();
        let route = table.lookup("one.apps.test").expect("one");
        route.backends[0].quarantine();
        // web.2 is kept busy, so least-outstanding would choose the idle
        // web.1 every time, were it not skipped.
        let mut held = Vec::new();
        let start = tokio::time::Instant::now();
        let last_ms = QUARANTINE - Duration::from_millis(1);
        for at in (0..10)
            .map(|i| Duration::from_millis(500 * i))
            .chain([last_ms])
        {
            tokio::time::advance(at - start.elapsed()).await;
            let (dyno, slot) = picked(route);
            assert_eq!(dyno, "web.2", "web.1 chosen {at:?} into its quarantine");
            held.push(slot);
        }
        tokio::time::advance(QUARANTINE - start.elapsed()).await;
        let (dyno, _slot) = picked(route);
        assert_eq!(
            dyno, "web.1",
            "web.1 still skipped {QUARANTINE:?} after its quarantine began"
        );
        assert_eq!(route.backends[1].in_flight(), held.len());
    }
}
