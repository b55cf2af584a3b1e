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

use std::os::fd::OwnedFd;
use std::time::Duration;

mod render;
#[cfg(test)]
mod tests;

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
    pub(crate) fn unit_name(&self) -> String {
        mount_unit_name(&self.mount_point)
    }
}

/// The name of the mount unit for `mount_point`: the path escaped like
/// `systemd-escape --path`, plus `.mount`.
pub(crate) fn mount_unit_name(mount_point: &str) -> String {
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
pub(crate) fn escape_path(path: &str) -> String {
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
    pub(crate) fn timer_name(&self) -> Option<String> {
        self.cycle_timer.as_ref().map(|_| {
            let stem = self.name.strip_suffix(".service").unwrap_or(&self.name);
            format!("{stem}.timer")
        })
    }

    /// Checks what systemd would reject with a vaguer message, or what
    /// D-Bus cannot carry (NUL bytes). The reason names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
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
