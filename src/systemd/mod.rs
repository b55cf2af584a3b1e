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
mod jobs;
mod proxies;
mod spec;
mod status;
mod units;
mod usage;
mod watched;

use std::future::Future;
use std::time::Duration;

use futures_util::stream::Stream;
use tokio::sync::Mutex;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

pub use error::SystemdError;
pub use events::UnitEvent;
pub(crate) use spec::{mount_unit_name, CycleTimer, OverlayMount};
pub use spec::{BindPath, Limits, Sandbox, ServiceSpec, Stdio};
pub(crate) use status::UnitInfo;
pub use status::UnitStatus;
#[cfg(test)]
pub(crate) use usage::MemoryStat;
pub(crate) use usage::UnitUsage;
pub(crate) use watched::WatchedService;

use error::{breaks_connection, error_name, ALREADY_SUBSCRIBED, NO_SUCH_UNIT};
use jobs::start_failure;
use proxies::ManagerProxy;
use status::read_status;

/// How long one D-Bus call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a start or stop job may take by default. A stop takes up to the
/// unit's `TimeoutStopUSec` before SIGKILL, so this must stay above the
/// longest one Corral sets.
pub(crate) const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// `statfs` magic of a cgroup2 file system.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
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
    /// host runs cgroup v2 is read from `/sys/fs/cgroup` now.
    pub fn new() -> Self {
        Systemd {
            bus: Mutex::new(None),
            job_timeout: DEFAULT_JOB_TIMEOUT,
            cgroup_v2: detect_cgroup_v2(),
        }
    }

    /// The same handle, rendering units for a cgroup v2 host (`true`) or not.
    #[cfg(test)]
    pub(crate) fn with_cgroup_v2(mut self, cgroup_v2: bool) -> Self {
        self.cgroup_v2 = cgroup_v2;
        self
    }

    /// Whether units are rendered for cgroup v2 (`SocketBind*` included).
    pub(crate) fn cgroup_v2(&self) -> bool {
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
    fn knows_this_hosts_cgroup_layout() {
        let unified = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some("/sys/fs/cgroup") && l.contains(" cgroup2 "));
        assert_eq!(Systemd::new().cgroup_v2(), unified);
        assert!(Systemd::new().with_cgroup_v2(true).cgroup_v2());
    }
}
