//! The dyno manager's loop: read the desired formation and systemd's units,
//! plan, apply, and repeat on every change, event or tick.
//!
//! systemd holds the truth about what runs. On start the manager adopts the
//! `corral-*` units it finds (a restart of corrald restarts no dyno), and
//! the `dynos` table only adds what systemd cannot tell: the release, size
//! and port each unit was started with.

mod boot;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use boot::probe;

use super::crashes::CrashRuns;
use super::launch::{self, LaunchError};
use super::plan::{plan, unit_name, DesiredDyno, ObservedDyno, Step, UnitState, Why};
use super::ports;
use super::unit::{app_mounted, runtime_dir_for};
use super::Units;
use crate::config::DynosConfig;
use crate::model::{AppName, DynoName, Quantity, ReleaseVersion, UnitName, UNIT_PREFIX};
use crate::router::{AppDynos, RouteHub, UpDyno};
use crate::slug::SlugStore;
use crate::state::{self, DesiredApp, DynoRecord, SharedStore, StoreError};
use crate::systemd::{CycleTimer, SystemdError};

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DynoError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// systemd refused or did not answer.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The slug or the runtime directory could not be staged.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// Every port of the configured range is a dyno's or held on the host.
    #[error(
        "no free port for a web dyno in dynos.port-range-start..port-range-end: every one is \
         a dyno's or held by another program on the host; widen the range"
    )]
    NoPort,
}

/// How the API tells the control plane that something changed: the dyno
/// manager reconciles, the route refresher reloads apps and domains, and
/// restart requests reach the manager.
#[derive(Debug, Clone, Default)]
pub(crate) struct DynoWaker(Arc<Waker>);

#[derive(Debug, Default)]
struct Waker {
    dynos: Notify,
    routes: Notify,
    releases: Notify,
    restarts: Mutex<Vec<String>>,
}

impl DynoWaker {
    /// Asks for a reconciliation and a route refresh soon.
    pub(crate) fn wake(&self) {
        self.0.dynos.notify_one();
        self.0.routes.notify_one();
        self.0.releases.notify_one();
    }

    /// Asks the manager to restart these units (like a daily cycle: web
    /// dynos roll).
    pub(crate) fn restart(&self, units: impl IntoIterator<Item = String>) {
        self.0
            .restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(units);
        self.0.dynos.notify_one();
    }

    fn take_restarts(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.restarts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until something changed that may have made a release that
    /// waits for its release phase.
    pub(crate) async fn releases_changed(&self) {
        self.0.releases.notified().await;
    }

    /// Waits until something changed that may alter routes.
    pub(crate) async fn routes_changed(&self) {
        self.0.routes.notified().await;
    }
}

/// Runtime directories younger than this are never swept.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(10);

/// What the manager remembers between passes; systemd and the `dynos`
/// table hold everything else, and the store the crash runs. Lost on
/// restart, which only means adopted web dynos are probed once more.
#[derive(Debug, Default)]
struct Memory {
    /// Each dyno slot's crash run, as on file.
    crashes: CrashRuns,
    /// Dead units already counted as a crash.
    counted: HashSet<String>,
    /// Web units whose `$PORT` accepted a connection.
    up: HashSet<String>,
    /// Web units with a boot watcher running.
    watching: HashSet<String>,
    /// When units were started by this process.
    started: HashMap<String, Instant>,
    /// Units this process killed past their boot timeout: their SIGKILL
    /// is not the kernel's OOM killer (which cgroup v1 cannot tell apart).
    killed: HashSet<String>,
    /// Units someone asked to restart.
    restart: HashSet<String>,
}

/// The dyno manager.
#[derive(Debug)]
pub(crate) struct DynoManager {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    units: Arc<dyn Units>,
    config: DynosConfig,
    waker: DynoWaker,
    memory: Arc<Mutex<Memory>>,
    /// Where up web dynos are published for the router(s).
    routes: Option<Arc<RouteHub>>,
    /// Boot-timeout watchers of web dynos, cancelled with the manager.
    watchers: TaskTracker,
    shutdown: CancellationToken,
}

fn platform_log(app: &str, dyno: &str, message: &str) {
    tracing::info!(target: "corral::platform", app, dyno, "{message}");
}

fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory.lock().unwrap_or_else(|p| p.into_inner())
}

impl DynoManager {
    /// A manager over its dependencies.
    pub(crate) fn new(
        store: SharedStore,
        slugs: Arc<SlugStore>,
        units: Arc<dyn Units>,
        config: DynosConfig,
        waker: DynoWaker,
    ) -> Self {
        Self {
            store,
            slugs,
            units,
            config,
            waker,
            memory: Arc::default(),
            routes: None,
            watchers: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Publishes up web dynos to `feed` for the router, and takes each
    /// dyno out of it before stopping it.
    pub(crate) fn with_routes(mut self, hub: Arc<RouteHub>) -> Self {
        self.routes = Some(hub);
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        lock(&self.memory)
    }

    /// Reconciles on every wake, unit event and tick until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        ports::warn_if_ephemeral(self.config.port_range_start..=self.config.port_range_end);
        self.run_loop(&shutdown).await;
        self.shutdown.cancel();
        self.watchers.close();
        self.watchers.wait().await;
    }

    async fn run_loop(self: &Arc<Self>, shutdown: &CancellationToken) {
        let tick = Duration::from_secs(self.config.reconcile_interval_secs.max(1));
        let mut events = None;
        loop {
            if events.is_none() {
                events = self.units.events(UNIT_PREFIX).await.ok();
            }
            let wait = match self.reconcile_once().await {
                Ok(steps) => steps
                    .iter()
                    .filter_map(|s| match s {
                        Step::Wait { remaining, .. } => Some(*remaining),
                        _ => None,
                    })
                    .min()
                    .map_or(tick, |w| w.min(tick)),
                Err(e) => {
                    tracing::warn!(error = %e, "dyno reconciliation failed; retrying");
                    tick
                }
            };
            let event = async {
                match events.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.waker.0.dynos.notified() => {}
                () = tokio::time::sleep(wait) => {}
                event = event => {
                    if event.is_none() {
                        // The stream ends when systemd re-executes or the
                        // bus drops; the next pass reconnects.
                        events = None;
                    }
                }
            }
        }
    }

    /// One pass: observe, plan, apply. Returns the steps it applied.
    pub(crate) async fn reconcile_once(&self) -> Result<Vec<Step>, DynoError> {
        let asked = self.waker.take_restarts();
        self.memory().restart.extend(asked);
        if !self.memory().crashes.loaded() {
            let runs = self.store.dyno_crashes().await?;
            self.memory().crashes.load(runs);
        }
        let desired_apps = self.store.desired_apps().await?;
        let records = self.store.dyno_records().await?;
        let units = self
            .units
            .list_units(&[&format!("{UNIT_PREFIX}*.service")])
            .await?;
        let elapsed_timers: HashSet<String> = self
            .units
            .list_units(&[&format!("{UNIT_PREFIX}*.timer")])
            .await?
            .into_iter()
            // A timer that fired stays `running` while the unit it
            // activated (the dyno) is active, and turns `elapsed` after.
            .filter(|t| matches!(t.sub_state.as_str(), "running" | "elapsed"))
            .map(|t| format!("{}.service", t.name.trim_end_matches(".timer")))
            .collect();
        let records_by_unit: HashMap<&str, &DynoRecord> =
            records.iter().map(|r| (r.unit.as_str(), r)).collect();

        let mut observed = Vec::new();
        let mut known_units: HashSet<String> = HashSet::new();
        for unit in &units {
            let Some((app, dyno, generation)) = UnitName::parse_dyno_unit(&unit.name) else {
                continue;
            };
            // One-offs (run.N) are not the formation's: never stop or
            // restart them.
            if super::oneoff::is_one_off(&dyno) {
                continue;
            }
            known_units.insert(unit.name.clone());
            let state = match unit.active_state.as_str() {
                "active" | "activating" | "reloading" => UnitState::Running,
                "deactivating" => UnitState::Stopping,
                _ => UnitState::Dead,
            };
            let record = records_by_unit.get(unit.name.as_str());
            if state == UnitState::Dead {
                self.note_death(&unit.name, &app, &dyno, record.copied())
                    .await;
            }
            let port = record.and_then(|r| r.port);
            if let (UnitState::Running, Some(port)) = (state, port) {
                // A dyno adopted after a restart of corrald: see at once
                // whether it serves, so the first route table has it.
                let adopted = {
                    let memory = self.memory();
                    !memory.up.contains(&unit.name) && !memory.started.contains_key(&unit.name)
                };
                if adopted && probe(port).await {
                    self.memory().up.insert(unit.name.clone());
                }
                // Adopted after a restart, or started by this process.
                let limit = desired_apps
                    .iter()
                    .find(|a| a.app == app)
                    .map_or(Duration::from_secs(self.config.boot_timeout_secs), |a| {
                        self.boot_timeout(a)
                    });
                self.watch_boot(&app, &dyno, &unit.name, port, limit);
            }
            let up = self.memory().up.contains(&unit.name);
            observed.push(ObservedDyno {
                app,
                dyno,
                generation: generation.unwrap_or(0),
                release: record.map(|r| r.release),
                size: record.map(|r| r.size.clone()),
                state,
                up,
                cycle_due: elapsed_timers.contains(&unit.name),
                restart: self.memory().restart.contains(&unit.name),
            });
        }
        // A dyno that exited 0 is collected by systemd at once: its record
        // without a unit is a death too, so the backoff applies to it.
        for record in &records {
            if known_units.contains(&record.unit) {
                continue;
            }
            let Some((app, dyno, generation)) = UnitName::parse_dyno_unit(&record.unit) else {
                continue;
            };
            // One-offs (run.N) are not the formation's: never stop or
            // restart them.
            if super::oneoff::is_one_off(&dyno) {
                continue;
            }
            known_units.insert(record.unit.clone());
            self.note_death(&record.unit, &app, &dyno, Some(record))
                .await;
            observed.push(ObservedDyno {
                app,
                dyno,
                generation: generation.unwrap_or(0),
                release: Some(record.release),
                size: Some(record.size.clone()),
                state: UnitState::Dead,
                up: false,
                cycle_due: false,
                restart: false,
            });
        }
        self.sweep_runtime_dirs(&known_units, &records).await;

        let desired = desired_dynos(&desired_apps);
        self.publish_routes(&desired, &observed, &records);
        // A new release starts every crash count afresh.
        let ended = self.memory().crashes.retain_current(&desired);
        if !ended.is_empty() {
            self.store.forget_crashes(ended).await?;
        }
        let steps = {
            let memory = self.memory();
            let now = chrono::Utc::now();
            plan(&desired, &observed, |app, dyno| {
                memory.crashes.since(app, dyno, now)
            })
        };
        for step in &steps {
            if let Err(e) = self.apply(step, &desired_apps).await {
                let (app, dyno) = step.dyno();
                tracing::warn!(%app, %dyno, error = %e, "dyno step failed");
            }
        }
        Ok(steps)
    }

    /// Counts a death once, with Heroku's log lines.
    async fn note_death(
        &self,
        unit: &str,
        app: &AppName,
        dyno: &DynoName,
        record: Option<&DynoRecord>,
    ) {
        let (release, started_at) = (record.map(|r| r.release), record.map(|r| r.started_at));
        if !self.count_crash(unit, app, dyno, release, started_at).await {
            return;
        }
        let killed_by_us = self.memory().killed.remove(unit);
        let (app, dyno) = (app.as_str(), dyno.to_string());
        match self.units.unit_status(unit).await {
            Ok(Some(status)) if status.oom_killed() && !killed_by_us => {
                platform_log(app, &dyno, "Error R15 (Memory quota vastly exceeded)");
                platform_log(app, &dyno, "Stopping process with SIGKILL");
                platform_log(app, &dyno, "Process exited with status 137");
            }
            Ok(Some(status)) => {
                platform_log(
                    app,
                    &dyno,
                    &format!("Process exited with status {}", status.exec_main_status),
                );
            }
            _ => platform_log(app, &dyno, "Process exited with status 0"),
        }
        platform_log(app, &dyno, "State changed from up to crashed");
    }

    /// Counts a death into the dyno's crash run, once per unit, and puts
    /// the run on file; false if it was counted already.
    async fn count_crash(
        &self,
        unit: &str,
        app: &AppName,
        dyno: &DynoName,
        release: Option<ReleaseVersion>,
        started_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> bool {
        let run = {
            let mut memory = self.memory();
            if !memory.counted.insert(unit.to_owned()) {
                return false;
            }
            memory.up.remove(unit);
            let release = release.unwrap_or(ReleaseVersion(0));
            let now = chrono::Utc::now();
            memory
                .crashes
                .count(unit, app, dyno, release, started_at, now)
        };
        let Some(run) = run else {
            return false;
        };
        if let Err(e) = self.store.record_crash(run).await {
            // The backoff still holds in memory; only a restart would lose it.
            tracing::warn!(%unit, error = %e, "cannot record a dyno's crash");
        }
        true
    }

    async fn apply(&self, step: &Step, apps: &[DesiredApp]) -> Result<(), DynoError> {
        let Some(unit) = step.unit() else {
            return Ok(());
        };
        match step {
            Step::Wait { .. } => Ok(()),
            Step::Stop {
                app,
                dyno,
                scale_down,
                ..
            } => {
                let dyno = dyno.to_string();
                // Out of the router first; its requests finish before SIGTERM.
                if let Some(hub) = &self.routes {
                    let limit = Duration::from_secs(self.config.stop_timeout_secs);
                    if !hub.withdraw(unit.as_str(), limit).await {
                        tracing::warn!(%unit, "requests still in flight after the stop timeout; stopping anyway");
                    }
                }
                platform_log(app.as_str(), &dyno, "Stopping all processes with SIGTERM");
                self.units.stop_unit(unit.as_str()).await?;
                if let Ok(Some(status)) = self.units.unit_status(unit.as_str()).await {
                    if status.result == "timeout" {
                        platform_log(
                            app.as_str(),
                            &dyno,
                            &format!(
                                "Error R12 (Exit timeout) -> At least one process failed to exit within {} seconds of SIGTERM",
                                self.config.stop_timeout_secs
                            ),
                        );
                        platform_log(
                            app.as_str(),
                            &dyno,
                            "Stopping remaining processes with SIGKILL",
                        );
                    }
                }
                self.forget(&unit).await?;
                if *scale_down {
                    platform_log(app.as_str(), &dyno, "State changed from up to down");
                }
                Ok(())
            }
            Step::Clean { .. } => self.forget(&unit).await,
            Step::Start {
                want,
                generation: _,
                why,
            } => {
                let Some(app) = apps.iter().find(|a| a.app == want.app) else {
                    return Ok(());
                };
                let (name, dyno) = (app.app.as_str(), want.dyno.to_string());
                match why {
                    Why::Scale => {}
                    Why::Crash => {
                        platform_log(name, &dyno, "State changed from crashed to starting");
                    }
                    Why::Deploy => {
                        platform_log(name, &dyno, "Restarting");
                        platform_log(name, &dyno, "State changed from up to starting");
                    }
                    Why::Cycle => {
                        platform_log(name, &dyno, "Cycling");
                        platform_log(name, &dyno, "State changed from up to starting");
                    }
                    Why::Restart => {
                        platform_log(name, &dyno, "Restarting");
                        platform_log(name, &dyno, "State changed from up to starting");
                    }
                }
                let started = self.start(app, want, &unit).await;
                if let Err(e) = &started {
                    // Its record stays, as a dead generation: the next
                    // attempt waits for the backoff like after a crash.
                    let now = Some(chrono::Utc::now());
                    self.count_crash(unit.as_str(), &want.app, &want.dyno, Some(app.release), now)
                        .await;
                    platform_log(name, &dyno, &format!("Error starting process: {e}"));
                    platform_log(name, &dyno, "State changed from starting to crashed");
                }
                started
            }
        }
    }

    /// Tells the router which web dynos are up, which are starting (or
    /// will be started) and which crashed, per app.
    fn publish_routes(
        &self,
        desired: &[DesiredDyno],
        observed: &[ObservedDyno],
        records: &[DynoRecord],
    ) {
        let Some(feed) = &self.routes else {
            return;
        };
        let ports: HashMap<&str, u16> = records
            .iter()
            .filter_map(|r| r.port.map(|p| (r.unit.as_str(), p)))
            .collect();
        let mut apps: BTreeMap<AppName, AppDynos> = BTreeMap::new();
        let mut slots: BTreeMap<(&AppName, &DynoName), (bool, bool)> = BTreeMap::new();
        for want in desired.iter().filter(|d| d.dyno.process_type().is_web()) {
            apps.entry(want.app.clone()).or_default();
            slots.insert((&want.app, &want.dyno), (false, false));
        }
        for seen in observed.iter().filter(|o| o.dyno.process_type().is_web()) {
            let unit = unit_name(&seen.app, &seen.dyno, seen.generation);
            let port = ports.get(unit.as_str()).copied();
            let entry = apps.entry(seen.app.clone()).or_default();
            match (seen.state, seen.up, port) {
                (UnitState::Running, true, Some(port)) => {
                    entry.up.push(UpDyno {
                        dyno: seen.dyno.to_string(),
                        unit: unit.as_str().to_owned(),
                        port,
                    });
                    if let Some(slot) = slots.get_mut(&(&seen.app, &seen.dyno)) {
                        slot.0 = true;
                    }
                }
                (UnitState::Dead, _, _) => {
                    if let Some(slot) = slots.get_mut(&(&seen.app, &seen.dyno)) {
                        slot.1 = true;
                    }
                }
                _ => {}
            }
        }
        // A wanted dyno that is not up is starting (or about to be), unless
        // all it has is a dead generation.
        for ((app, _), (up, dead)) in slots {
            if up {
                continue;
            }
            if let Some(entry) = apps.get_mut(app) {
                if dead {
                    entry.crashed += 1;
                } else {
                    entry.starting += 1;
                }
            }
        }
        feed.set_dynos(apps);
    }

    /// The app's own boot timeout, or the operator's default.
    fn boot_timeout(&self, app: &DesiredApp) -> Duration {
        Duration::from_secs(
            app.settings
                .boot_timeout
                .unwrap_or(self.config.boot_timeout_secs),
        )
    }

    /// Clears a stopped or dead unit from systemd, the table and memory.
    /// Its runtime directory goes with the next sweep, once its overlay is
    /// unmounted.
    async fn forget(&self, unit: &UnitName) -> Result<(), DynoError> {
        self.units.reset_failed(unit.as_str()).await?;
        let name = unit.as_str().to_owned();
        self.store.forget_dyno(name).await?;
        let mut memory = self.memory();
        memory.counted.remove(unit.as_str());
        memory.up.remove(unit.as_str());
        memory.started.remove(unit.as_str());
        memory.killed.remove(unit.as_str());
        memory.restart.remove(unit.as_str());
        Ok(())
    }

    /// Removes the runtime directories of units that are gone, except
    /// those whose overlay is still mounted (systemd unmounts it once the
    /// unit is inactive; the next sweep takes it).
    async fn sweep_runtime_dirs(&self, known: &HashSet<String>, records: &[DynoRecord]) {
        let root = self.config.runtime_dir.join("dynos");
        let keep: HashSet<std::ffi::OsString> = known
            .iter()
            .chain(records.iter().map(|r| &r.unit))
            .filter_map(|unit| {
                UnitName::parse_dyno_unit(unit).map(|(app, dyno, generation)| {
                    let unit = match generation {
                        Some(g) => UnitName::dyno_generation(&app, &dyno, g),
                        None => UnitName::dyno(&app, &dyno),
                    };
                    runtime_dir_for(&self.config.runtime_dir, &unit)
                        .file_name()
                        .map(ToOwned::to_owned)
                        .unwrap_or_default()
                })
            })
            .collect();
        let result = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&root) else {
                return;
            };
            for entry in entries.flatten() {
                if keep.contains(&entry.file_name()) {
                    continue;
                }
                let dir = entry.path();
                // A directory written moments ago may belong to a dyno
                // being created right now (a one-off, or a start racing
                // this pass); leave it for a later sweep.
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < SWEEP_MIN_AGE);
                if fresh || app_mounted(&dir) {
                    continue;
                }
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a dyno's runtime directory");
                }
            }
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "runtime directory sweep failed");
        }
    }

    async fn start(
        &self,
        app: &DesiredApp,
        want: &DesiredDyno,
        unit: &UnitName,
    ) -> Result<(), DynoError> {
        let command = app
            .process_types
            .get(want.dyno.process_type())
            .cloned()
            .unwrap_or_default();
        let port = if want.dyno.process_type().is_web() {
            let (first, last) = (self.config.port_range_start, self.config.port_range_end);
            let recorded = self.store.recorded_ports().await?;
            Some(ports::pick(first, last, &recorded, ports::bindable).ok_or(DynoError::NoPort)?)
        } else {
            None
        };
        let staged = launch::stage(
            &self.slugs,
            &self.config.runtime_dir,
            unit,
            app.slug,
            &command,
        )
        .await?;
        let cycle = (self.config.cycle_interval_secs > 0).then(|| CycleTimer {
            after: Duration::from_secs(self.config.cycle_interval_secs),
            randomized_delay: Duration::from_secs(self.config.cycle_jitter_secs),
            description: format!(
                "Daily cycling of Corral dyno {} of app {}",
                want.dyno, app.app
            ),
        });
        let dyno = launch::Dyno {
            unit,
            app: &app.app,
            dyno: &want.dyno,
            release: app.release,
            config: &app.config,
            size: &want.size,
            port,
            cycle,
        };
        let spec = launch::service(dyno, &staged, &(&self.config).into());
        platform_log(
            app.app.as_str(),
            &want.dyno.to_string(),
            &format!("Starting process with command `{command}`"),
        );
        // Recorded first: a unit must never run without its release, size
        // and port on file, or a restart of corrald would think it stale.
        let record = DynoRecord {
            unit: unit.as_str().to_owned(),
            app_id: app.app_id,
            name: want.dyno.clone(),
            release: app.release,
            size: want.size.clone(),
            port,
            command,
            started_at: state::timestamp(),
        };
        self.store.record_dyno(record).await?;
        self.memory()
            .started
            .insert(unit.as_str().to_owned(), Instant::now());
        self.units.start_service(spec).await?;
        match port {
            Some(port) => self.watch_boot(
                &app.app,
                &want.dyno,
                unit.as_str(),
                port,
                self.boot_timeout(app),
            ),
            None => platform_log(
                app.app.as_str(),
                &want.dyno.to_string(),
                "State changed from starting to up",
            ),
        }
        Ok(())
    }
}

/// Expands each app's formation into numbered dynos.
pub(crate) fn desired_dynos(apps: &[DesiredApp]) -> Vec<DesiredDyno> {
    let mut desired = Vec::new();
    for app in apps {
        for (process_type, quantity, size) in &app.formation {
            if !process_type.is_scalable() {
                continue;
            }
            for number in 1..=Quantity::get(*quantity) {
                if let Ok(dyno) = DynoName::new(process_type.clone(), number) {
                    desired.push(DesiredDyno {
                        app: app.app.clone(),
                        dyno,
                        release: app.release,
                        size: size.clone(),
                    });
                }
            }
        }
    }
    desired
}
