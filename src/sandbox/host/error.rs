//! Why a throwaway host could not be booted or torn down.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::SCRATCH_ROOT;

/// Why a host could not be booted or torn down.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Not root: namespaces, mounts and cgroups need it.
    #[error("the throwaway systemd host must be started as root (effective uid is {0}): it mounts filesystems and makes cgroups; run it with sudo")]
    NotRoot(u32),
    /// The host name is not usable in cgroup and directory names.
    #[error("invalid host name {0:?}: use 1 to 40 characters of [a-z0-9-], not starting with '-'")]
    InvalidName(String),
    /// A bind would expose or endanger the machine.
    #[error("invalid bind {outside} -> {inside}: {reason}")]
    InvalidBind {
        outside: PathBuf,
        inside: PathBuf,
        reason: String,
    },
    /// A program the host needs is not installed.
    #[error("{0} not found in /usr/bin, /bin, /usr/sbin or /sbin: install util-linux, procps and systemd")]
    MissingProgram(String),
    /// A host of that name is running, or a crashed one left traces.
    #[error("a host named {name:?} exists or was not torn down ({path} exists): use another name, or remove the leftovers of a crashed run (rmdir the corral-sandbox-{name} cgroup directories deepest first, then remove {SCRATCH_ROOT}/{name})")]
    AlreadyExists { name: String, path: PathBuf },
    /// The machine's cgroup mounts are not ones this code understands.
    #[error("unsupported cgroup layout: {0}")]
    Cgroups(String),
    /// A file system operation on the machine failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A helper program could not be run, or failed.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// systemd exited or failed before finishing its boot.
    #[error("the inner systemd of host {name:?} did not boot ({reason}); console output of the host follows:\n{console}")]
    BootFailed {
        name: String,
        reason: String,
        console: String,
    },
    /// systemd did not finish booting in time.
    #[error("host {name:?} did not finish booting within {timeout:?} (was waiting for {stage}); raise HostConfig::boot_timeout if the machine is just slow; console output of the host follows:\n{console}")]
    BootTimeout {
        name: String,
        timeout: Duration,
        stage: &'static str,
        console: String,
    },
    /// corrald did not come up inside the host.
    #[error("corrald did not start in the sandbox: {0}")]
    Corrald(String),
    /// Shutdown could not remove everything it made.
    #[error("teardown of host {name:?} left things behind, remove them by hand: {}", .leftovers.join("; "))]
    Teardown {
        name: String,
        leftovers: Vec<String>,
    },
}

pub(super) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.into();
    move |source| SandboxError::Io {
        action,
        path,
        source,
    }
}
