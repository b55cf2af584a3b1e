//! The only module that speaks D-Bus: a lazily connected handle on systemd.
//!
//! corrald must start (and serve its API) even when systemd is not reachable
//! yet, so the connection is made on first use and remade after it breaks.
//! Every call is bounded by a timeout: a wedged bus must not wedge the API.
//!
//! Dynos are transient services ([`ServiceSpec`]). Starting and stopping one
//! waits for systemd's `JobRemoved` signal of that very job: the signal
//! stream is opened (filtered by unit name on the bus) before the call is
//! made, and read while the call is in flight, so neither a race nor a full
//! queue can lose it. Nothing here polls with sleeps.
//!
//! Observed on systemd 252 (cgroup v1, `tests/systemd_dbus.rs`): a program
//! that cannot be executed fails the start job (result `failed`, the unit
//! stays `failed` with `ExecMainStatus` 203); an OOM kill on cgroup v1 ends
//! the unit with `Result` `signal` and `ExecMainStatus` 9 (SIGKILL), while
//! cgroup v2 reports `oom-kill`. See [`UnitStatus::oom_killed`]. A
//! `Type=exec` program that exits non-zero at once fails its start job now
//! and then (3 of 40 `sh -c 'exit 3'` on systemd 252): systemd saw the exit
//! before the exec. Its status says it ran ([`UnitStatus::ran`]).

mod error;
mod events;
mod proxies;
mod spec;
mod units;
mod usage;

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{Stream, StreamExt};
use tokio::sync::Mutex;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

pub use error::SystemdError;
pub use events::UnitEvent;
pub use spec::{
    escape_path, mount_unit_name, BindPath, CycleTimer, Limits, OverlayMount, Sandbox, ServiceSpec,
    Stdio,
};
pub use usage::{MemoryStat, UnitUsage};

// `WatchedService` is defined below, beside the start code it shares.

use error::{
    breaks_connection, error_message, error_name, ALREADY_SUBSCRIBED, INVALID_ARGS, NO_SUCH_UNIT,
    UNIT_EXISTS,
};
use proxies::{ManagerProxy, ServiceProxy, UnitProxy};

/// How long one D-Bus call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a start or stop job may take by default. A stop takes up to the
/// unit's `TimeoutStopUSec` before SIGKILL, so this must stay above the
/// longest one Corral sets.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// `statfs` magic of a cgroup2 file system.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// One unit as `ListUnitsByPatterns` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    /// The unit name, e.g. `corral-demo-web.1.service`.
    pub name: String,
    /// Its `Description=`.
    pub description: String,
    /// `loaded`, `not-found`, ...
    pub load_state: String,
    /// `active`, `inactive`, `failed`, ...
    pub active_state: String,
    /// `running`, `exited`, `dead`, ...
    pub sub_state: String,
}

/// A loaded service's state and usage, read from its D-Bus properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// The unit name.
    pub name: String,
    /// `active`, `activating`, `deactivating`, `inactive`, `failed`.
    pub active_state: String,
    /// `running`, `exited`, `dead`, `failed`, `stop-sigterm`, ...
    pub sub_state: String,
    /// The main process, 0 when none runs.
    pub main_pid: u32,
    /// Exit status, or the signal number when killed, of the last main process.
    pub exec_main_status: i32,
    /// How it ended: 1 exited, 2 killed, 3 dumped core (`CLD_*`); 0 not yet.
    pub exec_main_code: i32,
    /// `success`, `exit-code`, `signal`, `core-dump`, `timeout`, `oom-kill`, ...
    pub result: String,
    /// Memory use in bytes, when the cgroup reports it.
    pub memory_current: Option<u64>,
    /// CPU time used in ns, when the cgroup reports it.
    pub cpu_usage_nsec: Option<u64>,
    /// Processes and threads, when the cgroup reports it.
    pub tasks_current: Option<u64>,
    /// When the unit last became active, µs since the epoch (0: never).
    pub active_enter_timestamp_usec: u64,
}

/// `CLD_KILLED`: the main process was killed by a signal.
const CLD_KILLED: i32 = 2;
/// `SIGKILL`.
const SIGKILL: i32 = 9;

/// systemd's own exit statuses for a process that failed before or in
/// `execve` (`EXIT_CHDIR` 200 to `EXIT_CREDENTIALS` 243, systemd.exec(5)).
const SETUP_FAILURES: std::ops::RangeInclusive<i32> = 200..=243;

/// `CLD_EXITED`: the main process exited.
const CLD_EXITED: i32 = 1;
/// `CLD_DUMPED`: the main process was killed and dumped core.
const CLD_DUMPED: i32 = 3;

impl UnitStatus {
    /// Whether the main process ran and has ended on its own terms, rather
    /// than failing in systemd's setup (a status of 200 to 243). A command
    /// that exits with such a status itself is misread; none should.
    pub fn ran(&self) -> bool {
        match self.exec_main_code {
            CLD_EXITED => !SETUP_FAILURES.contains(&self.exec_main_status),
            CLD_KILLED..=CLD_DUMPED => true,
            _ => false,
        }
    }

    /// Whether the unit most likely died of its memory limit. cgroup v2 says
    /// so (`Result` `oom-kill`). cgroup v1 has no OOM events for systemd:
    /// the kernel's SIGKILL shows as `Result` `signal` with status 9, or,
    /// when the killed process was the child of a shell (`sh -c` does not
    /// always exec its last command), as the shell's exit status 137
    /// (128 + SIGKILL). With a `MemoryMax=` set, an unrequested SIGKILL is
    /// counted as OOM; the caller rules out the kills it sent itself.
    pub fn oom_killed(&self) -> bool {
        self.result == "oom-kill"
            || (self.result == "signal"
                && self.exec_main_code == CLD_KILLED
                && self.exec_main_status == SIGKILL)
            || (self.result == "exit-code"
                && self.exec_main_code == CLD_EXITED
                && self.exec_main_status == 128 + SIGKILL)
    }
}

/// The live connection and what was set up on it.
#[derive(Debug, Clone)]
struct Bus {
    conn: zbus::Connection,
    manager: ManagerProxy<'static>,
    /// Whether `Subscribe` was called on this connection; systemd emits
    /// job and unit signals only while some client is subscribed.
    subscribed: bool,
}

/// A handle on the host's systemd, cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Systemd {
    bus: Mutex<Option<Bus>>,
    job_timeout: Duration,
    cgroup_v2: bool,
}

impl Default for Systemd {
    fn default() -> Self {
        Self::new()
    }
}

impl Systemd {
    /// A handle that connects to the system bus on first use. Whether the
    /// host runs cgroup v2 is read from `/sys/fs/cgroup` now (override it
    /// with [`Systemd::with_cgroup_v2`] if systemd's view differs).
    pub fn new() -> Self {
        Systemd {
            bus: Mutex::new(None),
            job_timeout: DEFAULT_JOB_TIMEOUT,
            cgroup_v2: detect_cgroup_v2(),
        }
    }

    /// The same handle with another limit for start and stop jobs.
    pub fn with_job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = timeout;
        self
    }

    /// The same handle, rendering units for a cgroup v2 host (`true`) or not.
    pub fn with_cgroup_v2(mut self, cgroup_v2: bool) -> Self {
        self.cgroup_v2 = cgroup_v2;
        self
    }

    /// Whether units are rendered for cgroup v2 (`SocketBind*` included).
    pub fn cgroup_v2(&self) -> bool {
        self.cgroup_v2
    }

    /// The connection, made (and subscribed, if asked) on first use.
    async fn bus(&self, subscribe: bool) -> Result<Bus, SystemdError> {
        let mut guard = self.bus.lock().await;
        let bus = match guard.as_mut() {
            Some(bus) => bus,
            None => {
                let conn = connect().await?;
                let manager = bounded("Hello", manager_proxy(&conn)).await?;
                guard.insert(Bus {
                    conn,
                    manager,
                    subscribed: false,
                })
            }
        };
        if subscribe && !bus.subscribed {
            match tokio::time::timeout(CALL_TIMEOUT, bus.manager.subscribe()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if error_name(&e) == Some(ALREADY_SUBSCRIBED) => {}
                Ok(Err(source)) => {
                    if breaks_connection(&source) {
                        *guard = None;
                    }
                    return Err(SystemdError::Call {
                        method: "Subscribe",
                        source,
                    });
                }
                Err(_) => {
                    *guard = None;
                    return Err(timeout_error("Subscribe"));
                }
            }
            bus.subscribed = true;
        }
        Ok(bus.clone())
    }

    /// Drops the cached connection if it is still `conn`, so the next call
    /// reconnects (systemd or the bus may have restarted).
    async fn forget(&self, conn: &zbus::Connection) {
        let mut guard = self.bus.lock().await;
        if guard
            .as_ref()
            .is_some_and(|bus| bus.conn.unique_name() == conn.unique_name())
        {
            *guard = None;
        }
    }

    /// Runs one call with the timeout. A transport failure or a timeout
    /// drops the connection; an error reply from systemd does not.
    async fn dbus_call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, SystemdError>
    where
        F: FnOnce(Bus) -> Fut,
        Fut: Future<Output = zbus::Result<T>>,
    {
        let bus = self.bus(false).await?;
        let conn = bus.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, f(bus)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => {
                if breaks_connection(&source) {
                    self.forget(&conn).await;
                }
                Err(SystemdError::Call { method, source })
            }
            Err(_) => {
                self.forget(&conn).await;
                Err(timeout_error(method))
            }
        }
    }

    /// systemd's version string (the `Version` property of the Manager).
    pub async fn version(&self) -> Result<String, SystemdError> {
        self.dbus_call(
            "Get(Version)",
            |bus| async move { bus.manager.version().await },
        )
        .await
    }

    /// The units whose names match any of `patterns` (shell globs).
    pub async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitInfo>, SystemdError> {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let units = self
            .dbus_call("ListUnitsByPatterns", |bus| async move {
                bus.manager.list_units_by_patterns(&[], &patterns).await
            })
            .await?;
        Ok(units
            .into_iter()
            .map(|u| UnitInfo {
                name: u.0,
                description: u.1,
                load_state: u.2,
                active_state: u.3,
                sub_state: u.4,
            })
            .collect())
    }

    /// Creates and starts a transient service (job mode `fail`) and waits
    /// until systemd has executed its program (`Type=exec`). Errors:
    /// [`SystemdError::UnitExists`] if a unit of that name is still loaded
    /// (a failed one needs [`Systemd::reset_failed`] first),
    /// [`SystemdError::JobFailed`] if the program could not be started
    /// (e.g. it does not exist; the unit then stays `failed`). A program
    /// that exits within milliseconds may also fail the job, as systemd can
    /// see the exit before the exec; its status tells which.
    pub async fn start_service(&self, spec: ServiceSpec) -> Result<(), SystemdError> {
        let unit = spec.name.clone();
        spec.validate()
            .map_err(|reason| SystemdError::InvalidSpec {
                unit: unit.clone(),
                reason,
            })?;
        let properties = spec.properties(self.cgroup_v2);
        let aux_owned = spec.aux_units();
        let aux: Vec<proxies::AuxUnit<'_>> = aux_owned
            .iter()
            .map(|(name, props)| (name.as_str(), props.as_slice()))
            .collect();
        let (name, properties, aux) = (&unit, &properties, &aux);
        let outcome = self
            .run_job(&unit, "start", "StartTransientUnit", |manager| async move {
                manager
                    .start_transient_unit(name, "fail", properties, aux)
                    .await
            })
            .await?;
        // The spec holds the stdio fds: systemd has its own copies now.
        drop(spec);
        start_failure(unit, outcome).map_or(Ok(()), Err)
    }

    /// Like [`Systemd::start_service`], on a connection of the service's
    /// own that holds a reference on the unit (`AddRef=`, as `systemd-run
    /// --wait` does): systemd keeps the unit loaded, even after a clean
    /// exit, until [`WatchedService`] is dropped, so its exit status can be
    /// read after it ended. A failed unit still needs
    /// [`Systemd::reset_failed`] afterwards.
    pub async fn start_watched(&self, spec: ServiceSpec) -> Result<WatchedService, SystemdError> {
        let unit = spec.name.clone();
        spec.validate()
            .map_err(|reason| SystemdError::InvalidSpec {
                unit: unit.clone(),
                reason,
            })?;
        let mut conn = connect().await?;
        // The watch reads this connection's one queue, which also carries
        // the replies `wait_exit` waits for: room for a burst of other
        // units' signals between two reads, as for `events`.
        conn.set_max_queued(events::QUEUE);
        let manager = bounded("Hello", manager_proxy(&conn)).await?;
        // JobRemoved and the state changes are emitted only to subscribers.
        bounded("Subscribe", manager.subscribe()).await?;
        let bus = Bus {
            conn: conn.clone(),
            manager,
            subscribed: true,
        };
        let mut properties = spec.properties(self.cgroup_v2);
        properties.push(("AddRef", zbus::zvariant::Value::from(true)));
        let aux_owned = spec.aux_units();
        let aux: Vec<proxies::AuxUnit<'_>> = aux_owned
            .iter()
            .map(|(name, props)| (name.as_str(), props.as_slice()))
            .collect();
        let (name, properties, aux) = (&unit, &properties, &aux);
        let outcome = self
            .run_job_on(
                bus.clone(),
                &unit,
                "start",
                "StartTransientUnit",
                |manager| async move {
                    manager
                        .start_transient_unit(name, "fail", properties, aux)
                        .await
                },
            )
            .await?;
        drop(spec);
        if let Some(e) = start_failure(unit.clone(), outcome) {
            // A program that exits non-zero within milliseconds can fail
            // its start job: systemd sees the exit before the exec. It ran,
            // though, and the failed unit keeps its status: that is an end
            // to report, not a failure to start.
            let ran = matches!(e, SystemdError::JobFailed { .. })
                && self
                    .unit_status(&unit)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|status| status.ran());
            if !ran {
                return Err(e);
            }
        }
        // Opened after the start on purpose: a signal sent now carries the
        // unit's state as it is now, while one queued at creation could say
        // `inactive` about a unit that has not run yet.
        let source = bounded("AddMatch", events::open(&conn)).await?;
        let events = events::unit_events(source, unit.clone(), ());
        Ok(WatchedService {
            unit,
            bus,
            events: Box::pin(events),
        })
    }

    /// Stops a unit (job mode `replace`: it supersedes a pending start) and
    /// waits until it is inactive or failed, i.e. after `TimeoutStopUSec`
    /// and SIGKILL at worst. A unit that is not loaded is already stopped.
    pub async fn stop_unit(&self, name: &str) -> Result<(), SystemdError> {
        let outcome = self
            .run_job(name, "stop", "StopUnit", |manager| async move {
                manager.stop_unit(name, "replace").await
            })
            .await?;
        match outcome {
            Ok(result) if result == "done" => Ok(()),
            Ok(result) => Err(SystemdError::JobFailed {
                unit: name.to_owned(),
                kind: "stop",
                result,
            }),
            Err(e) if error_name(&e) == Some(NO_SUCH_UNIT) => Ok(()),
            Err(source) => Err(SystemdError::Call {
                method: "StopUnit",
                source,
            }),
        }
    }

    /// Sends `signal` to every process of the unit (`whom` = `all`), without
    /// changing its state. [`SystemdError::NoSuchUnit`] if it is not loaded.
    pub async fn kill_unit(&self, name: &str, signal: i32) -> Result<(), SystemdError> {
        self.dbus_call("KillUnit", |bus| async move {
            bus.manager.kill_unit(name, "all", signal).await
        })
        .await
        .map_err(|e| no_such_unit(e, name))
    }

    /// Clears a unit's failed state, so systemd collects it and the name can
    /// be started again. A unit that is not loaded is fine.
    pub async fn reset_failed(&self, name: &str) -> Result<(), SystemdError> {
        match self
            .dbus_call("ResetFailedUnit", |bus| async move {
                bus.manager.reset_failed_unit(name).await
            })
            .await
        {
            Err(SystemdError::Call { source, .. }) if error_name(&source) == Some(NO_SUCH_UNIT) => {
                Ok(())
            }
            other => other,
        }
    }

    /// The object path of a loaded unit; `None` if systemd has no such
    /// unit loaded.
    pub(crate) async fn loaded_unit(
        &self,
        name: &str,
    ) -> Result<Option<OwnedObjectPath>, SystemdError> {
        match self
            .dbus_call(
                "GetUnit",
                |bus| async move { bus.manager.get_unit(name).await },
            )
            .await
        {
            Ok(path) => Ok(Some(path)),
            Err(SystemdError::Call { source, .. }) if error_name(&source) == Some(NO_SUCH_UNIT) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The state and usage of a loaded service; `None` if it is not loaded
    /// (never started, or collected). `name` must be a `.service`.
    pub async fn unit_status(&self, name: &str) -> Result<Option<UnitStatus>, SystemdError> {
        let Some(path) = self.loaded_unit(name).await? else {
            return Ok(None);
        };
        self.dbus_call("Get(unit status)", |bus| read_status(bus, name, path))
            .await
    }

    /// A stream of [`UnitEvent`]s for units whose names start with `prefix`.
    ///
    /// Guaranteed: every state change and removal that systemd signals
    /// after this returns, in the order systemd sent them (a unit's final
    /// state comes before its removal), with repeats of an unchanged state
    /// dropped. systemd signals a unit's state once per pass of its event
    /// loop, so a state that lasted less than that (e.g. `active` of a
    /// program that exits at once) may be skipped; the last one never is.
    ///
    /// Not guaranteed: anything before this returns (open the stream, then
    /// list the units, to start without a gap), nor anything across a
    /// broken connection or a re-exec of systemd: the stream has a
    /// connection of its own and ends in either case. Call `events` again
    /// then, and reconcile with [`Systemd::list_units`], as the dyno
    /// manager should periodically anyway. Keep polling the stream: an
    /// unread backlog of 1024 messages pauses its connection rather than
    /// dropping events.
    pub async fn events(
        &self,
        prefix: &str,
    ) -> Result<impl Stream<Item = UnitEvent> + Send + 'static, SystemdError> {
        let mut conn = connect().await?;
        conn.set_max_queued(events::QUEUE);
        let manager = bounded("Hello", manager_proxy(&conn)).await?;
        // Match rules first, then Subscribe: no signal is emitted between.
        let source = bounded("AddMatch", events::open(&conn)).await?;
        bounded("Subscribe", manager.subscribe()).await?;
        // The subscription lasts as long as the connection: keep both.
        Ok(events::unit_events(
            source,
            prefix.to_owned(),
            (conn, manager),
        ))
    }

    /// Makes the call that queues a job of `unit` and waits for that job's
    /// `JobRemoved`. The outer error is about the bus or the waiting; the
    /// inner one is systemd's error reply to the call, for the caller to
    /// interpret. `Ok(Ok(result))` is the job's result.
    async fn run_job<F, Fut>(
        &self,
        unit: &str,
        kind: &'static str,
        method: &'static str,
        call: F,
    ) -> Result<Result<String, zbus::Error>, SystemdError>
    where
        F: FnOnce(ManagerProxy<'static>) -> Fut,
        Fut: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        let bus = self.bus(true).await?;
        self.run_job_on(bus, unit, kind, method, call).await
    }

    /// [`Systemd::run_job`] on a given (subscribed) connection.
    async fn run_job_on<F, Fut>(
        &self,
        bus: Bus,
        unit: &str,
        kind: &'static str,
        method: &'static str,
        call: F,
    ) -> Result<Result<String, zbus::Error>, SystemdError>
    where
        F: FnOnce(ManagerProxy<'static>) -> Fut,
        Fut: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        // Only this unit's jobs, filtered by the bus (arg2 is the unit name).
        let mut jobs = match tokio::time::timeout(
            CALL_TIMEOUT,
            bus.manager.receive_job_removed_with_args(&[(2, unit)]),
        )
        .await
        {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(source)) => {
                self.forget(&bus.conn).await;
                return Err(SystemdError::Call {
                    method: "AddMatch(JobRemoved)",
                    source,
                });
            }
            Err(_) => {
                self.forget(&bus.conn).await;
                return Err(timeout_error("AddMatch(JobRemoved)"));
            }
        };

        // Read signals while the call is in flight: the job may finish
        // before its reply arrives, and an unread queue would stall the
        // connection (and so the reply).
        let mut finished: Vec<(OwnedObjectPath, String)> = Vec::new();
        let mut jobs_open = true;
        let reply = tokio::time::timeout(CALL_TIMEOUT, call(bus.manager.clone()));
        tokio::pin!(reply);
        let reply = loop {
            tokio::select! {
                reply = &mut reply => break reply,
                signal = jobs.next(), if jobs_open => match signal {
                    Some(signal) => {
                        if let Ok(args) = signal.args() {
                            finished.push((args.job.clone().into(), args.result.to_owned()));
                        }
                    }
                    None => jobs_open = false,
                },
            }
        };
        let job = match reply {
            Ok(Ok(job)) => job,
            Ok(Err(e)) if breaks_connection(&e) => {
                self.forget(&bus.conn).await;
                return Err(SystemdError::Call { method, source: e });
            }
            Ok(Err(e)) => return Ok(Err(e)),
            Err(_) => {
                self.forget(&bus.conn).await;
                return Err(timeout_error(method));
            }
        };
        if let Some((_, result)) = finished.into_iter().find(|(j, _)| *j == job) {
            return Ok(Ok(result));
        }
        let wait = async {
            while let Some(signal) = jobs.next().await {
                if let Ok(args) = signal.args() {
                    if args.job == *job {
                        return Some(args.result.to_owned());
                    }
                }
            }
            None
        };
        match tokio::time::timeout(self.job_timeout, wait).await {
            Ok(Some(result)) => Ok(Ok(result)),
            Ok(None) => {
                self.forget(&bus.conn).await;
                Err(SystemdError::Disconnected {
                    unit: unit.to_owned(),
                    kind,
                })
            }
            Err(_) => Err(SystemdError::JobTimeout {
                unit: unit.to_owned(),
                kind,
                seconds: self.job_timeout.as_secs(),
            }),
        }
    }
}

/// What a start job's call and result mean: `None` when the unit runs,
/// otherwise the error for the caller.
fn start_failure(unit: String, outcome: Result<String, zbus::Error>) -> Option<SystemdError> {
    match outcome {
        Ok(result) if result == "done" => None,
        Ok(result) => Some(SystemdError::JobFailed {
            unit,
            kind: "start",
            result,
        }),
        Err(e) => Some(match error_name(&e) {
            Some(UNIT_EXISTS) => SystemdError::UnitExists { unit },
            Some(INVALID_ARGS) => SystemdError::PropertyRejected {
                unit,
                message: error_message(&e),
            },
            _ => SystemdError::Call {
                method: "StartTransientUnit",
                source: e,
            },
        }),
    }
}

/// A service started by [`Systemd::start_watched`]. Its connection holds
/// the reference that keeps the unit loaded; dropping this releases it
/// (so does corrald's exit), and systemd then collects an inactive unit.
pub struct WatchedService {
    unit: String,
    bus: Bus,
    events: std::pin::Pin<Box<dyn Stream<Item = UnitEvent> + Send>>,
}

impl std::fmt::Debug for WatchedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedService")
            .field("unit", &self.unit)
            .finish_non_exhaustive()
    }
}

impl WatchedService {
    /// The unit name.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Waits until the unit is `inactive` or `failed` and returns its
    /// final status (`ExecMainCode`, `ExecMainStatus`, `Result`). Woken by
    /// systemd's signals, never by polling: the state is read once now
    /// (the signals are routed already) and again after every signal.
    /// Cancel-safe.
    pub async fn wait_exit(&mut self) -> Result<UnitStatus, SystemdError> {
        loop {
            let path = bounded("GetUnit", self.bus.manager.get_unit(&self.unit))
                .await
                .map_err(|e| no_such_unit(e, &self.unit))?;
            let status = bounded(
                "Get(unit status)",
                read_status(self.bus.clone(), &self.unit, path),
            )
            .await?
            .ok_or_else(|| SystemdError::NoSuchUnit {
                unit: self.unit.clone(),
            })?;
            if matches!(status.active_state.as_str(), "inactive" | "failed") {
                return Ok(status);
            }
            match self.events.next().await {
                Some(UnitEvent::Changed { .. }) => {}
                // Our reference should have prevented that; say so.
                Some(UnitEvent::Removed { .. }) => {
                    return Err(SystemdError::NoSuchUnit {
                        unit: self.unit.clone(),
                    })
                }
                None => {
                    return Err(SystemdError::WatchLost {
                        unit: self.unit.clone(),
                    })
                }
            }
        }
    }
}

/// Reads a service's status properties at `path`, all requests in flight at once.
async fn read_status(
    bus: Bus,
    name: &str,
    path: OwnedObjectPath,
) -> zbus::Result<Option<UnitStatus>> {
    let unit = UnitProxy::builder(&bus.conn)
        .path(path.clone())?
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let service = ServiceProxy::builder(&bus.conn)
        .path(path)?
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let (load_state, active_state, sub_state, since) = tokio::try_join!(
        unit.load_state(),
        unit.active_state(),
        unit.sub_state(),
        unit.active_enter_timestamp()
    )?;
    // Reading a collected unit's path loads a `not-found` stub: the unit
    // went away between GetUnit and now.
    if load_state == "not-found" {
        return Ok(None);
    }
    let (main_pid, exec_main_status, exec_main_code, result, memory, cpu, tasks) = tokio::try_join!(
        service.main_pid(),
        service.exec_main_status(),
        service.exec_main_code(),
        service.result(),
        service.memory_current(),
        service.cpu_usage_nsec(),
        service.tasks_current()
    )?;
    let known = |v: u64| (v != u64::MAX).then_some(v);
    Ok(Some(UnitStatus {
        name: name.to_owned(),
        active_state,
        sub_state,
        main_pid,
        exec_main_status,
        exec_main_code,
        result,
        memory_current: known(memory),
        cpu_usage_nsec: known(cpu),
        tasks_current: known(tasks),
        active_enter_timestamp_usec: since,
    }))
}

/// A new connection to the system bus, bounded by the call timeout.
async fn connect() -> Result<zbus::Connection, SystemdError> {
    tokio::time::timeout(CALL_TIMEOUT, zbus::Connection::system())
        .await
        .map_err(|_| timeout_error("Hello"))?
        .map_err(SystemdError::Connect)
}

/// A Manager proxy that reads properties afresh on every access (a cache
/// would need a GetAll and a signal subscription per proxy).
async fn manager_proxy(conn: &zbus::Connection) -> zbus::Result<ManagerProxy<'static>> {
    ManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// Runs `fut` within the call timeout, naming `method` in errors.
async fn bounded<T>(
    method: &'static str,
    fut: impl Future<Output = zbus::Result<T>>,
) -> Result<T, SystemdError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(SystemdError::Call { method, source }),
        Err(_) => Err(timeout_error(method)),
    }
}

fn timeout_error(method: &'static str) -> SystemdError {
    SystemdError::Timeout {
        method,
        seconds: CALL_TIMEOUT.as_secs(),
    }
}

fn no_such_unit(e: SystemdError, name: &str) -> SystemdError {
    match e {
        SystemdError::Call { source, .. } if error_name(&source) == Some(NO_SUCH_UNIT) => {
            SystemdError::NoSuchUnit {
                unit: name.to_owned(),
            }
        }
        other => other,
    }
}

/// Whether `/sys/fs/cgroup` is the unified (v2-only) hierarchy, as systemd
/// needs for BPF-based settings; a hybrid or v1 layout is not.
fn detect_cgroup_v2() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup")
        .ok()
        .and_then(|st| u64::try_from(st.f_type).ok())
        == Some(CGROUP2_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The dyno manager spawns these on a multi-threaded runtime.
    #[test]
    fn futures_and_streams_are_send() {
        let systemd = Systemd::new();
        let spec = ServiceSpec::new("x.service", vec!["/bin/true".to_owned()]);
        assert_send(&systemd.start_service(spec));
        let spec = ServiceSpec::new("x.service", vec!["/bin/true".to_owned()]);
        assert_send(&systemd.start_watched(spec));
        assert_send(&systemd.stop_unit("x.service"));
        assert_send(&systemd.unit_status("x.service"));
        assert_send(&systemd.events("corral-"));
    }

    #[test]
    fn oom_is_told_apart_from_other_ends() {
        let status = |result: &str, code, st| UnitStatus {
            name: "x.service".into(),
            active_state: "failed".into(),
            sub_state: "failed".into(),
            main_pid: 0,
            exec_main_status: st,
            exec_main_code: code,
            result: result.into(),
            memory_current: None,
            cpu_usage_nsec: None,
            tasks_current: None,
            active_enter_timestamp_usec: 0,
        };
        assert!(status("oom-kill", 2, 9).oom_killed());
        assert!(status("signal", 2, 9).oom_killed());
        assert!(!status("signal", 2, 15).oom_killed());
        assert!(!status("exit-code", 1, 9).oom_killed());
        assert!(status("exit-code", 1, 137).oom_killed(), "a shell's child");
        assert!(!status("exit-code", 1, 143).oom_killed());

        assert!(status("exit-code", 1, 3).ran());
        assert!(status("exit-code", 1, 0).ran());
        assert!(status("signal", 2, 15).ran());
        assert!(status("core-dump", 3, 11).ran());
        assert!(!status("exit-code", 1, 203).ran(), "EXIT_EXEC");
        assert!(!status("exit-code", 1, 226).ran(), "EXIT_NAMESPACE");
        assert!(!status("exit-code", 0, 0).ran(), "never started");
    }

    #[test]
    fn knows_this_hosts_cgroup_layout() {
        let unified = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup") && l.contains(" cgroup2 "));
        assert_eq!(Systemd::new().cgroup_v2(), unified);
        assert!(Systemd::new().with_cgroup_v2(true).cgroup_v2());
    }
}
