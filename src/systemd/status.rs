//! What systemd reports about units: the list entry, a service's status and how to read its ending.

use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use super::proxies::{ServiceProxy, UnitProxy};
use super::Bus;

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
    pub(crate) fn ran(&self) -> bool {
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

/// Reads a service's status properties at `path`, all requests in flight at once.
pub(super) async fn read_status(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
