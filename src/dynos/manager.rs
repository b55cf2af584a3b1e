//! The dyno manager's loop: read the desired formation and systemd's units,
//! plan, apply, and repeat on every change, event or tick.
//!
//! systemd holds the truth about what runs. On start the manager adopts the
//! `corral-*` units it finds (a restart of corrald restarts no dyno), and
//! the `dynos` table only adds what systemd cannot tell: the release, size
//! and port each unit was started with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::plan::{plan, DesiredDyno, ObservedDyno, Step, UnitState};
use super::unit::{dyno_service, launch_script, runtime_dir_for, DynoInput};
use crate::config::DynosConfig;
use crate::model::{DynoName, Quantity, UnitName, UNIT_PREFIX};
use crate::slug::{SlugError, SlugStore};
use crate::state::{self, DesiredApp, DynoRecord, Store, StoreError};
use crate::systemd::{Systemd, SystemdError};

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub enum DynoError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// systemd refused or did not answer.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The slug could not be unpacked.
    #[error(transparent)]
    Slug(#[from] SlugError),
    /// Runtime files could not be written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Every port of the configured range is taken.
    #[error(
        "no free port for a web dyno in dynos.port-range-start..port-range-end; widen the range"
    )]
    NoPort,
    /// A blocking task died.
    #[error("a dyno manager task failed: {0}")]
    Task(String),
}

/// Wakes the manager after a change that may alter the formation.
#[derive(Debug, Clone, Default)]
pub struct DynoWaker(Arc<Notify>);

impl DynoWaker {
    /// Asks for a reconciliation soon.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

#[derive(Debug, Clone, Copy)]
struct Crashes {
    count: u32,
    last: Instant,
    /// Whether the current death was counted already.
    counted: bool,
}

/// The dyno manager.
#[derive(Debug)]
pub struct DynoManager {
    store: Store,
    slugs: Arc<SlugStore>,
    systemd: Arc<Systemd>,
    config: DynosConfig,
    waker: DynoWaker,
    crashes: Mutex<HashMap<String, Crashes>>,
    /// Boot-timeout watchers of web dynos, cancelled with the manager.
    watchers: TaskTracker,
    shutdown: CancellationToken,
}

fn platform_log(app: &str, dyno: &str, message: &str) {
    tracing::info!(target: "corral::platform", app, dyno, "{message}");
}

impl DynoManager {
    /// A manager over its dependencies.
    pub fn new(
        store: Store,
        slugs: Arc<SlugStore>,
        systemd: Arc<Systemd>,
        config: DynosConfig,
        waker: DynoWaker,
    ) -> Self {
        Self {
            store,
            slugs,
            systemd,
            config,
            waker,
            crashes: Mutex::new(HashMap::new()),
            watchers: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    fn crashes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Crashes>> {
        self.crashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reconciles on every wake, unit event and tick until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
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
                events = self.systemd.events(UNIT_PREFIX).await.ok().map(Box::pin);
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
                () = self.waker.0.notified() => {}
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
    pub async fn reconcile_once(&self) -> Result<Vec<Step>, DynoError> {
        let desired_apps = self.store.call(state::desired_apps).await?;
        let records = self.store.call(|c| state::dyno_records(c, None)).await?;
        let units = self
            .systemd
            .list_units(&[&format!("{UNIT_PREFIX}*.service")])
            .await?;
        let records_by_unit: HashMap<&str, &DynoRecord> =
            records.iter().map(|r| (r.unit.as_str(), r)).collect();

        let mut observed = Vec::new();
        for unit in &units {
            // One-offs (run.N) are not the formation's: never stop or restart them.
            let Some((app, dyno)) =
                UnitName::parse_dyno(&unit.name).filter(|(_, d)| !super::oneoff::is_one_off(d))
            else {
                continue;
            };
            let state = match unit.active_state.as_str() {
                "active" | "activating" | "reloading" => UnitState::Running,
                "deactivating" => UnitState::Stopping,
                _ => UnitState::Dead,
            };
            let record = records_by_unit.get(unit.name.as_str());
            if state == UnitState::Dead {
                self.note_death(&unit.name, app.as_str(), &dyno).await;
            }
            observed.push(ObservedDyno {
                app,
                dyno,
                release: record.map(|r| r.release),
                size: record.map(|r| r.size.clone()),
                state,
            });
        }
        // A dyno that exited 0 is collected by systemd at once: its record
        // without a unit is a death too, so the backoff applies to it.
        for record in &records {
            if units.iter().any(|u| u.name == record.unit) {
                continue;
            }
            let Some((app, dyno)) =
                UnitName::parse_dyno(&record.unit).filter(|(_, d)| !super::oneoff::is_one_off(d))
            else {
                continue;
            };
            self.note_death(&record.unit, app.as_str(), &dyno).await;
            observed.push(ObservedDyno {
                app,
                dyno,
                release: Some(record.release),
                size: Some(record.size.clone()),
                state: UnitState::Dead,
            });
        }

        let desired = desired_dynos(&desired_apps);
        let steps = {
            let crashes = self.crashes();
            plan(&desired, &observed, |unit| {
                crashes
                    .get(unit.as_str())
                    .map_or((0, Duration::ZERO), |c| (c.count, c.last.elapsed()))
            })
        };
        for step in &steps {
            if let Err(e) = self.apply(step, &desired_apps).await {
                tracing::warn!(unit = %step.unit(), error = %e, "dyno step failed");
            }
        }
        Ok(steps)
    }

    /// Counts a death once, with Heroku's log lines.
    async fn note_death(&self, unit: &str, app: &str, dyno: &DynoName) {
        {
            let mut crashes = self.crashes();
            let entry = crashes.entry(unit.to_owned()).or_insert(Crashes {
                count: 0,
                last: Instant::now(),
                counted: false,
            });
            if entry.counted {
                return;
            }
            entry.count += 1;
            entry.last = Instant::now();
            entry.counted = true;
        }
        let dyno = dyno.to_string();
        match self.systemd.unit_status(unit).await {
            Ok(Some(status)) if status.oom_killed() => {
                platform_log(app, &dyno, "Error R15 (Memory quota vastly exceeded)");
                platform_log(app, &dyno, "Stopping process with SIGKILL");
                platform_log(app, &dyno, "State changed from up to crashed");
            }
            Ok(Some(status)) => {
                platform_log(
                    app,
                    &dyno,
                    &format!("Process exited with status {}", status.exec_main_status),
                );
                platform_log(app, &dyno, "State changed from up to crashed");
            }
            _ => {
                platform_log(app, &dyno, "Process exited with status 0");
                platform_log(app, &dyno, "State changed from up to crashed");
            }
        }
    }

    async fn apply(&self, step: &Step, apps: &[DesiredApp]) -> Result<(), DynoError> {
        let unit = step.unit();
        match step {
            Step::Wait { .. } => Ok(()),
            Step::Stop { app, dyno } => {
                platform_log(
                    app.as_str(),
                    &dyno.to_string(),
                    "Stopping all processes with SIGTERM",
                );
                self.systemd.stop_unit(unit.as_str()).await?;
                if let Ok(Some(status)) = self.systemd.unit_status(unit.as_str()).await {
                    if status.result == "timeout" {
                        platform_log(
                            app.as_str(),
                            &dyno.to_string(),
                            &format!(
                                "Error R12 (Exit timeout) -> At least one process failed to exit within {} seconds of SIGTERM",
                                self.config.stop_timeout_secs
                            ),
                        );
                        platform_log(
                            app.as_str(),
                            &dyno.to_string(),
                            "Stopping remaining processes with SIGKILL",
                        );
                    }
                }
                self.systemd.reset_failed(unit.as_str()).await?;
                let name = unit.as_str().to_owned();
                self.store
                    .call(move |c| state::forget_dyno(c, &name))
                    .await?;
                self.crashes().remove(unit.as_str());
                let dir = runtime_dir_for(&self.config.runtime_dir, &unit);
                let _ = tokio::fs::remove_dir_all(dir).await;
                platform_log(
                    app.as_str(),
                    &dyno.to_string(),
                    "State changed from up to down",
                );
                Ok(())
            }
            Step::Start(want) | Step::Restart(want) | Step::Replace(want) => {
                let Some(app) = apps.iter().find(|a| a.app == want.app) else {
                    return Ok(());
                };
                if matches!(step, Step::Replace(_)) {
                    // A new release or size starts the count afresh.
                    self.crashes().remove(unit.as_str());
                    self.systemd.stop_unit(unit.as_str()).await?;
                }
                self.systemd.reset_failed(unit.as_str()).await?;
                if let Some(c) = self.crashes().get_mut(unit.as_str()) {
                    c.counted = false;
                }
                self.start(app, want, &unit).await
            }
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
        let slugs = Arc::clone(&self.slugs);
        let digest = app.slug;
        let app_dir = tokio::task::spawn_blocking(move || slugs.unpack(&digest))
            .await
            .map_err(|e| DynoError::Task(e.to_string()))??;
        let port = if want.dyno.process_type().is_web() {
            let (first, last) = (self.config.port_range_start, self.config.port_range_end);
            let name = unit.as_str().to_owned();
            let existing = self
                .store
                .call(move |c| {
                    Ok(state::dyno_records(c, None)?
                        .into_iter()
                        .find(|r| r.unit == name)
                        .and_then(|r| r.port))
                })
                .await?;
            match existing {
                Some(port) => Some(port),
                None => Some(
                    self.store
                        .call(move |c| state::free_port(c, first, last))
                        .await?
                        .ok_or(DynoError::NoPort)?,
                ),
            }
        } else {
            None
        };
        let dir = runtime_dir_for(&self.config.runtime_dir, unit);
        let script = dir.join("launch.sh");
        write_launch_script(&dir, &script, &command).await?;
        let spec = dyno_service(&DynoInput {
            app: &app.app,
            dyno: &want.dyno,
            release: app.release,
            command: &command,
            config: &app.config,
            port,
            size: &want.size,
            app_dir: &app_dir,
            launch_script: &script,
            stop_timeout: Duration::from_secs(self.config.stop_timeout_secs),
        });
        platform_log(
            app.app.as_str(),
            &want.dyno.to_string(),
            &format!("Starting process with command `{command}`"),
        );
        self.systemd.start_service(spec).await?;
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
        self.store
            .call(move |c| state::record_dyno(c, &record))
            .await?;
        match port {
            Some(port) => {
                self.watch_boot(
                    app.app.to_string(),
                    want.dyno.to_string(),
                    unit.clone(),
                    port,
                );
            }
            None => platform_log(
                app.app.as_str(),
                &want.dyno.to_string(),
                "State changed from starting to up",
            ),
        }
        Ok(())
    }

    /// A web dyno is up once its `$PORT` accepts connections; one that has
    /// not bound it within the boot timeout gets Heroku's R10 and SIGKILL,
    /// and the crash handling restarts it.
    fn watch_boot(&self, app: String, dyno: String, unit: UnitName, port: u16) {
        let systemd = Arc::clone(&self.systemd);
        let limit = Duration::from_secs(self.config.boot_timeout_secs);
        let shutdown = self.shutdown.clone();
        self.watchers.spawn(async move {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = tokio::time::Instant::now() + limit;
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    platform_log(&app, &dyno, "State changed from starting to up");
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                // Connecting is the only way to see a bind from outside the
                // dyno; a short interval under the deadline keeps it cheap.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            match systemd.unit_status(unit.as_str()).await {
                Ok(Some(status)) if status.active_state == "active" => {}
                // It died on its own meanwhile: the crash path reports it.
                _ => return,
            }
            platform_log(
                &app,
                &dyno,
                &format!(
                    "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {} seconds of launch",
                    limit.as_secs()
                ),
            );
            platform_log(&app, &dyno, "Stopping process with SIGKILL");
            if let Err(e) = systemd.kill_unit(unit.as_str(), 9).await {
                tracing::warn!(%unit, error = %e, "cannot kill a dyno past its boot timeout");
            }
        });
    }
}

async fn write_launch_script(
    dir: &std::path::Path,
    script: &std::path::Path,
    command: &str,
) -> Result<(), DynoError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| DynoError::Io { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    // Dynos run as dynamic users: they must be able to read the script.
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(io(dir))?;
    tokio::fs::write(script, launch_script(command))
        .await
        .map_err(io(script))?;
    tokio::fs::set_permissions(script, std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(io(script))?;
    Ok(())
}

/// Expands each app's formation into numbered dynos.
pub fn desired_dynos(apps: &[DesiredApp]) -> Vec<DesiredDyno> {
    let mut desired = Vec::new();
    for app in apps {
        for (process_type, quantity, size) in &app.formation {
            if process_type.as_str() == "release" {
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
