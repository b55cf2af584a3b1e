//! zbus proxies for the parts of systemd's D-Bus API that Corral uses (org.freedesktop.systemd1(5)).
//!
//! Names and signatures follow systemd 252. Property names that zbus would
//! not derive from the Rust name (`MainPID`, `CPUUsageNSec`) are spelled out.

use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

/// A row of `ListUnits*`: name, description, load state, active state,
/// sub state, followed unit, unit path, job id, job type, job path.
pub(super) type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// One `(name, value)` pair of a transient unit's properties, `(sv)`.
pub(super) type Property<'a> = (&'a str, Value<'a>);

/// Properties of an auxiliary unit started together with the main one, `(sa(sv))`.
pub(super) type AuxUnit<'a> = (&'a str, &'a [Property<'a>]);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// The manager's version string.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// Units filtered by state (empty: any) and name globs.
    fn list_units_by_patterns(
        &self,
        states: &[String],
        patterns: &[String],
    ) -> zbus::Result<Vec<UnitRow>>;

    /// Creates and starts a transient unit; returns the start job's path.
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[Property<'_>],
        aux: &[AuxUnit<'_>],
    ) -> zbus::Result<OwnedObjectPath>;

    /// Queues a stop job; returns its path.
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// Sends `signal` to the unit's processes (`whom`: `main`, `control`, `all`).
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;

    /// Clears the failed state (and the start rate limit) of a unit.
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    /// The object path of a loaded unit; `NoSuchUnit` otherwise.
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Asks systemd to emit its signals (job, unit and property changes)
    /// while this connection stays open.
    fn subscribe(&self) -> zbus::Result<()>;

    /// A job finished: `result` is `done`, `canceled`, `timeout`, `failed`,
    /// `dependency` or `skipped`.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;

    /// A unit was unloaded (garbage-collected).
    #[zbus(signal)]
    fn unit_removed(&self, unit: &str, path: ObjectPath<'_>) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    /// `loaded`, `not-found`, `bad-setting`, `error`, `masked`, ...
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;

    /// `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`.
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;

    /// The type-specific state, e.g. `running`, `exited`, `dead`, `failed`.
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;

    /// When the unit last entered `active` (µs since the epoch, 0: never).
    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    /// PID of the main process, 0 when there is none.
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;

    /// Exit status, or signal number, of the last main process.
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;

    /// A `CLD_*` code: 1 exited, 2 killed, 3 dumped core; 0 none yet.
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;

    /// `success`, `exit-code`, `signal`, `core-dump`, `timeout`, `oom-kill`, ...
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;

    /// Memory use of the unit's cgroup in bytes; `u64::MAX` when unknown.
    #[zbus(property)]
    fn memory_current(&self) -> zbus::Result<u64>;

    /// CPU time of the unit's cgroup in ns; `u64::MAX` when unknown.
    #[zbus(property, name = "CPUUsageNSec")]
    fn cpu_usage_nsec(&self) -> zbus::Result<u64>;

    /// Tasks in the unit's cgroup; `u64::MAX` when unknown.
    #[zbus(property)]
    fn tasks_current(&self) -> zbus::Result<u64>;

    /// `MemoryHigh=` in bytes; `u64::MAX` when unset ("infinity").
    #[zbus(property)]
    fn memory_high(&self) -> zbus::Result<u64>;

    /// `MemoryMax=` in bytes; `u64::MAX` when unset ("infinity").
    #[zbus(property)]
    fn memory_max(&self) -> zbus::Result<u64>;

    /// The unit's cgroup path below the hierarchy's root, e.g.
    /// `/corral.slice/corral-demo.slice/corral-demo-web.1@1.service`;
    /// empty when it has none (not running).
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;
}
