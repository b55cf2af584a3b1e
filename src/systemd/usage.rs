//! A running unit's resource usage: systemd's D-Bus figures, plus the split of memory from its cgroup's `memory.stat`.
//!
//! systemd reports what a cgroup is charged (`MemoryCurrent`), its CPU
//! time (`CPUUsageNSec`) and its limits (`MemoryHigh`, `MemoryMax`) on
//! cgroup v1 and v2 alike. It has no property for the split of that memory
//! into anonymous memory (RSS), page cache and swap, nor for paging counts,
//! so those are read from `memory.stat` in the unit's own cgroup
//! (`ControlGroup`), whose field names differ between the two versions.
//! This is the one place that knows those paths and names. Where systemd
//! has no CPU time for a unit (cgroup v1 with `cpu` and `cpuacct` mounted
//! apart, as on the development machines), it is read from the cgroup too.

use std::path::{Path, PathBuf};

use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use super::proxies::{ServiceProxy, UnitProxy};
use super::{Bus, Systemd, SystemdError};

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What a running unit uses, and may use, now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnitUsage {
    /// `active`, `activating`, ...
    pub active_state: String,
    /// When it last became active, µs since the epoch (0: never).
    pub active_enter_timestamp_usec: u64,
    /// Bytes charged to its cgroup (`MemoryCurrent`), when known.
    pub memory_current: Option<u64>,
    /// CPU time of its cgroup in ns (`CPUUsageNSec`), when known.
    pub cpu_usage_nsec: Option<u64>,
    /// Its soft limit (`MemoryHigh=`), when set.
    pub memory_high: Option<u64>,
    /// Its hard limit (`MemoryMax=`), when set.
    pub memory_max: Option<u64>,
    /// The split of its memory, when its cgroup could be read.
    pub stat: Option<MemoryStat>,
}

/// The fields of a cgroup's `memory.stat` that runtime metrics report.
/// Counters the running kernel does not offer stay `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemoryStat {
    /// Anonymous memory in bytes (v1 `total_rss`, v2 `anon`).
    pub rss: Option<u64>,
    /// Page cache in bytes, tmpfs included (v1 `total_cache`, v2 `file`).
    pub cache: Option<u64>,
    /// Swap in bytes (v1 `total_swap`; v2 reads `memory.swap.current`).
    pub swap: Option<u64>,
    /// File cache the kernel would reclaim first (`inactive_file`): memory
    /// that counts against the cgroup but is not really held.
    pub inactive_file: Option<u64>,
    /// Pages charged to the cgroup (v1 `total_pgpgin`; not on v2).
    pub pgpgin: Option<u64>,
    /// Pages uncharged from the cgroup (v1 `total_pgpgout`; not on v2).
    pub pgpgout: Option<u64>,
}

impl MemoryStat {
    /// Parses `memory.stat` of cgroup v1 (`v2 == false`), where the
    /// `total_*` fields include child cgroups, or of cgroup v2, where every
    /// field is hierarchical already.
    pub(crate) fn parse(text: &str, v2: bool) -> Self {
        let field = |name: &str| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == name).then(|| value.trim().parse().ok()).flatten()
            })
        };
        if v2 {
            Self {
                rss: field("anon"),
                cache: field("file"),
                swap: None,
                inactive_file: field("inactive_file"),
                pgpgin: None,
                pgpgout: None,
            }
        } else {
            Self {
                rss: field("total_rss"),
                cache: field("total_cache"),
                swap: field("total_swap"),
                inactive_file: field("total_inactive_file"),
                pgpgin: field("total_pgpgin"),
                pgpgout: field("total_pgpgout"),
            }
        }
    }
}

/// The directory of a unit's memory cgroup: the unified hierarchy on v2,
/// the `memory` controller's hierarchy on v1 (also in a hybrid layout).
pub(super) fn memory_cgroup_dir(root: &Path, control_group: &str, v2: bool) -> PathBuf {
    let relative = control_group.trim_start_matches('/');
    if v2 {
        root.join(relative)
    } else {
        root.join("memory").join(relative)
    }
}

/// Reads `memory.stat` (and on v2 `memory.swap.current`) of a cgroup;
/// `None` when the files cannot be read (the unit just stopped).
async fn read_memory_stat(dir: PathBuf, v2: bool) -> Option<MemoryStat> {
    let text = tokio::fs::read_to_string(dir.join("memory.stat"))
        .await
        .ok()?;
    let mut stat = MemoryStat::parse(&text, v2);
    if v2 {
        stat.swap = tokio::fs::read_to_string(dir.join("memory.swap.current"))
            .await
            .ok()
            .and_then(|s| s.trim().parse().ok());
    }
    Some(stat)
}

/// The kernel's unit of the times in `/proc/<pid>/stat` (`USER_HZ`, 100 on
/// every Linux ABI).
const USER_HZ: u64 = 100;

/// CPU time in ns from a `/proc/<pid>/stat` line: the process's user and
/// system time plus that of its children it has waited for (`utime`,
/// `stime`, `cutime`, `cstime`), so the time of exited children counts.
pub(super) fn proc_stat_cpu_nsec(line: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start
    // after its last `)`, with the state (field 3) first.
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<i64>().ok().map(|t| t.max(0).unsigned_abs()))
        .sum::<Option<u64>>()?;
    Some(ticks * (1_000_000_000 / USER_HZ))
}

/// CPU time of a cgroup v1 unit when systemd has none (its cpuacct
/// controller is not realized, as on hosts that mount `cpu` and `cpuacct`
/// apart): `cpuacct.usage` where the hierarchy has the unit, else the sum
/// over its processes in `/proc` (which misses children that exited
/// without being waited for).
async fn v1_cpu_nsec(root: &Path, control_group: &str) -> Option<u64> {
    let relative = control_group.trim_start_matches('/');
    for hierarchy in ["cpuacct", "cpu,cpuacct"] {
        let file = root.join(hierarchy).join(relative).join("cpuacct.usage");
        if let Ok(text) = tokio::fs::read_to_string(file).await {
            if let Ok(ns) = text.trim().parse() {
                return Some(ns);
            }
        }
    }
    let procs = root.join("memory").join(relative).join("cgroup.procs");
    let pids = tokio::fs::read_to_string(procs).await.ok()?;
    let mut total = 0u64;
    for pid in pids.lines().filter(|p| !p.is_empty()) {
        if let Ok(line) = tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
            total += proc_stat_cpu_nsec(&line).unwrap_or(0);
        }
    }
    Some(total)
}

impl Systemd {
    /// The usage and limits of a loaded service; `None` if it is not
    /// loaded. `name` must be a `.service`.
    pub(crate) async fn unit_usage(&self, name: &str) -> Result<Option<UnitUsage>, SystemdError> {
        let Some(path) = self.loaded_unit(name).await? else {
            return Ok(None);
        };
        let read = self
            .dbus_call("Get(unit usage)", |bus| read_usage(bus, path))
            .await?;
        let Some((mut usage, control_group)) = read else {
            return Ok(None);
        };
        if !control_group.is_empty() {
            let v2 = self.cgroup_v2();
            let dir = memory_cgroup_dir(Path::new(CGROUP_ROOT), &control_group, v2);
            usage.stat = read_memory_stat(dir, v2).await;
            if usage.cpu_usage_nsec.is_none() && !v2 {
                usage.cpu_usage_nsec = v1_cpu_nsec(Path::new(CGROUP_ROOT), &control_group).await;
            }
        }
        Ok(Some(usage))
    }
}

/// Reads a service's usage properties at `path`, all requests in flight at
/// once; also its cgroup path.
async fn read_usage(bus: Bus, path: OwnedObjectPath) -> zbus::Result<Option<(UnitUsage, String)>> {
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
    let (load_state, active_state, since) = tokio::try_join!(
        unit.load_state(),
        unit.active_state(),
        unit.active_enter_timestamp()
    )?;
    if load_state == "not-found" {
        return Ok(None);
    }
    let (memory, cpu, high, max, control_group) = tokio::try_join!(
        service.memory_current(),
        service.cpu_usage_nsec(),
        service.memory_high(),
        service.memory_max(),
        service.control_group()
    )?;
    let known = |v: u64| (v != u64::MAX).then_some(v);
    Ok(Some((
        UnitUsage {
            active_state,
            active_enter_timestamp_usec: since,
            memory_current: known(memory),
            cpu_usage_nsec: known(cpu),
            memory_high: known(high),
            memory_max: known(max),
            stat: None,
        },
        control_group,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat_reads_both_cgroup_versions() {
        let v1 = "cache 4096\nrss 8192\ntotal_cache 1048576\ntotal_rss 104857600\ntotal_swap 0\ntotal_pgpgin 348836\ntotal_pgpgout 343403\ntotal_inactive_file 524288\n";
        let stat = MemoryStat::parse(v1, false);
        assert_eq!(stat.rss, Some(104_857_600), "total_, not the cgroup's own");
        assert_eq!(stat.cache, Some(1_048_576));
        assert_eq!(stat.swap, Some(0));
        assert_eq!((stat.pgpgin, stat.pgpgout), (Some(348_836), Some(343_403)));
        assert_eq!(stat.inactive_file, Some(524_288));

        let v2 =
            "anon 104857600\nfile 2097152\nkernel 1000\nshmem 0\ninactive_file 4096\npgfault 10\n";
        let stat = MemoryStat::parse(v2, true);
        assert_eq!(stat.rss, Some(104_857_600));
        assert_eq!(stat.cache, Some(2_097_152));
        assert_eq!(stat.inactive_file, Some(4096));
        assert_eq!(stat.pgpgin, None, "v2 has no paging counters");
        assert_eq!(MemoryStat::parse("", true), MemoryStat::default());
    }

    #[test]
    fn proc_stat_gives_cpu_time_with_waited_children() {
        let line = "4242 (py (thon) 3) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 50 7 3 20 0 1 0 100 1000 200";
        // (150 + 50 + 7 + 3) ticks of 10 ms.
        assert_eq!(proc_stat_cpu_nsec(line), Some(2_100_000_000));
        assert_eq!(proc_stat_cpu_nsec("4242 (x) S 1"), None);
    }

    #[test]
    fn cgroup_dirs_follow_the_layout() {
        let root = Path::new("/sys/fs/cgroup");
        let cg = "/corral.slice/corral-demo.slice/corral-demo-web.1@1.service";
        assert_eq!(
            memory_cgroup_dir(root, cg, true),
            Path::new("/sys/fs/cgroup/corral.slice/corral-demo.slice/corral-demo-web.1@1.service")
        );
        assert_eq!(
            memory_cgroup_dir(root, cg, false),
            Path::new(
                "/sys/fs/cgroup/memory/corral.slice/corral-demo.slice/corral-demo-web.1@1.service"
            )
        );
    }
}
