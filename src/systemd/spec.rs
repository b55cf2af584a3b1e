//! A typed transient service and its rendering to the `a(sv)` properties of `StartTransientUnit`.
//!
//! Everything a dyno needs is a D-Bus property here, never unit-file text, so
//! no value goes through systemd's unit-file parser when the unit starts:
//!
//! - `Environment=` values set over D-Bus reach the process byte for byte:
//!   systemd expands neither `%` specifiers nor `$VAR`s in them (verified on
//!   systemd 252 by `tests/systemd_dbus.rs`, also across a daemon-reload,
//!   which re-reads the transient unit file systemd wrote with `%` doubled).
//! - `ExecStart=` argv get `$VAR` / `${VAR}` substitution at exec time, so
//!   every `$` is sent doubled (`$$` is systemd's literal dollar) and argv
//!   arrive unchanged too; user data should still travel in the
//!   environment. `ExecStartEx` with `no-env-expand` would say this
//!   directly, but systemd 252 writes it into the transient unit file as an
//!   `ExecStartEx=` key its own parser rejects: after any daemon-reload the
//!   unit turns `bad-setting` and stops reporting memory and tasks usage.
//! - After a daemon-reload, systemd 252 re-reads argv words containing `$`
//!   or `;` from that file mangled (`\$\$`, `\;`) and `RestrictNamespaces=`
//!   as "no". The running process is unaffected; only a restart through
//!   systemd (`systemctl restart`) would see it. Corral never restarts a
//!   unit that way: the dyno manager starts a new one.
//! - `SystemCallFilter=@system-service` is expanded by systemd itself: the
//!   D-Bus setter resolves `@groups` (the unit then lists ~350 syscalls).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use zbus::zvariant::{Fd, Value};

use super::proxies::Property;

/// `MS_REC` from `<sys/mount.h>`: bind mounts are recursive, as in unit files.
const MS_REC: u64 = 16384;

/// `EPERM`: the errno a filtered system call returns.
const EPERM: i32 = 1;

/// A transient `.service` unit, as the dyno manager and builds describe it.
#[derive(Debug)]
pub struct ServiceSpec {
    /// Full unit name, e.g. `corral-demo-web.1.service` (the caller
    /// validated and escaped it).
    pub name: String,
    /// `Description=`, shown by `systemctl status`.
    pub description: String,
    /// `Slice=`, e.g. `corral-demo.slice`. systemd creates a slice that has
    /// no unit file implicitly, and its parents too: `-` means nesting in
    /// slice names, so `corral-demo.slice` lives in `corral.slice` (and an
    /// app `my-app` would nest in `corral-my.slice` unless the caller
    /// escapes the `-` as `\x2d`).
    pub slice: Option<String>,
    /// `ExecStart=` argv; `argv[0]` is an absolute path. Reaches the
    /// process unchanged (`$` is escaped), but user data belongs in
    /// `environment`.
    pub argv: Vec<String>,
    /// `Environment=`, passed as data: values reach the process unchanged
    /// (`%`, `$`, quotes, backslashes and newlines included). Names must be
    /// `[A-Za-z_][A-Za-z0-9_]*`.
    pub environment: Vec<(String, String)>,
    /// `WorkingDirectory=`, absolute.
    pub working_directory: Option<String>,
    /// `BindPaths=` / `BindReadOnlyPaths=` (recursive binds).
    pub bind_paths: Vec<BindPath>,
    /// cgroup and rlimit limits.
    pub limits: Limits,
    /// Which hardening to apply.
    pub sandbox: Sandbox,
    /// `LogExtraFields=`: journal fields added to every log line of the
    /// unit; names are `[A-Z0-9_]`, not starting with `_` or a digit.
    pub log_extra_fields: Vec<(String, String)>,
    /// `SyslogIdentifier=`, the journal's tag for the unit's output.
    pub syslog_identifier: Option<String>,
    /// `LogRateLimitIntervalSec=` and `LogRateLimitBurst=`: journald keeps
    /// at most this many lines of the unit per interval (an interval of 0
    /// turns the limit off).
    pub log_rate_limit: Option<(Duration, u32)>,
    /// `TimeoutStopUSec=`: SIGTERM, then SIGKILL after this long.
    pub timeout_stop: Option<Duration>,
    /// `RuntimeMaxUSec=`: systemd stops the unit after this long (one-off dynos).
    pub runtime_max: Option<Duration>,
    /// `SocketBindAllow=tcp:PORT` + `SocketBindDeny=any`: the only port the
    /// unit may bind. BPF-based, so it needs cgroup v2; rendered only when
    /// the host is cgroup v2 (see [`super::Systemd::cgroup_v2`]), since
    /// systemd on cgroup v1 accepts and ignores it.
    pub socket_bind_port: Option<u16>,
    /// Where stdin, stdout and stderr go.
    pub stdio: Stdio,
    /// An overlay that systemd mounts before the service starts and
    /// unmounts once it is inactive (see [`OverlayMount`]).
    pub overlay: Option<OverlayMount>,
    /// A timer created with the service (see [`CycleTimer`]).
    pub cycle_timer: Option<CycleTimer>,
    /// `CacheDirectory=`, relative to `/var/cache`: systemd creates it and,
    /// with a dynamic user, hands it to each run's user (`chown -R` when
    /// the owner differs), so it outlives the unit.
    pub cache_directory: Option<String>,
}

/// An overlay file system made by PID 1 as a transient `.mount` unit,
/// created in the same call as the service, pulled in by it
/// (`Requires=` + `After=`) and unmounted when no active unit needs it
/// (`StopWhenUnneeded=`). corrald cannot mount it itself: it runs in its
/// own mount namespace, which the host and the service do not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    /// The read-only lower layer.
    pub lower: String,
    /// The writable upper layer, on a file system that supports overlay
    /// upper layers (tmpfs, ext4, xfs, btrfs; not overlayfs).
    pub upper: String,
    /// The overlay's work directory, on the upper layer's file system.
    pub work: String,
    /// Where the merged tree is mounted; the unit is named after it.
    pub mount_point: String,
}

impl OverlayMount {
    /// The mount unit's name: the mount point escaped like
    /// `systemd-escape --path`, plus `.mount`.
    pub fn unit_name(&self) -> String {
        mount_unit_name(&self.mount_point)
    }
}

/// The name of the mount unit for `mount_point`: the path escaped like
/// `systemd-escape --path`, plus `.mount`.
pub fn mount_unit_name(mount_point: &str) -> String {
    format!("{}.mount", escape_path(mount_point))
}

/// A one-shot timer made with the service and named after it
/// (`<name>.timer`). A timer activates the service of its own name; for a
/// running service that is a no-op, so the timer only marks a moment: it
/// turns `elapsed` and stays so, for the service's owner to act on. It is
/// bound to the service (`BindsTo=`), so it goes when the service stops or
/// fails and never starts a dead one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleTimer {
    /// `OnActiveSec=`: how long after the start the timer elapses.
    pub after: Duration,
    /// `RandomizedDelaySec=`: a random extra delay up to this long.
    pub randomized_delay: Duration,
    /// `Description=`.
    pub description: String,
}

/// systemd's path escaping (`unit_name_path_escape`): `/` separators become
/// `-`, and every byte outside `[A-Za-z0-9:_.]`, or a leading `.`, becomes
/// `\xNN`.
pub fn escape_path(path: &str) -> String {
    let trimmed: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if trimmed.is_empty() {
        return "-".to_owned();
    }
    let joined = trimmed.join("/");
    let mut out = String::with_capacity(joined.len());
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                out.push(char::from(b));
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// One bind mount into the unit's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPath {
    /// Absolute path on the host; it must exist.
    pub source: String,
    /// Absolute path inside the unit; systemd creates it if missing.
    pub destination: String,
    /// `BindReadOnlyPaths=` rather than `BindPaths=`.
    pub read_only: bool,
}

/// Resource limits; `None` leaves systemd's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `MemoryMax=` in bytes (cgroup v1: `memory.limit_in_bytes`).
    pub memory_max: Option<u64>,
    /// `MemoryHigh=` in bytes (cgroup v2 only; v1 ignores it).
    pub memory_high: Option<u64>,
    /// `MemorySwapMax=` in bytes (cgroup v2 only; v1 ignores it).
    pub memory_swap_max: Option<u64>,
    /// `CPUWeight=`, 1..=10000, default 100 (v1: mapped to `cpu.shares`).
    pub cpu_weight: Option<u64>,
    /// `CPUQuotaPerSecUSec=`: CPU time per second of wall time, in µs
    /// (`CPUQuota=50%` is 500000).
    pub cpu_quota_per_sec_usec: Option<u64>,
    /// `TasksMax=`: processes plus threads.
    pub tasks_max: Option<u64>,
    /// `LimitNOFILE=`: soft and hard limit of open files.
    pub limit_nofile: Option<u64>,
}

/// The hardening applied to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// The dyno set: a dynamic user, a read-only system, no privileges, no
    /// kernel or cgroup tampering, a system call allow-list and IP/Unix
    /// sockets only. `MemoryDenyWriteExecute=` is left out on purpose: it
    /// breaks every JIT (V8/node, the JVM, LuaJIT, PyPy).
    Dyno,
    /// No hardening (for units that Corral itself trusts).
    None,
}

/// Where a unit's standard streams go.
#[derive(Debug)]
pub enum Stdio {
    /// stdin from `/dev/null`, stdout and stderr to the journal.
    Journal,
    /// All three on the terminal at `path` (`TTYPath=`, e.g. `/dev/pts/3`),
    /// which systemd opens in the new process and makes its controlling
    /// terminal, so shells get job control and `tty` names the device.
    /// systemd opens it before it sets up the unit's namespaces and hands
    /// it to the unit's (dynamic) user, so `PrivateDevices=` does not stand
    /// in the way (checked on systemd 252 by `tests/run.rs`).
    Tty {
        /// The terminal device, an absolute path under `/dev/`.
        path: String,
    },
    /// File descriptors handed to systemd over D-Bus (e.g. a PTY for an
    /// attached one-off dyno). systemd duplicates them; ours are closed
    /// when the call returns.
    Fds {
        /// Standard input.
        stdin: OwnedFd,
        /// Standard output.
        stdout: OwnedFd,
        /// Standard error.
        stderr: OwnedFd,
    },
}

impl ServiceSpec {
    /// A dyno-sandboxed service logging to the journal, without limits,
    /// described by its name. Adjust the public fields from there.
    pub fn new(name: impl Into<String>, argv: Vec<String>) -> Self {
        let name = name.into();
        ServiceSpec {
            description: name.clone(),
            name,
            slice: None,
            argv,
            environment: Vec::new(),
            working_directory: None,
            bind_paths: Vec::new(),
            limits: Limits::default(),
            sandbox: Sandbox::Dyno,
            log_extra_fields: Vec::new(),
            syslog_identifier: None,
            log_rate_limit: None,
            timeout_stop: None,
            runtime_max: None,
            socket_bind_port: None,
            stdio: Stdio::Journal,
            overlay: None,
            cycle_timer: None,
            cache_directory: None,
        }
    }

    /// The timer's name, when the spec has one.
    pub fn timer_name(&self) -> Option<String> {
        self.cycle_timer.as_ref().map(|_| {
            let stem = self.name.strip_suffix(".service").unwrap_or(&self.name);
            format!("{stem}.timer")
        })
    }

    /// The units created in the same `StartTransientUnit` call: the
    /// overlay mount and the cycle timer. systemd loads them, and the
    /// service's dependencies start them.
    pub(super) fn aux_units(&self) -> Vec<(String, Vec<Property<'_>>)> {
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

    /// Checks what systemd would reject with a vaguer message, or what
    /// D-Bus cannot carry (NUL bytes). The reason names the field.
    pub fn validate(&self) -> Result<(), String> {
        let stem = self.name.strip_suffix(".service").unwrap_or_default();
        if stem.is_empty() || self.name.len() > 255 || self.name.contains('/') {
            return Err(format!(
                "unit name {:?} must be a non-empty `<name>.service` of at most 255 bytes without '/'",
                self.name
            ));
        }
        if let Some(slice) = &self.slice {
            if slice.strip_suffix(".slice").unwrap_or_default().is_empty() {
                return Err(format!("slice {slice:?} must end in .slice"));
            }
        }
        match self.argv.first() {
            None => return Err("argv is empty".to_owned()),
            Some(program) if !program.starts_with('/') => {
                return Err(format!("argv[0] {program:?} must be an absolute path"))
            }
            Some(_) => {}
        }
        for (name, _) in &self.environment {
            if !is_env_name(name) {
                return Err(format!(
                    "environment variable name {name:?} must match [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
        }
        for (name, _) in &self.log_extra_fields {
            if !is_journal_field(name) {
                return Err(format!(
                    "log field name {name:?} must match [A-Z][A-Z0-9_]* (at most 64 bytes)"
                ));
            }
        }
        if let Some(cache) = &self.cache_directory {
            if cache.is_empty()
                || cache.starts_with('/')
                || cache
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(format!(
                    "cache directory {cache:?} must be a relative path below /var/cache"
                ));
            }
        }
        if let Some(dir) = &self.working_directory {
            if !dir.starts_with('/') {
                return Err(format!("working directory {dir:?} must be absolute"));
            }
        }
        if let Stdio::Tty { path } = &self.stdio {
            if !path.starts_with("/dev/") || path.contains("/../") {
                return Err(format!("terminal {path:?} must be a device under /dev/"));
            }
        }
        for bind in &self.bind_paths {
            if !bind.source.starts_with('/') || !bind.destination.starts_with('/') {
                return Err(format!(
                    "bind {} -> {}: both paths must be absolute",
                    bind.source, bind.destination
                ));
            }
        }
        if let Some(overlay) = &self.overlay {
            for path in [
                &overlay.lower,
                &overlay.upper,
                &overlay.work,
                &overlay.mount_point,
            ] {
                // The mount options are one comma- and colon-separated string.
                if !path.starts_with('/') || path.contains([',', ':', '\\', '\0']) {
                    return Err(format!(
                        "overlay path {path:?} must be absolute and free of ',', ':' and '\\'"
                    ));
                }
            }
        }
        let strings = [&self.name, &self.description]
            .into_iter()
            .chain(&self.slice)
            .chain(&self.argv)
            .chain(self.environment.iter().map(|(_, v)| v))
            .chain(self.log_extra_fields.iter().map(|(_, v)| v))
            .chain(&self.working_directory)
            .chain(&self.syslog_identifier)
            .chain(self.bind_paths.iter().map(|b| &b.source))
            .chain(self.bind_paths.iter().map(|b| &b.destination))
            .chain(match &self.stdio {
                Stdio::Tty { path } => Some(path),
                Stdio::Journal | Stdio::Fds { .. } => None,
            });
        for s in strings {
            if s.contains('\0') {
                return Err(format!(
                    "{s:?} contains a NUL byte, which D-Bus cannot carry"
                ));
            }
        }
        Ok(())
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
    pub(super) fn properties(&self, cgroup_v2: bool) -> Vec<Property<'_>> {
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

/// systemd's `env_name_is_valid`: what a shell accepts as a variable name.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// systemd's `journal_field_valid` for fields a client may set.
fn is_journal_field(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dyno() -> ServiceSpec {
        ServiceSpec {
            name: "corral-demo-web.1.service".to_owned(),
            description: "demo web.1 (v7)".to_owned(),
            slice: Some("corral-demo.slice".to_owned()),
            argv: vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                "exec bin/web --port $PORT".to_owned(),
            ],
            environment: vec![
                ("PORT".to_owned(), "5000".to_owned()),
                (
                    "DATABASE_URL".to_owned(),
                    "postgres://u:p%40@db/x".to_owned(),
                ),
            ],
            working_directory: Some("/app".to_owned()),
            bind_paths: vec![
                BindPath {
                    source: "/var/lib/corral/slugs/unpacked/ab12".to_owned(),
                    destination: "/app".to_owned(),
                    read_only: true,
                },
                BindPath {
                    source: "/var/lib/corral/scratch/web.1".to_owned(),
                    destination: "/app/tmp".to_owned(),
                    read_only: false,
                },
            ],
            limits: Limits {
                memory_max: Some(512 << 20),
                memory_high: Some(480 << 20),
                memory_swap_max: Some(0),
                cpu_weight: Some(100),
                cpu_quota_per_sec_usec: Some(1_000_000),
                tasks_max: Some(256),
                limit_nofile: Some(10_000),
            },
            sandbox: Sandbox::Dyno,
            log_extra_fields: vec![
                ("CORRAL_APP".to_owned(), "demo".to_owned()),
                ("CORRAL_DYNO".to_owned(), "web.1".to_owned()),
            ],
            syslog_identifier: Some("app/web.1".to_owned()),
            log_rate_limit: None,
            timeout_stop: Some(Duration::from_secs(30)),
            runtime_max: None,
            socket_bind_port: Some(5000),
            stdio: Stdio::Journal,
            overlay: None,
            cycle_timer: None,
            cache_directory: None,
        }
    }

    /// One `Name=value` line per property, in GVariant text notation, with
    /// byte arrays (`LogExtraFields`) shown as `b"..."` to stay readable.
    fn render(props: &[Property<'_>]) -> String {
        props
            .iter()
            .map(|(name, value)| {
                let bytes = value
                    .try_clone()
                    .ok()
                    .and_then(|v| Vec::<Vec<u8>>::try_from(v).ok());
                match bytes {
                    Some(fields) => {
                        let fields: Vec<String> = fields
                            .iter()
                            .map(|f| format!("b{:?}", String::from_utf8_lossy(f)))
                            .collect();
                        format!("{name}=[{}]\n", fields.join(", "))
                    }
                    None => format!("{name}={value}\n"),
                }
            })
            .collect()
    }

    /// The whole property list of a typical web dyno on cgroup v2: review
    /// any change to this text as a change to every dyno's sandbox.
    #[test]
    fn snapshot_of_a_web_dyno() {
        let expected = r#"Description="demo web.1 (v7)"
Type="exec"
Restart="no"
KillMode="control-group"
CollectMode="inactive"
CPUAccounting=true
MemoryAccounting=true
TasksAccounting=true
Slice="corral-demo.slice"
ExecStart=[("/bin/sh", ["/bin/sh", "-c", "exec bin/web --port $$PORT"], false)]
Environment=["PORT=5000", "DATABASE_URL=postgres://u:p%40@db/x"]
WorkingDirectory="/app"
BindPaths=[("/var/lib/corral/scratch/web.1", "/app/tmp", false, uint64 16384)]
BindReadOnlyPaths=[("/var/lib/corral/slugs/unpacked/ab12", "/app", false, uint64 16384)]
MemoryMax=uint64 536870912
MemoryHigh=uint64 503316480
MemorySwapMax=uint64 0
CPUWeight=uint64 100
CPUQuotaPerSecUSec=uint64 1000000
TasksMax=uint64 256
LimitNOFILE=uint64 10000
DynamicUser=true
ProtectSystem="strict"
ProtectHome="yes"
PrivateTmp=true
PrivateDevices=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
ProtectProc="invisible"
RestrictSUIDSGID=true
RestrictNamespaces=uint64 0
RestrictRealtime=true
LockPersonality=true
SystemCallArchitectures=["native"]
SystemCallFilter=(true, ["@system-service"])
SystemCallErrorNumber=1
CapabilityBoundingSet=uint64 0
RestrictAddressFamilies=(true, ["AF_INET", "AF_INET6", "AF_UNIX"])
UMask=uint32 63
LogExtraFields=[b"CORRAL_APP=demo", b"CORRAL_DYNO=web.1"]
SyslogIdentifier="app/web.1"
TimeoutStopUSec=uint64 30000000
SocketBindAllow=[(0, 6, uint16 1, uint16 5000)]
SocketBindDeny=[(0, 0, uint16 0, uint16 0)]
StandardInput="null"
StandardOutput="journal"
StandardError="journal"
"#;
        let spec = dyno();
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(render(&spec.properties(true)), expected);
    }

    #[test]
    fn cgroup_v1_drops_socket_bind_and_none_drops_hardening() {
        let mut spec = dyno();
        let v1 = render(&spec.properties(false));
        assert!(!v1.contains("SocketBind"), "{v1}");
        assert!(v1.contains("DynamicUser=true"), "{v1}");

        spec.sandbox = Sandbox::None;
        let names: Vec<&str> = spec.properties(false).iter().map(|(n, _)| *n).collect();
        for hardening in ["DynamicUser", "ProtectSystem", "SystemCallFilter", "UMask"] {
            assert!(!names.contains(&hardening), "{names:?}");
        }
        for lifecycle in ["Type", "Restart", "KillMode", "CollectMode", "MemoryMax"] {
            assert!(names.contains(&lifecycle), "{names:?}");
        }
    }

    #[test]
    fn fds_replace_the_journal() {
        let mut spec = ServiceSpec::new("x.service", vec!["/bin/true".to_owned()]);
        let devnull = || OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        spec.stdio = Stdio::Fds {
            stdin: devnull(),
            stdout: devnull(),
            stderr: devnull(),
        };
        let props = spec.properties(false);
        let names: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"StandardOutputFileDescriptor"), "{names:?}");
        assert!(!names.contains(&"StandardOutput"), "{names:?}");
        assert!(props
            .iter()
            .any(|(_, v)| matches!(v, Value::Fd(_)) && v.value_signature() == "h"));
    }

    /// What a one-off dyno with a terminal adds: the terminal for all three
    /// streams, and a lifetime after which systemd stops it.
    #[test]
    fn a_terminal_and_a_lifetime_for_one_off_dynos() {
        let mut spec = dyno();
        spec.stdio = Stdio::Tty {
            path: "/dev/pts/7".to_owned(),
        };
        spec.runtime_max = Some(Duration::from_secs(24 * 3600));
        assert_eq!(spec.validate(), Ok(()));
        let text = render(&spec.properties(false));
        assert!(
            text.ends_with(
                "TimeoutStopUSec=uint64 30000000\n\
                 RuntimeMaxUSec=uint64 86400000000\n\
                 StandardInput=\"tty\"\n\
                 StandardOutput=\"tty\"\n\
                 StandardError=\"tty\"\n\
                 TTYPath=\"/dev/pts/7\"\n"
            ),
            "{text}"
        );
        assert!(!text.contains("journal"), "{text}");

        for bad in ["pts/7", "/tmp/x", "/dev/../etc/shadow", "/dev/pts/7\0"] {
            spec.stdio = Stdio::Tty {
                path: bad.to_owned(),
            };
            assert!(spec.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_escape_like_systemd_escape() {
        assert_eq!(
            escape_path("/run/corral/dynos/ab12/fs/app"),
            "run-corral-dynos-ab12-fs-app"
        );
        assert_eq!(escape_path("//var/lib/my-state/"), "var-lib-my\\x2dstate");
        assert_eq!(escape_path("/.hidden/a b"), "\\x2ehidden-a\\x20b");
        assert_eq!(escape_path("/"), "-");
    }

    #[test]
    fn the_overlay_and_the_timer_come_with_the_service() {
        let mut spec = dyno();
        spec.name = "corral-demo-web.1@3.service".to_owned();
        spec.overlay = Some(OverlayMount {
            lower: "/var/lib/corral/slugs/unpacked/ab".to_owned(),
            upper: "/run/corral/dynos/x/fs/upper".to_owned(),
            work: "/run/corral/dynos/x/fs/work".to_owned(),
            mount_point: "/run/corral/dynos/x/fs/app".to_owned(),
        });
        spec.cycle_timer = Some(CycleTimer {
            after: Duration::from_secs(86_400),
            randomized_delay: Duration::from_secs(216 * 60),
            description: "Daily cycling".to_owned(),
        });
        assert!(spec.validate().is_ok(), "{:?}", spec.validate());
        let main = render(&spec.properties(true));
        assert!(
            main.contains("Requires=[\"run-corral-dynos-x-fs-app.mount\"]\n"),
            "{main}"
        );
        assert!(
            main.contains("After=[\"run-corral-dynos-x-fs-app.mount\"]\n"),
            "{main}"
        );
        assert!(
            main.contains("Wants=[\"corral-demo-web.1@3.timer\"]\n"),
            "{main}"
        );
        let aux = spec.aux_units();
        let names: Vec<&str> = aux.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "run-corral-dynos-x-fs-app.mount",
                "corral-demo-web.1@3.timer"
            ]
        );
        let mount = render(&aux[0].1);
        assert!(mount.contains("Options=\"lowerdir=/var/lib/corral/slugs/unpacked/ab,upperdir=/run/corral/dynos/x/fs/upper,workdir=/run/corral/dynos/x/fs/work\"\n"), "{mount}");
        assert!(mount.contains("StopWhenUnneeded=true\n"), "{mount}");
        let timer = render(&aux[1].1);
        assert!(
            timer.contains("TimersMonotonic=[(\"OnActiveSec\", uint64 86400000000)]\n"),
            "{timer}"
        );
        assert!(
            timer.contains("RandomizedDelayUSec=uint64 12960000000\n"),
            "{timer}"
        );
        assert!(
            timer.contains("BindsTo=[\"corral-demo-web.1@3.service\"]\n"),
            "{timer}"
        );

        spec.overlay.as_mut().expect("overlay").lower = "/var/lib/a,b".to_owned();
        assert!(spec.validate().expect_err("comma").contains("overlay path"));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let ok = || ServiceSpec::new("a.service", vec!["/bin/true".to_owned()]);
        assert_eq!(ok().validate(), Ok(()));
        type Breakage = Box<dyn Fn(&mut ServiceSpec)>;
        let cases: Vec<(Breakage, &str)> = vec![
            (Box::new(|s| s.name = "a.socket".into()), "unit name"),
            (Box::new(|s| s.name = ".service".into()), "unit name"),
            (Box::new(|s| s.argv.clear()), "argv is empty"),
            (Box::new(|s| s.argv = vec!["true".into()]), "argv[0]"),
            (
                Box::new(|s| s.environment = vec![("1A".into(), "x".into())]),
                "environment variable name",
            ),
            (
                Box::new(|s| s.environment = vec![("A-B".into(), "x".into())]),
                "environment variable name",
            ),
            (
                Box::new(|s| s.environment = vec![("A".into(), "x\0y".into())]),
                "NUL",
            ),
            (
                Box::new(|s| s.log_extra_fields = vec![("app".into(), "x".into())]),
                "log field name",
            ),
            (
                Box::new(|s| s.working_directory = Some("app".into())),
                "working directory",
            ),
            (Box::new(|s| s.slice = Some("corral".into())), "slice"),
            (
                Box::new(|s| {
                    s.bind_paths = vec![BindPath {
                        source: "rel".into(),
                        destination: "/app".into(),
                        read_only: true,
                    }]
                }),
                "bind",
            ),
        ];
        for (break_it, needle) in cases {
            let mut spec = ok();
            break_it(&mut spec);
            let err = spec.validate().expect_err(needle);
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }
}
