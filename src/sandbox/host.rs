//! A throwaway systemd host: a real systemd booted as PID 1 of private namespaces on an overlay of `/`, for tests.
//!
//! The recipe and its two traps are described in `shared/notes/systemd-test-host.md`.
//! In short, the booted systemd must never see the machine's real `/`, `/tmp`,
//! `/run` or the root of the machine's cgroup hierarchies:
//!
//! - Outside (this module, as root): a child cgroup `corral-sandbox-<name>` is
//!   made under the current cgroup of every mounted hierarchy, and a small shell
//!   moves itself there before `exec`ing `unshare`, so no process of the host is
//!   ever outside those cgroups (and no `pre_exec`, hence no `unsafe`, is needed).
//! - Inside (`INIT_SCRIPT`, PID 1 of the new PID namespace): an overlay with
//!   a tmpfs upper layer, fresh `/proc`, read-only `/sys` and `/proc/sys`, fresh
//!   cgroup mounts (rooted at the child cgroups thanks to `unshare --cgroup`), a
//!   private minimal `/dev`, tmpfs `/run` and `/tmp`, then `pivot_root` and
//!   `exec systemd`.
//!
//! Everything the host writes lives in its own mount namespace and dies with it;
//! the only things on the machine are the child cgroups and a scratch directory
//! under [`SCRATCH_ROOT`], both removed by [`Host::shutdown`] (or on drop).
//!
//! The network namespace is shared with the machine on purpose: a port bound
//! inside is reachable on the machine's loopback.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};
use tracing::{debug, info, warn};

/// Where the per-host scratch directories live. `/run` rather than `/tmp`
/// keeps them clear of anything that cleans `/tmp`; each host removes its own.
pub const SCRATCH_ROOT: &str = "/run/corral-sandbox";

/// Prefix of the child cgroup directory made in every hierarchy.
pub const CGROUP_PREFIX: &str = "corral-sandbox-";

/// Value of `$container` for the inner systemd, which makes it behave as a
/// container's init (no hardware, clock or kernel module setup).
const CONTAINER_ID: &str = "corral-sandbox";

/// The unit the inner systemd boots into: basic.target plus D-Bus and logind,
/// and none of the machine's enabled services (they would bind ports in the
/// shared network namespace).
const TARGET_UNIT: &str = "corral-sandbox.target";

const SYSTEMD: &str = "/usr/lib/systemd/systemd";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const CGROUP_RMDIR_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
const MAX_NAME_LEN: usize = 40;

/// Runs as the launched process on the machine: `echo $$` into every
/// `cgroup.procs` given before `--`, then `exec` the rest (`unshare ...`).
/// Being a shell that moves itself, nothing runs outside the child cgroups.
const ENTER_CGROUPS_SCRIPT: &str = r#"set -eu
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    echo "$$" > "$1"
    shift
done
shift
exec "$@"
"#;

/// PID 1 of the new PID namespace, in a private mount namespace.
///
/// Arguments: `$1` scratch dir, `$2` unit to boot, `$3` value of
/// `$container`, `$4` cgroup root mode (`tmpfs` or `none`), then a count and
/// `(fstype dir options)` triples for the cgroup hierarchies, a count and
/// `(name target)` pairs of symlinks in `/sys/fs/cgroup`, a count and
/// `(source destination)` pairs of binds.
const INIT_SCRIPT: &str = r#"set -eu
scratch=$1
target=$2
container_id=$3
cgroot_mode=$4
shift 4
fs=$scratch/fs
m=$fs/merged
old=/run/corral-old-root

# Nothing mounted from here on may reach the machine's namespace.
mount --make-rprivate /

# Overlay of / with a tmpfs upper layer: what systemd writes (including
# systemd-tmpfiles cleaning) stays in memory of this namespace.
mount -t tmpfs -o mode=0755 corral-sandbox "$fs"
mkdir "$fs/upper" "$fs/work" "$m"
mount -t overlay -o "lowerdir=/,upperdir=$fs/upper,workdir=$fs/work" corral-sandbox "$m"

mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
# Read-only like systemd-nspawn: sysctls, sysrq and sysfs are machine-global.
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro "$m/proc/sys"
if [ -e "$m/proc/sysrq-trigger" ]; then
    mount --bind "$m/proc/sysrq-trigger" "$m/proc/sysrq-trigger"
    mount -o remount,bind,ro "$m/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"

# Fresh cgroup mounts: thanks to unshare --cgroup their root is the child
# cgroup the launcher moved into, so systemd nests everything below it.
cg=$m/sys/fs/cgroup
if [ "$cgroot_mode" = tmpfs ]; then
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec cgroup "$cg"
fi
n=$1
shift
while [ "$n" -gt 0 ]; do
    mkdir -p "$cg/$2"
    mount -t "$1" -o "nosuid,nodev,noexec${3:+,$3}" "$1" "$cg/$2"
    shift 3
    n=$((n - 1))
done
n=$1
shift
while [ "$n" -gt 0 ]; do
    ln -s "$2" "$cg/$1"
    shift 2
    n=$((n - 1))
done

# A private /dev: the machine's devtmpfs would be exposed to tmpfiles rules
# (permission changes on real device nodes), and its /dev/console to
# systemd's output and gettys.
d=$m/dev
mount -t tmpfs -o mode=0755,nosuid,size=4m corral-dev "$d"
for node in null zero full random urandom tty; do
    : > "$d/$node"
    mount --bind "/dev/$node" "$d/$node"
done
: > "$d/console"
mount --bind /dev/null "$d/console"
mkdir "$d/pts" "$d/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$d/pts"
ln -s pts/ptmx "$d/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$d/shm"
ln -s /proc/self/fd "$d/fd"
ln -s /proc/self/fd/0 "$d/stdin"
ln -s /proc/self/fd/1 "$d/stdout"
ln -s /proc/self/fd/2 "$d/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev corral-run "$m/run"
mount -t tmpfs -o mode=1777,nosuid,nodev corral-tmp "$m/tmp"

mkdir "$m$old"
cd "$m"
pivot_root . ".$old"
cd /

# From here on absolute symlinks resolve inside the overlay, so neither the
# configuration copy nor the bind targets can write through to the machine.
cp -a --remove-destination "$old$scratch/etc/." /etc/
n=$1
shift
while [ "$n" -gt 0 ]; do
    if [ -d "$old$1" ]; then
        mkdir -p "$2"
    else
        mkdir -p "$(dirname "$2")"
        [ -e "$2" ] || : > "$2"
    fi
    mount --bind "$old$1" "$2"
    shift 2
    n=$((n - 1))
done
umount -l "$old"
rmdir "$old"

# systemd as a container's init leaves mount propagation as it finds it
# (private, from the top of this script), so services with a mount
# namespace of their own (ProtectSystem=, PrivateTmp=) would never see
# mounts made later, nor their unmounts. Shared, as systemd makes it on a
# real host and systemd-nspawn in its containers. The peer groups are new
# and live in this namespace only: nothing propagates to the machine.
mount --make-rshared /

export container="$container_id"
exec /usr/lib/systemd/systemd --system --unit="$target" --show-status=false
"#;

/// Units that make no sense in a throwaway host, slow its boot, or would act on
/// machine-global state (time, sysctls, kernel modules, devices, ports).
const MASKED_UNITS: &[&str] = &[
    "getty.target",
    "getty@.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-timesyncd.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "systemd-pstore.service",
    "systemd-firstboot.service",
    "systemd-repart.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-random-seed.service",
    "systemd-journald-audit.socket",
    "dev-hugepages.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "man-db.timer",
    "logrotate.timer",
];

const TARGET_UNIT_TEXT: &str = "[Unit]
Description=Corral throwaway systemd host
Requires=basic.target
Wants=dbus.service systemd-logind.service
After=basic.target dbus.service systemd-logind.service
AllowIsolate=yes
";

/// Bounded stops: a hung unit must not hold up a test's teardown past
/// [`SHUTDOWN_TIMEOUT`].
const SYSTEM_CONF_TEXT: &str = "[Manager]
DefaultTimeoutStopSec=10s
ShowStatus=no
";

const JOURNALD_CONF_TEXT: &str = "[Journal]
Storage=volatile
ReadKMsg=no
";

/// Inner paths a bind may not target: they are fresh filesystems (the bind
/// would be hidden or refused) or emptied by systemd-tmpfiles at boot, which
/// would wipe the outside directory through the bind.
const FORBIDDEN_BIND_PREFIXES: &[&str] = &["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"];

/// Programs run by this module, looked up in the usual system directories
/// rather than `$PATH` so a test's `$PATH` cannot substitute them.
const PROGRAM_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Settings of one host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Unique among hosts alive at once; 1 to 40 of `[a-z0-9-]`. Names the
    /// child cgroups (`corral-sandbox-<name>`), the scratch directory and the
    /// inner hostname.
    pub name: String,
    /// `(outside path, inside path)`: bound read-write into the host's root.
    /// The inside path must be absolute and not under `/proc`, `/sys`, `/dev`,
    /// `/run`, `/tmp` or `/var/tmp`.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// How long [`Host::boot`] waits for the inner systemd to finish booting.
    pub boot_timeout: Duration,
    /// `(path relative to /etc, text)`: files written into the host's own
    /// `/etc` before its systemd starts, e.g. units it should know at boot.
    pub etc_files: Vec<(PathBuf, String)>,
}

impl HostConfig {
    /// A config without binds and a 60 s boot timeout.
    pub fn new(name: impl Into<String>) -> Self {
        HostConfig {
            name: name.into(),
            binds: Vec::new(),
            boot_timeout: Duration::from_secs(60),
            etc_files: Vec::new(),
        }
    }

    /// Adds a read-write bind of `outside` at `inside`.
    pub fn bind(mut self, outside: impl Into<PathBuf>, inside: impl Into<PathBuf>) -> Self {
        self.binds.push((outside.into(), inside.into()));
        self
    }

    /// Adds a file at `/etc/<path>` inside the host (`path` relative,
    /// without `..`).
    pub fn etc_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.etc_files.push((path.into(), text.into()));
        self
    }
}

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

fn io_err(
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

/// A booted throwaway systemd host. Dropping it shuts it down (best effort);
/// call [`Host::shutdown`] to learn whether teardown left anything behind.
#[derive(Debug)]
pub struct Host {
    name: String,
    /// The `unshare` process (our child); the inner systemd is its child.
    launcher: Option<Child>,
    pid: u32,
    scratch: PathBuf,
    /// Whether `scratch` was made by this host (and so is ours to remove).
    owns_scratch: bool,
    /// Child cgroup directories made on the machine, one per hierarchy.
    cgroups: Vec<PathBuf>,
    boot_timeout: Duration,
    programs: Programs,
    torn_down: bool,
}

#[derive(Debug, Clone)]
struct Programs {
    sh: PathBuf,
    unshare: PathBuf,
    nsenter: PathBuf,
    kill: PathBuf,
}

impl Programs {
    fn find() -> Result<Self, SandboxError> {
        // Only checked, never run from here: the init script runs them inside.
        for name in ["mount", "umount", "pivot_root", "cp"] {
            find_program(name)?;
        }
        if !Path::new(SYSTEMD).is_file() {
            return Err(SandboxError::MissingProgram(SYSTEMD.to_owned()));
        }
        Ok(Programs {
            sh: find_program("sh")?,
            unshare: find_program("unshare")?,
            nsenter: find_program("nsenter")?,
            kill: find_program("kill")?,
        })
    }
}

fn find_program(name: &str) -> Result<PathBuf, SandboxError> {
    PROGRAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| SandboxError::MissingProgram(name.to_owned()))
}

impl Host {
    /// Boots a host and returns once its systemd reports `running` or
    /// `degraded` and its system bus answers. On any failure everything made so
    /// far is torn down before the error is returned.
    pub fn boot(cfg: HostConfig) -> Result<Host, SandboxError> {
        let euid = geteuid();
        if !euid.is_root() {
            return Err(SandboxError::NotRoot(euid.as_raw()));
        }
        validate_name(&cfg.name)?;
        let binds = validate_binds(&cfg.binds)?;
        let programs = Programs::find()?;
        let layout = CgroupLayout::discover()?;

        let mut host = Host {
            name: cfg.name.clone(),
            launcher: None,
            pid: 0,
            scratch: Path::new(SCRATCH_ROOT).join(&cfg.name),
            owns_scratch: false,
            cgroups: Vec::new(),
            boot_timeout: cfg.boot_timeout,
            programs,
            torn_down: false,
        };
        match host.start(&cfg, &layout, &binds) {
            Ok(()) => {
                info!(name = %host.name, pid = host.pid, "systemd test host booted");
                Ok(host)
            }
            Err(err) => {
                if let Err(teardown) = host.teardown(false) {
                    warn!(name = %host.name, error = %teardown, "teardown after failed boot");
                }
                Err(err)
            }
        }
    }

    /// PID of the inner systemd as seen from the machine.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The host's name, as given in [`HostConfig::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command running `program` inside the host (`nsenter -t PID -a --`):
    /// its PID, mount, cgroup, UTS and IPC namespaces, sharing the machine's
    /// network namespace. `systemctl`, `systemd-run` and `busctl --system` in
    /// there talk to the inner systemd and bus.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(&self.programs.nsenter);
        cmd.arg("-t")
            .arg(self.pid.to_string())
            .arg("-a")
            .arg("--")
            .arg(program);
        cmd
    }

    /// Powers the host off cleanly (SIGRTMIN+4), SIGKILLs its PID namespace if
    /// that takes longer than 20 s, then removes its child cgroups and scratch
    /// directory. Errors list whatever could not be removed.
    pub fn shutdown(mut self) -> Result<(), SandboxError> {
        self.teardown(true)
    }

    fn start(
        &mut self,
        cfg: &HostConfig,
        layout: &CgroupLayout,
        binds: &[(PathBuf, PathBuf)],
    ) -> Result<(), SandboxError> {
        let deadline = Instant::now() + cfg.boot_timeout;
        self.make_cgroups(layout)?;
        self.make_scratch(&cfg.etc_files)?;
        let launcher = self.spawn_launcher(layout, binds)?;
        self.launcher = Some(launcher);

        self.pid = self.wait_for(
            deadline,
            "the init process of the new PID namespace",
            |host| Ok(host.launcher_pid().and_then(find_child_of)),
        )?;
        debug!(name = %self.name, pid = self.pid, "inner init started");
        let proc_dir = PathBuf::from(format!("/proc/{}", self.pid));
        self.wait_for(deadline, "the init script to exec systemd", |_| {
            Ok(fs::read_to_string(proc_dir.join("comm"))
                .ok()
                .filter(|comm| comm.trim_end() == "systemd")
                .map(|_| ()))
        })?;
        // /proc/PID/root is the host's root now that systemd runs after pivot_root.
        let private = proc_dir.join("root/run/systemd/private");
        self.wait_for(deadline, "systemd's private socket", |_| {
            Ok(private.exists().then_some(()))
        })?;
        let state = self.wait_for(deadline, "systemctl is-system-running --wait", |host| {
            let mut cmd = host.command("systemctl");
            cmd.args(["is-system-running", "--wait"]);
            let Some(out) = run_bounded(cmd, "nsenter systemctl", deadline)? else {
                return Ok(None);
            };
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            Ok(match state.as_str() {
                "running" | "degraded" => Some(state),
                // Not up yet (no manager to talk to) or still starting: ask again.
                "" | "offline" | "initializing" | "starting" | "unknown" => None,
                _ => {
                    return Err(SandboxError::BootFailed {
                        name: host.name.clone(),
                        reason: format!("systemctl is-system-running says {state:?}"),
                        console: host.console_tail(),
                    })
                }
            })
        })?;
        if state == "degraded" {
            let mut cmd = self.command("systemctl");
            cmd.args(["--failed", "--no-legend", "--plain"]);
            let failed = run_bounded(cmd, "nsenter systemctl", Instant::now() + KILL_TIMEOUT)?
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            warn!(name = %self.name, failed = %failed.trim(), "systemd test host booted degraded");
        }
        self.wait_for(deadline, "the system bus to answer", |host| {
            let mut cmd = host.command("busctl");
            cmd.args([
                "--system",
                "--timeout=2",
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetId",
            ]);
            Ok(run_bounded(cmd, "nsenter busctl", deadline)?
                .filter(|out| out.status.success())
                .map(|_| ()))
        })?;
        Ok(())
    }

    /// Polls `check` until it yields a value, the launcher dies or `deadline` passes.
    fn wait_for<T>(
        &mut self,
        deadline: Instant,
        stage: &'static str,
        mut check: impl FnMut(&Self) -> Result<Option<T>, SandboxError>,
    ) -> Result<T, SandboxError> {
        loop {
            if let Some(value) = check(self)? {
                return Ok(value);
            }
            if let Some(status) = self.launcher_exit()? {
                return Err(SandboxError::BootFailed {
                    name: self.name.clone(),
                    reason: format!("it exited with {status} while waiting for {stage}"),
                    console: self.console_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::BootTimeout {
                    name: self.name.clone(),
                    timeout: self.boot_timeout,
                    stage,
                    console: self.console_tail(),
                });
            }
            thread::sleep(POLL);
        }
    }

    fn launcher_pid(&self) -> Option<u32> {
        self.launcher.as_ref().map(Child::id)
    }

    fn launcher_exit(&mut self) -> Result<Option<ExitStatus>, SandboxError> {
        match self.launcher.as_mut() {
            Some(child) => child
                .try_wait()
                .map_err(io_err("wait for", "the unshare launcher")),
            None => Ok(None),
        }
    }

    fn make_cgroups(&mut self, layout: &CgroupLayout) -> Result<(), SandboxError> {
        let leaf = format!("{CGROUP_PREFIX}{}", self.name);
        for h in &layout.hierarchies {
            let parent = h.mount.join(h.current.trim_start_matches('/'));
            let dir = parent.join(&leaf);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(SandboxError::AlreadyExists {
                        name: self.name.clone(),
                        path: dir,
                    })
                }
                Err(e) => return Err(io_err("create cgroup", dir)(e)),
            }
            self.cgroups.push(dir.clone());
            if h.is_cpuset() {
                // A new cpuset is empty and refuses tasks until given CPUs and memory nodes.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let value = fs::read_to_string(parent.join(file))
                        .map_err(io_err("read", parent.join(file)))?;
                    fs::write(dir.join(file), value.trim())
                        .map_err(io_err("write", dir.join(file)))?;
                }
            }
        }
        Ok(())
    }

    fn make_scratch(&mut self, etc_files: &[(PathBuf, String)]) -> Result<(), SandboxError> {
        let root = Path::new(SCRATCH_ROOT);
        // Another host's teardown may remove an empty SCRATCH_ROOT between our
        // create_dir_all and create_dir: retry a few times.
        let mut attempts = 0;
        loop {
            fs::create_dir_all(root).map_err(io_err("create", root))?;
            match fs::create_dir(&self.scratch) {
                Ok(()) => {
                    self.owns_scratch = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(SandboxError::AlreadyExists {
                        name: self.name.clone(),
                        path: self.scratch.clone(),
                    })
                }
                Err(e) => return Err(io_err("create", self.scratch.clone())(e)),
            }
        }
        let fs_dir = self.scratch.join("fs");
        fs::create_dir(&fs_dir).map_err(io_err("create", &fs_dir))?;

        // Copied over the overlay's /etc by the init script, after pivot_root.
        let etc = self.scratch.join("etc");
        let write = |rel: &str, text: &str| -> Result<(), SandboxError> {
            let path = etc.join(rel);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            }
            fs::write(&path, text).map_err(io_err("write", path))
        };
        write(&format!("systemd/system/{TARGET_UNIT}"), TARGET_UNIT_TEXT)?;
        write(
            "systemd/system.conf.d/corral-sandbox.conf",
            SYSTEM_CONF_TEXT,
        )?;
        write(
            "systemd/journald.conf.d/corral-sandbox.conf",
            JOURNALD_CONF_TEXT,
        )?;
        write("hostname", &format!("{CGROUP_PREFIX}{}\n", self.name))?;
        for (path, text) in etc_files {
            // Relative and plain, so the file lands inside the scratch etc.
            let plain = path.components().count() > 0
                && path.components().all(|c| matches!(c, Component::Normal(_)));
            let rel = path
                .to_str()
                .filter(|_| plain)
                .ok_or_else(|| SandboxError::Io {
                    action: "write into the host's /etc",
                    path: path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the path must be relative to /etc, without . or ..",
                    ),
                })?;
            write(rel, text)?;
        }
        // The machine's fstab describes the machine's disks, not ours.
        write("fstab", "")?;
        let units = etc.join("systemd/system");
        for unit in MASKED_UNITS {
            let link = units.join(unit);
            std::os::unix::fs::symlink("/dev/null", &link).map_err(io_err("create", link))?;
        }
        Ok(())
    }

    fn spawn_launcher(
        &self,
        layout: &CgroupLayout,
        binds: &[(PathBuf, PathBuf)],
    ) -> Result<Child, SandboxError> {
        let console_path = self.scratch.join("console.log");
        let console = File::create(&console_path).map_err(io_err("create", &console_path))?;
        let console2 = console
            .try_clone()
            .map_err(io_err("duplicate", &console_path))?;

        let mut cmd = Command::new(&self.programs.sh);
        cmd.arg("-c")
            .arg(ENTER_CGROUPS_SCRIPT)
            .arg("corral-sandbox-enter");
        for dir in &self.cgroups {
            cmd.arg(dir.join("cgroup.procs"));
        }
        cmd.arg("--").arg(&self.programs.unshare).args([
            "--pid",
            "--fork",
            // If the launcher dies, so does the whole host.
            "--kill-child",
            "--mount",
            "--propagation",
            "private",
            "--cgroup",
            "--uts",
            "--ipc",
            "--",
        ]);
        cmd.arg(&self.programs.sh)
            .arg("-c")
            .arg(INIT_SCRIPT)
            .arg("corral-sandbox-init")
            .arg(&self.scratch)
            .arg(TARGET_UNIT)
            .arg(CONTAINER_ID)
            .arg(if layout.root_is_tmpfs {
                "tmpfs"
            } else {
                "none"
            })
            .arg(layout.hierarchies.len().to_string());
        for h in &layout.hierarchies {
            cmd.arg(h.fstype).arg(&h.inner_dir).arg(&h.options);
        }
        cmd.arg(layout.symlinks.len().to_string());
        for (name, target) in &layout.symlinks {
            cmd.arg(name).arg(target);
        }
        cmd.arg(binds.len().to_string());
        for (outside, inside) in binds {
            cmd.arg(outside).arg(inside);
        }
        // The inner systemd must not inherit the test's environment.
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2);
        debug!(name = %self.name, "launching systemd test host");
        cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: "sh (unshare launcher)".to_owned(),
            source,
        })
    }

    /// The end of the init script's output and, if systemd is up far enough
    /// to answer, of its journal (systemd itself logs there, not to stderr).
    fn console_tail(&self) -> String {
        const TAIL: u64 = 8 * 1024;
        let path = self.scratch.join("console.log");
        let read = || -> io::Result<String> {
            let mut file = File::open(&path)?;
            let len = file.metadata()?.len();
            file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        };
        let mut text = read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
        if self.pid != 0 {
            let mut cmd = self.command("journalctl");
            cmd.args([
                "--boot",
                "--no-pager",
                "--lines=60",
                "--output=short-monotonic",
            ]);
            if let Ok(Some(out)) = run_bounded(
                cmd,
                "nsenter journalctl",
                Instant::now() + Duration::from_secs(5),
            ) {
                text.push_str("\n--- journal of the host ---\n");
                text.push_str(&String::from_utf8_lossy(&out.stdout));
                text.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
        text
    }

    /// Stops the host (gracefully if asked) and removes what it left on the
    /// machine. Idempotent.
    fn teardown(&mut self, graceful: bool) -> Result<(), SandboxError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut leftovers = Vec::new();
        if let Some(launcher) = self.launcher.take() {
            if let Err(e) = self.stop(launcher, graceful) {
                leftovers.push(e);
            }
        }
        for dir in self.cgroups.drain(..).rev() {
            if let Err(e) = remove_cgroup_tree(&dir) {
                leftovers.push(e);
            }
        }
        if self.owns_scratch {
            if let Err(e) = remove_scratch(&self.scratch) {
                leftovers.push(e);
            }
        }
        if leftovers.is_empty() {
            info!(name = %self.name, "systemd test host torn down");
            Ok(())
        } else {
            Err(SandboxError::Teardown {
                name: self.name.clone(),
                leftovers,
            })
        }
    }

    fn stop(&mut self, mut launcher: Child, graceful: bool) -> Result<(), String> {
        let running = |l: &mut Child| matches!(l.try_wait(), Ok(None));
        if running(&mut launcher) {
            if self.pid == 0 {
                // Boot failed before we saw the init; it may exist by now.
                self.pid = find_child_of(launcher.id()).unwrap_or(0);
            }
            // Only systemd handles SIGRTMIN+4; the init script would ignore it
            // (an init gets only signals it has handlers for) and we would wait
            // for nothing.
            let is_systemd = fs::read_to_string(format!("/proc/{}/comm", self.pid))
                .map(|comm| comm.trim_end() == "systemd")
                .unwrap_or(false);
            if graceful && self.pid != 0 && is_systemd {
                self.poweroff(&mut launcher);
            }
        }
        // While the launcher has not exited it has not reaped the init, so
        // self.pid cannot have been reused. SIGKILL to a PID namespace's init
        // kills every process in the namespace.
        if running(&mut launcher) && self.pid != 0 {
            if let Err(e) = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL) {
                debug!(pid = self.pid, error = %e, "SIGKILL of inner init");
            }
            wait_exit(&mut launcher, KILL_TIMEOUT);
        }
        if running(&mut launcher) {
            // unshare has not forked yet (or is stuck): kill it; a child forked
            // meanwhile is caught by the cgroup sweep below.
            if let Err(e) = launcher.kill() {
                debug!(error = %e, "SIGKILL of launcher");
            }
            if !wait_exit(&mut launcher, KILL_TIMEOUT) {
                return Err(format!(
                    "launcher process {} (unshare) did not exit after SIGKILL",
                    launcher.id()
                ));
            }
        }
        // Every process of the host started in these cgroups (the launcher
        // joined them before unsharing), so this catches anything the PID
        // namespace teardown could not, e.g. an init orphaned by a killed launcher.
        kill_cgroup_members(&self.cgroups, KILL_TIMEOUT)
    }

    /// Clean poweroff: SIGRTMIN+4, then wait for the launcher to exit.
    fn poweroff(&self, launcher: &mut Child) {
        // nix's Signal has no real-time signals, hence kill(1).
        let sent = Command::new(&self.programs.kill)
            .args(["-s", "RTMIN+4", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match sent {
            Ok(status) if status.success() => {
                if !wait_exit(launcher, SHUTDOWN_TIMEOUT) {
                    warn!(name = %self.name, "clean poweroff timed out, killing the PID namespace");
                }
            }
            Ok(status) => warn!(name = %self.name, %status, "kill -s RTMIN+4 failed"),
            Err(e) => warn!(name = %self.name, error = %e, "cannot run kill"),
        }
    }
}

/// SIGKILLs whatever is still in the cgroup trees until they are empty.
fn kill_cgroup_members(tops: &[PathBuf], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pids = Vec::new();
        for top in tops {
            let mut dirs = Vec::new();
            collect_dirs(top, &mut dirs);
            for dir in dirs {
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                }
            }
        }
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "processes {pids:?} in the host's cgroups survived SIGKILL"
            ));
        }
        for pid in pids {
            if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
                debug!(pid, error = %e, "SIGKILL of cgroup member");
            }
        }
        thread::sleep(POLL);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Err(e) = self.teardown(true) {
            warn!(name = %self.name, error = %e, "systemd test host teardown on drop");
        }
    }
}

fn validate_name(name: &str) -> Result<(), SandboxError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidName(name.to_owned()))
    }
}

/// Returns the binds with canonical outside paths (symlink-free, so the init
/// script resolves them exactly as meant under the old root).
fn validate_binds(binds: &[(PathBuf, PathBuf)]) -> Result<Vec<(PathBuf, PathBuf)>, SandboxError> {
    binds
        .iter()
        .map(|(outside, inside)| {
            let invalid = |reason: String| SandboxError::InvalidBind {
                outside: outside.clone(),
                inside: inside.clone(),
                reason,
            };
            let canonical = fs::canonicalize(outside)
                .map_err(|e| invalid(format!("the outside path must exist: {e}")))?;
            if !inside.is_absolute()
                || inside
                    .components()
                    .skip(1)
                    .any(|c| !matches!(c, Component::Normal(_)))
                || inside.components().count() < 2
            {
                return Err(invalid(
                    "the inside path must be absolute, not /, without . or ..".to_owned(),
                ));
            }
            if let Some(prefix) = FORBIDDEN_BIND_PREFIXES
                .iter()
                .find(|p| inside.starts_with(p))
            {
                return Err(invalid(format!(
                    "{prefix} inside is replaced at boot or cleaned by systemd-tmpfiles; use e.g. /srv or /mnt"
                )));
            }
            Ok((canonical, inside.clone()))
        })
        .collect()
}

/// The first process whose parent is `ppid`, by scanning /proc (this kernel
/// has no /proc/PID/task/TID/children).
fn find_child_of(ppid: u32) -> Option<u32> {
    let entries = fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        (parse_ppid(&stat)? == ppid).then_some(pid)
    })
}

/// PPID from /proc/PID/stat; the command name may contain spaces and parens,
/// so fields are counted from the last ')'.
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` with captured output, killing it if `deadline` passes first
/// (then `Ok(None)`).
fn run_bounded(
    mut cmd: Command,
    what: &str,
    deadline: Instant,
) -> Result<Option<Output>, SandboxError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SandboxError::Spawn {
            program: what.to_owned(),
            source,
        })?;
    // Small outputs only (state words, unit lists): the pipe cannot fill up
    // while we poll.
    if wait_exit(
        &mut child,
        deadline.saturating_duration_since(Instant::now()),
    ) {
        child
            .wait_with_output()
            .map(Some)
            .map_err(io_err("wait for", what))
    } else {
        if let Err(e) = child.kill() {
            debug!(error = %e, "kill of {what}");
        }
        if let Err(e) = child.wait() {
            debug!(error = %e, "wait of {what}");
        }
        Ok(None)
    }
}

/// Polls until `child` has exited (true) or `timeout` passes (false).
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            // ECHILD: already reaped elsewhere, i.e. gone.
            Err(_) => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// rmdir of `top` and every cgroup systemd made below it, deepest first,
/// retried while the kernel still counts dying tasks.
fn remove_cgroup_tree(top: &Path) -> Result<(), String> {
    let deadline = Instant::now() + CGROUP_RMDIR_TIMEOUT;
    loop {
        let mut dirs = Vec::new();
        collect_dirs(top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut last_err = None;
        for dir in &dirs {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => last_err = Some(format!("cgroup {}: {e}", dir.display())),
            }
        }
        match last_err {
            None => return Ok(()),
            Some(err) if Instant::now() >= deadline => return Err(err),
            Some(_) => thread::sleep(POLL),
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
    out.push(dir.to_owned());
}

fn remove_scratch(scratch: &Path) -> Result<(), String> {
    if !scratch.exists() {
        return Ok(());
    }
    // The inner tmpfs lives in the host's private mount namespace; should a
    // mount ever show up here, removing recursively would empty it instead.
    let mounts =
        fs::read_to_string("/proc/self/mounts").map_err(|e| format!("/proc/self/mounts: {e}"))?;
    if let Some(m) = parse_mounts(&mounts)
        .into_iter()
        .find(|m| m.mount_point.starts_with(scratch))
    {
        return Err(format!(
            "{} is mounted in the machine's namespace; unmount it, then remove {}",
            m.mount_point.display(),
            scratch.display()
        ));
    }
    fs::remove_dir_all(scratch).map_err(|e| format!("scratch dir {}: {e}", scratch.display()))?;
    // Fails harmlessly while another host still has its directory there.
    let _ = fs::remove_dir(SCRATCH_ROOT);
    Ok(())
}

/// The machine's cgroup hierarchies as this process sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupLayout {
    /// Whether /sys/fs/cgroup is a tmpfs holding one mount per hierarchy
    /// (v1 or hybrid), rather than a cgroup2 mount itself (unified).
    root_is_tmpfs: bool,
    hierarchies: Vec<Hierarchy>,
    /// Symlinks in /sys/fs/cgroup, such as `cpu -> cpu,cpuacct`.
    symlinks: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    /// Mount point on the machine.
    mount: PathBuf,
    /// Mount point inside, relative to /sys/fs/cgroup (`.` for unified).
    inner_dir: String,
    fstype: &'static str,
    /// Mount options selecting this hierarchy (`cpu`, `none,name=systemd`).
    options: String,
    /// This process's cgroup in it, from /proc/self/cgroup.
    current: String,
}

impl Hierarchy {
    fn is_cpuset(&self) -> bool {
        self.fstype == "cgroup" && self.options.split(',').any(|o| o == "cpuset")
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl CgroupLayout {
    fn discover() -> Result<Self, SandboxError> {
        let mounts =
            fs::read_to_string("/proc/self/mounts").map_err(io_err("read", "/proc/self/mounts"))?;
        let cgroups =
            fs::read_to_string("/proc/self/cgroup").map_err(io_err("read", "/proc/self/cgroup"))?;
        let mut layout = Self::parse(&mounts, &cgroups)?;
        if layout.root_is_tmpfs {
            let entries = fs::read_dir(CGROUP_ROOT).map_err(io_err("list", CGROUP_ROOT))?;
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
                    if let (Some(name), Ok(target)) =
                        (entry.file_name().to_str(), fs::read_link(entry.path()))
                    {
                        if let Some(target) = target.to_str() {
                            layout.symlinks.push((name.to_owned(), target.to_owned()));
                        }
                    }
                }
            }
        }
        Ok(layout)
    }

    fn parse(mounts: &str, cgroups: &str) -> Result<Self, SandboxError> {
        let mounts = parse_mounts(mounts);
        let root = Path::new(CGROUP_ROOT);
        let root_is_tmpfs = match mounts.iter().rev().find(|m| m.mount_point == root) {
            Some(m) if m.fstype == "tmpfs" => true,
            Some(m) if m.fstype == "cgroup2" => false,
            Some(m) => {
                return Err(SandboxError::Cgroups(format!(
                    "{CGROUP_ROOT} is a {} mount, expected tmpfs or cgroup2",
                    m.fstype
                )))
            }
            None => {
                return Err(SandboxError::Cgroups(format!(
                    "nothing is mounted at {CGROUP_ROOT}"
                )))
            }
        };
        let mut hierarchies = Vec::new();
        for line in cgroups.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(current)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(SandboxError::Cgroups(format!(
                    "unexpected /proc/self/cgroup line {line:?}"
                )));
            };
            let hierarchy = if id == "0" && controllers.is_empty() {
                let Some(m) = mounts.iter().find(|m| {
                    m.fstype == "cgroup2"
                        && (m.mount_point == root || m.mount_point.parent() == Some(root))
                }) else {
                    debug!("cgroup2 hierarchy not mounted under {CGROUP_ROOT}, skipped");
                    continue;
                };
                Hierarchy {
                    mount: m.mount_point.clone(),
                    inner_dir: inner_dir(&m.mount_point, root)?,
                    fstype: "cgroup2",
                    options: String::new(),
                    current: current.to_owned(),
                }
            } else {
                let wanted: Vec<&str> = controllers.split(',').collect();
                let Some(m) = mounts.iter().find(|m| {
                    m.fstype == "cgroup"
                        && m.mount_point.parent() == Some(root)
                        && wanted.iter().all(|c| m.options.split(',').any(|o| o == *c))
                }) else {
                    // Not mounted (e.g. misc, rdma): systemd cannot use it either.
                    debug!(
                        controllers,
                        "cgroup hierarchy not mounted under {CGROUP_ROOT}, skipped"
                    );
                    continue;
                };
                let only_names = wanted.iter().all(|c| c.starts_with("name="));
                Hierarchy {
                    mount: m.mount_point.clone(),
                    inner_dir: inner_dir(&m.mount_point, root)?,
                    fstype: "cgroup",
                    options: if only_names {
                        format!("none,{controllers}")
                    } else {
                        controllers.to_owned()
                    },
                    current: current.to_owned(),
                }
            };
            if hierarchy.current.split('/').any(|c| c == "..") {
                return Err(SandboxError::Cgroups(format!(
                    "this process's cgroup {:?} in {} is outside its cgroup namespace",
                    hierarchy.current,
                    hierarchy.mount.display()
                )));
            }
            hierarchies.push(hierarchy);
        }
        if hierarchies.is_empty() {
            return Err(SandboxError::Cgroups(format!(
                "no cgroup hierarchy of /proc/self/cgroup is mounted under {CGROUP_ROOT}"
            )));
        }
        if !root_is_tmpfs && hierarchies.iter().any(|h| h.inner_dir != ".") {
            return Err(SandboxError::Cgroups(format!(
                "{CGROUP_ROOT} is cgroup2 but other hierarchies are mounted below it"
            )));
        }
        Ok(CgroupLayout {
            root_is_tmpfs,
            hierarchies,
            symlinks: Vec::new(),
        })
    }
}

fn inner_dir(mount_point: &Path, root: &Path) -> Result<String, SandboxError> {
    if mount_point == root {
        return Ok(".".to_owned());
    }
    mount_point
        .file_name()
        .and_then(OsStr::to_str)
        .map(str::to_owned)
        .ok_or_else(|| SandboxError::Cgroups(format!("odd mount point {}", mount_point.display())))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    fstype: String,
    options: String,
}

fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let _source = fields.next()?;
            let mount_point = unescape_mount_field(fields.next()?);
            let fstype = fields.next()?.to_owned();
            let options = fields.next()?.to_owned();
            Some(MountEntry {
                mount_point: PathBuf::from(mount_point),
                fstype,
                options,
            })
        })
        .collect()
}

/// /proc/self/mounts writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        let value = octal.map(|d| d.iter().fold(0u16, |acc, b| acc * 8 + u16::from(b - b'0')));
        if let (b'\\', Some(Ok(byte))) = (bytes[i], value.map(u8::try_from)) {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
3:cpuset:/
1:cpu:/
12:rdma:/
0::/
";

    #[test]
    fn parses_hybrid_layout() {
        let layout = CgroupLayout::parse(HYBRID_MOUNTS, HYBRID_CGROUP).expect("layout");
        assert!(layout.root_is_tmpfs);
        let summary: Vec<_> = layout
            .hierarchies
            .iter()
            .map(|h| {
                (
                    h.inner_dir.as_str(),
                    h.fstype,
                    h.options.as_str(),
                    h.current.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("systemd", "cgroup", "none,name=systemd", "/"),
                ("memory", "cgroup", "memory", "/process_api/abc"),
                ("cpuset", "cgroup", "cpuset", "/"),
                ("cpu", "cgroup", "cpu", "/"),
                ("unified", "cgroup2", "", "/"),
            ]
        );
        assert!(layout.hierarchies[2].is_cpuset());
    }

    #[test]
    fn parses_unified_layout() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        let layout = CgroupLayout::parse(mounts, "0::/user.slice/x.scope\n").expect("layout");
        assert!(!layout.root_is_tmpfs);
        assert_eq!(layout.hierarchies.len(), 1);
        assert_eq!(layout.hierarchies[0].inner_dir, ".");
        assert_eq!(layout.hierarchies[0].current, "/user.slice/x.scope");
    }

    #[test]
    fn rejects_cgroup_outside_namespace() {
        let err = CgroupLayout::parse(HYBRID_MOUNTS, "4:memory:/../x\n0::/\n");
        assert!(matches!(err, Err(SandboxError::Cgroups(_))));
    }

    #[test]
    fn parses_ppid_with_odd_comm() {
        assert_eq!(parse_ppid("123 (a) b (c)) S 42 1 1 0"), Some(42));
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape_mount_field(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mount_field(r"/end\04"), r"/end\04");
    }

    #[test]
    fn validates_names() {
        assert!(validate_name("a-1").is_ok());
        for bad in ["", "-a", "A", "a/b", "a.b", &"x".repeat(41)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validates_binds() {
        let ok = validate_binds(&[("/".into(), "/srv/x".into())]).expect("valid");
        assert_eq!(ok, vec![(PathBuf::from("/"), PathBuf::from("/srv/x"))]);
        for inside in ["/tmp/x", "/run", "srv", "/srv/../etc", "/", "/var/tmp/a"] {
            assert!(
                validate_binds(&[("/".into(), inside.into())]).is_err(),
                "{inside:?}"
            );
        }
        assert!(validate_binds(&[("/nonexistent-corral".into(), "/srv/x".into())]).is_err());
    }
}
