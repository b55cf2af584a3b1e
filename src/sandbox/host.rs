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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};
use tracing::{debug, info, warn};

mod cgroups;
mod error;
mod process;
mod scripts;

use cgroups::{kill_cgroup_members, parse_mounts, remove_cgroup_tree, CgroupLayout};
use error::io_err;
pub use error::SandboxError;
use process::{find_child_of, run_bounded, wait_exit, Programs};
use scripts::{
    CONTAINER_ID, ENTER_CGROUPS_SCRIPT, INIT_SCRIPT, JOURNALD_CONF_TEXT, MASKED_UNITS,
    SYSTEM_CONF_TEXT, TARGET_UNIT, TARGET_UNIT_TEXT,
};

/// Where the per-host scratch directories live. `/run` rather than `/tmp`
/// keeps them clear of anything that cleans `/tmp`; each host removes its own.
pub const SCRATCH_ROOT: &str = "/run/corral-sandbox";

/// Prefix of the child cgroup directory made in every hierarchy.
pub const CGROUP_PREFIX: &str = "corral-sandbox-";

const SYSTEMD: &str = "/usr/lib/systemd/systemd";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const CGROUP_RMDIR_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
const MAX_NAME_LEN: usize = 40;

/// Inner paths a bind may not target: they are fresh filesystems (the bind
/// would be hidden or refused) or emptied by systemd-tmpfiles at boot, which
/// would wipe the outside directory through the bind.
const FORBIDDEN_BIND_PREFIXES: &[&str] = &["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp"];

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

#[cfg(test)]
mod tests {
    use super::*;

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
