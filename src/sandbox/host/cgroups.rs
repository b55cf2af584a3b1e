//! The machine's cgroup hierarchies: finding them, and emptying and removing the host's child cgroups.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::debug;

use super::{io_err, SandboxError, CGROUP_RMDIR_TIMEOUT, POLL};

/// SIGKILLs whatever is still in the cgroup trees until they are empty.
pub(super) fn kill_cgroup_members(tops: &[PathBuf], timeout: Duration) -> Result<(), String> {
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

/// rmdir of `top` and every cgroup systemd made below it, deepest first,
/// retried while the kernel still counts dying tasks.
pub(super) fn remove_cgroup_tree(top: &Path) -> Result<(), String> {
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

/// The machine's cgroup hierarchies as this process sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupLayout {
    /// Whether /sys/fs/cgroup is a tmpfs holding one mount per hierarchy
    /// (v1 or hybrid), rather than a cgroup2 mount itself (unified).
    pub(super) root_is_tmpfs: bool,
    pub(super) hierarchies: Vec<Hierarchy>,
    /// Symlinks in /sys/fs/cgroup, such as `cpu -> cpu,cpuacct`.
    pub(super) symlinks: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hierarchy {
    /// Mount point on the machine.
    pub(super) mount: PathBuf,
    /// Mount point inside, relative to /sys/fs/cgroup (`.` for unified).
    pub(super) inner_dir: String,
    pub(super) fstype: &'static str,
    /// Mount options selecting this hierarchy (`cpu`, `none,name=systemd`).
    pub(super) options: String,
    /// This process's cgroup in it, from /proc/self/cgroup.
    pub(super) current: String,
}

impl Hierarchy {
    pub(super) fn is_cpuset(&self) -> bool {
        self.fstype == "cgroup" && self.options.split(',').any(|o| o == "cpuset")
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl CgroupLayout {
    pub(super) fn discover() -> Result<Self, SandboxError> {
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
pub(super) struct MountEntry {
    pub(super) mount_point: PathBuf,
    pub(super) fstype: String,
    pub(super) options: String,
}

pub(super) fn parse_mounts(text: &str) -> Vec<MountEntry> {
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
    fn unescapes_mount_points() {
        assert_eq!(unescape_mount_field(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mount_field(r"/end\04"), r"/end\04");
    }
}
