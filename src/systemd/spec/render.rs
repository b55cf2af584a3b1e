//! How a [`ServiceSpec`] becomes the `a(sv)` properties of `StartTransientUnit`, with its overlay mount and cycle timer.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use zbus::zvariant::{Fd, Value};

use super::{Limits, Sandbox, ServiceSpec, Stdio};
use crate::systemd::proxies::Property;

/// `MS_REC` from `<sys/mount.h>`: bind mounts are recursive, as in unit files.
const MS_REC: u64 = 16384;

/// `EPERM`: the errno a filtered system call returns.
const EPERM: i32 = 1;

impl ServiceSpec {
    /// The units created in the same `StartTransientUnit` call: the
    /// overlay mount and the cycle timer. systemd loads them, and the
    /// service's dependencies start them.
    pub(in crate::systemd) fn aux_units(&self) -> Vec<(String, Vec<Property<'_>>)> {
        let mut units = Vec::new();
        if let Some(overlay) = &self.overlay {
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                overlay.lower, overlay.upper, overlay.work
            );
            units.push((
                overlay.unit_name(),
                vec![
                    (
                        "Description",
                        Value::from(format!("Writable /app of {}", self.description)),
                    ),
                    ("What", Value::from("overlay")),
                    ("Type", Value::from("overlay")),
                    ("Options", Value::from(options)),
                    ("StopWhenUnneeded", Value::from(true)),
                    ("CollectMode", Value::from("inactive-or-failed")),
                ],
            ));
        }
        if let (Some(timer), Some(name)) = (&self.cycle_timer, self.timer_name()) {
            units.push((
                name,
                vec![
                    ("Description", str_value(&timer.description)),
                    (
                        "TimersMonotonic",
                        Value::from(vec![("OnActiveSec", usec(timer.after))]),
                    ),
                    (
                        "RandomizedDelayUSec",
                        Value::from(usec(timer.randomized_delay)),
                    ),
                    // The default (one minute) would blur short test periods.
                    ("AccuracyUSec", Value::from(1_000_000u64)),
                    ("RemainAfterElapse", Value::from(true)),
                    ("BindsTo", Value::from(vec![self.name.as_str()])),
                    ("CollectMode", Value::from("inactive-or-failed")),
                ],
            ));
        }
        units
    }

    /// The `StartTransientUnit` properties, in a stable order. `cgroup_v2`
    /// says whether the host runs the unified cgroup hierarchy; only then
    /// are the BPF-based `SocketBind*` properties rendered.
    ///
    /// Besides the spec's fields, every unit gets the lifecycle Corral
    /// relies on: `Type=exec` (the start job fails if the program cannot be
    /// executed), `Restart=no` (the dyno manager owns restarts and backoff),
    /// `KillMode=control-group` (stop reaches every process of the dyno),
    /// `CollectMode=inactive` (systemd's default, explicit: a unit that
    /// failed stays loaded with its `Result` and exit status until the
    /// manager has read them and calls `ResetFailedUnit`; one that exited
    /// cleanly is collected at once, after its final state change was
    /// signalled), and CPU, memory and tasks accounting, so usage figures
    /// are known on cgroup v1 and v2 alike.
    pub(in crate::systemd) fn properties(&self, cgroup_v2: bool) -> Vec<Property<'_>> {
        let mut p: Vec<Property<'_>> = vec![
            ("Description", str_value(&self.description)),
            ("Type", Value::from("exec")),
            ("Restart", Value::from("no")),
            ("KillMode", Value::from("control-group")),
            ("CollectMode", Value::from("inactive")),
            ("CPUAccounting", Value::from(true)),
            ("MemoryAccounting", Value::from(true)),
            ("TasksAccounting", Value::from(true)),
        ];
        if let Some(slice) = &self.slice {
            p.push(("Slice", str_value(slice)));
        }
        if let Some(overlay) = &self.overlay {
            let mount = overlay.unit_name();
            p.push(("Requires", Value::from(vec![mount.clone()])));
            p.push(("After", Value::from(vec![mount])));
        }
        if let Some(timer) = self.timer_name() {
            p.push(("Wants", Value::from(vec![timer])));
        }
        // (path, argv, ignore failure). systemd substitutes `$VAR` in argv
        // at exec time, and `$$` yields a literal `$`.
        let program = self.argv.first().cloned().unwrap_or_default();
        let argv: Vec<String> = self.argv.iter().map(|a| a.replace('$', "$$")).collect();
        p.push(("ExecStart", Value::from(vec![(program, argv, false)])));
        if !self.environment.is_empty() {
            let env: Vec<String> = self
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            p.push(("Environment", Value::from(env)));
        }
        if let Some(dir) = &self.working_directory {
            p.push(("WorkingDirectory", str_value(dir)));
        }
        for (property, read_only) in [("BindPaths", false), ("BindReadOnlyPaths", true)] {
            let binds: Vec<(&str, &str, bool, u64)> = self
                .bind_paths
                .iter()
                .filter(|b| b.read_only == read_only)
                .map(|b| (b.source.as_str(), b.destination.as_str(), false, MS_REC))
                .collect();
            if !binds.is_empty() {
                p.push((property, Value::from(binds)));
            }
        }
        self.limits.render(&mut p);
        if self.sandbox == Sandbox::Dyno {
            render_dyno_sandbox(&mut p);
        }
        if !self.log_extra_fields.is_empty() {
            let fields: Vec<Vec<u8>> = self
                .log_extra_fields
                .iter()
                .map(|(k, v)| format!("{k}={v}").into_bytes())
                .collect();
            p.push(("LogExtraFields", Value::from(fields)));
        }
        if let Some(ident) = &self.syslog_identifier {
            p.push(("SyslogIdentifier", str_value(ident)));
        }
        if let Some((interval, burst)) = self.log_rate_limit {
            p.push(("LogRateLimitIntervalUSec", Value::from(usec(interval))));
            p.push(("LogRateLimitBurst", Value::from(burst)));
        }
        if let Some(cache) = &self.cache_directory {
            p.push(("CacheDirectory", Value::from(vec![cache.as_str()])));
        }
        if let Some(timeout) = self.timeout_stop {
            p.push(("TimeoutStopUSec", Value::from(usec(timeout))));
        }
        if let Some(max) = self.runtime_max {
            p.push(("RuntimeMaxUSec", Value::from(usec(max))));
        }
        if let (Some(port), true) = (self.socket_bind_port, cgroup_v2) {
            // (address family, IP protocol, number of ports, first port):
            // AF_UNSPEC covers IPv4 and IPv6, 6 is TCP; all zeros is "any".
            const AF_UNSPEC: i32 = 0;
            const IPPROTO_TCP: i32 = 6;
            p.push((
                "SocketBindAllow",
                Value::from(vec![(AF_UNSPEC, IPPROTO_TCP, 1u16, port)]),
            ));
            p.push((
                "SocketBindDeny",
                Value::from(vec![(AF_UNSPEC, 0i32, 0u16, 0u16)]),
            ));
        }
        match &self.stdio {
            Stdio::Journal => {
                p.push(("StandardInput", Value::from("null")));
                p.push(("StandardOutput", Value::from("journal")));
                p.push(("StandardError", Value::from("journal")));
            }
            Stdio::Tty { path } => {
                p.push(("StandardInput", Value::from("tty")));
                p.push(("StandardOutput", Value::from("tty")));
                p.push(("StandardError", Value::from("tty")));
                p.push(("TTYPath", str_value(path)));
            }
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                p.push(("StandardInputFileDescriptor", fd_value(stdin)));
                p.push(("StandardOutputFileDescriptor", fd_value(stdout)));
                p.push(("StandardErrorFileDescriptor", fd_value(stderr)));
            }
        }
        p
    }
}

impl Limits {
    fn render(&self, p: &mut Vec<Property<'_>>) {
        let limits = [
            ("MemoryMax", self.memory_max),
            ("MemoryHigh", self.memory_high),
            ("MemorySwapMax", self.memory_swap_max),
            ("CPUWeight", self.cpu_weight),
            ("CPUQuotaPerSecUSec", self.cpu_quota_per_sec_usec),
            ("TasksMax", self.tasks_max),
            ("LimitNOFILE", self.limit_nofile),
        ];
        for (name, value) in limits {
            if let Some(value) = value {
                p.push((name, Value::from(value)));
            }
        }
    }
}

/// The dyno hardening set. Each line closes a door an app does not need;
/// see `systemd.exec(5)`.
fn render_dyno_sandbox(p: &mut Vec<Property<'_>>) {
    p.extend([
        // A fresh uid/gid in 61184..=65519 per unit, released when it stops;
        // implies RemoveIPC= and a private /tmp.
        ("DynamicUser", Value::from(true)),
        ("ProtectSystem", Value::from("strict")),
        ("ProtectHome", Value::from("yes")),
        ("PrivateTmp", Value::from(true)),
        ("PrivateDevices", Value::from(true)),
        ("NoNewPrivileges", Value::from(true)),
        ("ProtectKernelTunables", Value::from(true)),
        ("ProtectKernelModules", Value::from(true)),
        ("ProtectKernelLogs", Value::from(true)),
        ("ProtectControlGroups", Value::from(true)),
        ("ProtectClock", Value::from(true)),
        ("ProtectHostname", Value::from(true)),
        // Other processes in /proc are invisible (all dynos have their own
        // uid anyway). ProcSubset=pid is not used: runtimes read
        // /proc/cpuinfo, /proc/meminfo and /proc/stat.
        ("ProtectProc", Value::from("invisible")),
        ("RestrictSUIDSGID", Value::from(true)),
        // The allowed namespace types, as a CLONE_NEW* mask: none.
        ("RestrictNamespaces", Value::from(0u64)),
        ("RestrictRealtime", Value::from(true)),
        ("LockPersonality", Value::from(true)),
        ("SystemCallArchitectures", Value::from(vec!["native"])),
        // (allow-list, entries): systemd expands the group server-side.
        (
            "SystemCallFilter",
            Value::from((true, vec!["@system-service"])),
        ),
        // A filtered call fails with EPERM instead of killing the process
        // with SIGSYS, which would look like an inexplicable crash.
        ("SystemCallErrorNumber", Value::from(EPERM)),
        // Empty: no capabilities, even if something ran as root.
        ("CapabilityBoundingSet", Value::from(0u64)),
        (
            "RestrictAddressFamilies",
            Value::from((true, vec!["AF_INET", "AF_INET6", "AF_UNIX"])),
        ),
        // Files a dyno creates are its own: its uid is recycled later.
        ("UMask", Value::from(0o077u32)),
    ]);
}

fn str_value(s: &str) -> Value<'_> {
    Value::from(s)
}

fn fd_value(fd: &OwnedFd) -> Value<'_> {
    Value::Fd(Fd::from(fd.as_fd()))
}

fn usec(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
