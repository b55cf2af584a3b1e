//! Runtime metrics like Heroku's `log-runtime-metrics`: every few seconds, each running dyno's memory and load as platform log lines, and R14 when it passes its soft memory limit.
//!
//! Memory comes from systemd (`MemoryCurrent`, `MemoryHigh`, `MemoryMax`)
//! and, for the split into RSS, cache, swap and paging counts, from the
//! unit's cgroup (see [`crate::systemd::UnitUsage`]). `memory_total` is
//! what the cgroup is charged, page cache included, as systemd reports it
//! (Heroku's is RSS plus swap); `memory_quota` is the dyno size.
//!
//! A dyno has no load average of its own: the kernel keeps one for the
//! whole host. So Corral derives one the way the kernel does, from what it
//! can measure per dyno: each sample turns the growth of `CPUUsageNSec`
//! since the last one into CPU cores kept busy on average over that span,
//! and folds it into exponentially decayed averages with time constants of
//! 1, 5 and 15 minutes (`avg = avg·e^(-Δt/τ) + busy·(1 - e^(-Δt/τ))`, the
//! kernel's formula for a sample period of Δt). The first sample of a dyno
//! takes its CPU time since it started as the busy figure, as if it had
//! been idle before. Unlike the kernel's, these figures count CPU time
//! used, not tasks waiting to run: a dyno starved of CPU shows less load,
//! not more, and one blocked on I/O shows none.
//!
//! R14 (memory quota exceeded) is logged when a dyno's memory passes its
//! soft limit (`MemoryHigh=`) while staying under the hard one, once per
//! crossing: it is logged again only after the dyno went back under the
//! soft limit. Memory here excludes inactive file cache, which the kernel
//! reclaims before it would let a dyno hit its limit. R14 is logged
//! whether or not an app turned its metric lines off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::manager::DynoError;
use crate::model::SizeTable;
use crate::state::SharedStore;
use crate::systemd::{Systemd, UnitUsage};

/// Bytes in one of the "MB" runtime metrics report (Heroku's are MiB).
const MB: f64 = 1024.0 * 1024.0;

/// The time constants of the three load averages, in seconds.
const LOAD_WINDOWS: [f64; 3] = [60.0, 300.0, 900.0];

/// Exponentially decayed averages of CPU cores kept busy over 1, 5 and 15
/// minutes (see the module's documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LoadAverage {
    /// `[1m, 5m, 15m]`.
    pub values: [f64; 3],
}

impl LoadAverage {
    /// Folds in `busy` cores, measured as an average over `span`.
    pub(crate) fn update(&mut self, busy: f64, span: Duration) {
        let dt = span.as_secs_f64();
        if dt <= 0.0 || !busy.is_finite() {
            return;
        }
        for (value, tau) in self.values.iter_mut().zip(LOAD_WINDOWS) {
            let decay = (-dt / tau).exp();
            *value = *value * decay + busy.max(0.0) * (1.0 - decay);
        }
    }
}

/// Cores kept busy on average: CPU time over wall time.
pub(crate) fn cores_busy(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    cpu.as_secs_f64() / wall.as_secs_f64()
}

/// Where a dyno's memory stands against its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryLevel {
    /// Under the soft limit, or no soft limit set.
    Under,
    /// Past the soft limit, under the hard one: R14 territory.
    OverSoft,
    /// At the hard limit (the kernel reclaims or kills now).
    AtHard,
}

impl MemoryLevel {
    /// The level of `used` bytes against `MemoryHigh=` and `MemoryMax=`.
    pub(crate) fn of(used: u64, high: Option<u64>, max: Option<u64>) -> Self {
        if max.is_some_and(|max| used >= max) {
            return Self::AtHard;
        }
        match high {
            Some(high) if used > high => Self::OverSoft,
            _ => Self::Under,
        }
    }
}

/// Edge detection for R14: whether a dyno was reported, so that it is
/// reported once per crossing of the soft limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QuotaWatch {
    reported: bool,
}

impl QuotaWatch {
    /// Takes a new level; whether to log R14 now.
    pub(crate) fn observe(&mut self, level: MemoryLevel) -> bool {
        match level {
            MemoryLevel::Under => {
                self.reported = false;
                false
            }
            // At the hard limit the kernel acts: not an R14, and not yet a
            // way back under either.
            MemoryLevel::AtHard => false,
            MemoryLevel::OverSoft if self.reported => false,
            MemoryLevel::OverSoft => {
                self.reported = true;
                true
            }
        }
    }
}

/// One sample of one dyno, as the lines report it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The app.
    pub app: String,
    /// `web.1`.
    pub dyno: String,
    /// `corral.<app-id>.<dyno-id>`: a distinct value for every start.
    pub instance: String,
    /// Its memory quota in bytes (the dyno size).
    pub quota: u64,
    /// What systemd says the dyno's cgroup is charged, in bytes.
    pub memory_total: Option<u64>,
    /// Anonymous memory in bytes.
    pub memory_rss: Option<u64>,
    /// Page cache in bytes.
    pub memory_cache: Option<u64>,
    /// Swap in bytes.
    pub memory_swap: Option<u64>,
    /// Pages charged (cgroup v1 only).
    pub pgpgin: Option<u64>,
    /// Pages uncharged (cgroup v1 only).
    pub pgpgout: Option<u64>,
    /// CPU time since the dyno started.
    pub cpu: Option<Duration>,
    /// The derived load averages.
    pub load: LoadAverage,
}

fn mb(bytes: u64) -> String {
    format!("{:.2}MB", bytes as f64 / MB)
}

impl Sample {
    /// The memory line, e.g. `source=web.1 dyno=corral.<app>.<dyno>
    /// sample#memory_total=21.00MB sample#memory_rss=21.22MB ...
    /// sample#memory_quota=512.00MB`; figures the host cannot give are left
    /// out rather than made up.
    pub(crate) fn memory_line(&self) -> String {
        let mut line = format!("source={} dyno={}", self.dyno, self.instance);
        for (name, value) in [
            ("memory_total", self.memory_total),
            ("memory_rss", self.memory_rss),
            ("memory_cache", self.memory_cache),
            ("memory_swap", self.memory_swap),
        ] {
            if let Some(bytes) = value {
                line.push_str(&format!(" sample#{name}={}", mb(bytes)));
            }
        }
        for (name, value) in [
            ("memory_pgpgin", self.pgpgin),
            ("memory_pgpgout", self.pgpgout),
        ] {
            if let Some(pages) = value {
                line.push_str(&format!(" sample#{name}={pages}pages"));
            }
        }
        line.push_str(&format!(" sample#memory_quota={}", mb(self.quota)));
        line
    }

    /// The load line: `source=web.1 dyno=... sample#load_avg_1m=0.00
    /// sample#load_avg_5m=0.00 sample#load_avg_15m=0.00`.
    pub(crate) fn load_line(&self) -> String {
        let [one, five, fifteen] = self.load.values;
        format!(
            "source={} dyno={} sample#load_avg_1m={one:.2} sample#load_avg_5m={five:.2} sample#load_avg_15m={fifteen:.2}",
            self.dyno, self.instance
        )
    }
}

/// Heroku's line before an R14: `Process running mem=493M(96.3%)`.
pub(crate) fn process_running_line(used: u64, quota: u64) -> String {
    let percent = if quota == 0 {
        0.0
    } else {
        used as f64 * 100.0 / quota as f64
    };
    format!(
        "Process running mem={}M({percent:.1}%)",
        used / (1024 * 1024)
    )
}

/// The R14 line.
pub(crate) const R14: &str = "Error R14 (Memory quota exceeded)";

/// A dyno's latest figures, for `ps` and the API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DynoFigures {
    /// The 1-minute load average (cores busy).
    pub load_avg_1m: f64,
}

/// What the sampler remembers of one running unit between samples.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    at_usec: u64,
    cpu_nsec: u64,
    load: LoadAverage,
    quota: QuotaWatch,
}

/// The call shape of the dyno manager's platform lines, which the journal
/// writer turns into entries with the app's and dyno's fields.
fn platform_log(app: &str, dyno: &str, message: &str) {
    tracing::info!(target: "corral::platform", app, dyno, "{message}");
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The runtime metrics sampler.
#[derive(Debug)]
pub(crate) struct RuntimeMetrics {
    store: SharedStore,
    systemd: Arc<Systemd>,
    /// Each dyno's memory quota, by its size.
    sizes: SizeTable,
    interval: Duration,
    tracked: Mutex<HashMap<String, Tracked>>,
}

impl RuntimeMetrics {
    /// A sampler that samples every `interval`.
    pub(crate) fn new(
        store: SharedStore,
        systemd: Arc<Systemd>,
        sizes: SizeTable,
        interval: Duration,
    ) -> Self {
        Self {
            store,
            systemd,
            sizes,
            interval,
            tracked: Mutex::default(),
        }
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest figures of a unit, if it was sampled.
    pub(crate) fn latest(&self, unit: &str) -> Option<DynoFigures> {
        self.tracked().get(unit).map(|t| DynoFigures {
            load_avg_1m: t.load.values[0],
        })
    }

    /// Samples every `interval` until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.sample_once().await {
                tracing::warn!(error = %e, "runtime metrics sample failed; trying again");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One pass: every running dyno's figures, logged (unless its app
    /// turned them off), R14 checked. Returns the samples taken.
    pub(crate) async fn sample_once(&self) -> Result<Vec<Sample>, DynoError> {
        let apps = self.store.list_apps().await?;
        let records = self.store.dyno_records().await?;
        let apps: HashMap<Uuid, (String, bool)> = apps
            .into_iter()
            .map(|a| {
                let on = a.settings.runtime_metrics != Some(false);
                (a.id, (a.name.to_string(), on))
            })
            .collect();
        let mut samples = Vec::new();
        let mut seen = Vec::new();
        for record in records {
            let Some((app, logged)) = apps.get(&record.app_id) else {
                continue;
            };
            let usage = match self.systemd.unit_usage(&record.unit).await {
                Ok(Some(usage)) if usage.active_state == "active" => usage,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(unit = %record.unit, error = %e, "cannot read a dyno's usage");
                    continue;
                }
            };
            seen.push(record.unit.clone());
            let quota = u64::from(self.sizes.memory_mb(&record.size)) * 1024 * 1024;
            let dyno = record.name.to_string();
            let instance = format!("corral.{}.{}", record.app_id, super::dyno_id(&record.unit));
            let (sample, r14) = self.observe(&record.unit, &usage, now_usec(), quota);
            let sample = Sample {
                app: app.clone(),
                dyno,
                instance,
                ..sample
            };
            if *logged {
                platform_log(app, &sample.dyno, &sample.memory_line());
                platform_log(app, &sample.dyno, &sample.load_line());
            }
            if let Some(used) = r14 {
                platform_log(app, &sample.dyno, &process_running_line(used, quota));
                platform_log(app, &sample.dyno, R14);
            }
            samples.push(sample);
        }
        self.tracked().retain(|unit, _| seen.contains(unit));
        Ok(samples)
    }

    /// Folds one reading of `unit` at `now` into what is remembered of it:
    /// its sample (without names), and the memory in use if R14 is due.
    fn observe(
        &self,
        unit: &str,
        usage: &UnitUsage,
        now: u64,
        quota: u64,
    ) -> (Sample, Option<u64>) {
        let mut tracked = self.tracked();
        let entry = tracked.entry(unit.to_owned()).or_insert(Tracked {
            // Seen for the first time: its CPU time since it started.
            at_usec: usage.active_enter_timestamp_usec.min(now),
            cpu_nsec: 0,
            load: LoadAverage::default(),
            quota: QuotaWatch::default(),
        });
        if let Some(cpu) = usage.cpu_usage_nsec {
            let wall = Duration::from_micros(now.saturating_sub(entry.at_usec));
            let used = Duration::from_nanos(cpu.saturating_sub(entry.cpu_nsec));
            entry.load.update(cores_busy(used, wall), wall);
            entry.at_usec = now;
            entry.cpu_nsec = cpu;
        }
        let stat = usage.stat.unwrap_or_default();
        let working_set = usage
            .memory_current
            .map(|m| m.saturating_sub(stat.inactive_file.unwrap_or(0)));
        let r14 = working_set.filter(|used| {
            entry
                .quota
                .observe(MemoryLevel::of(*used, usage.memory_high, usage.memory_max))
        });
        let sample = Sample {
            app: String::new(),
            dyno: String::new(),
            instance: String::new(),
            quota,
            memory_total: usage.memory_current,
            memory_rss: stat.rss,
            memory_cache: stat.cache,
            memory_swap: stat.swap,
            pgpgin: stat.pgpgin,
            pgpgout: stat.pgpgout,
            cpu: usage.cpu_usage_nsec.map(Duration::from_nanos),
            load: entry.load,
        };
        (sample, r14)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::MemoryStat;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn lines_look_like_herokus() {
        let sample = Sample {
            app: "demo".into(),
            dyno: "web.1".into(),
            instance: "corral.a1.d1".into(),
            quota: 512 * MIB,
            memory_total: Some(22_020_096),
            memory_rss: Some(22_251_274),
            memory_cache: Some(0),
            memory_swap: Some(0),
            pgpgin: Some(348_836),
            pgpgout: Some(343_403),
            cpu: None,
            load: LoadAverage {
                values: [2.456, 1.06, 0.994],
            },
        };
        assert_eq!(
            sample.memory_line(),
            "source=web.1 dyno=corral.a1.d1 sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"
        );
        assert_eq!(
            sample.load_line(),
            "source=web.1 dyno=corral.a1.d1 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99"
        );
        let v2 = Sample {
            pgpgin: None,
            pgpgout: None,
            ..sample
        };
        assert!(
            !v2.memory_line().contains("pgpg"),
            "unknown figures are left out"
        );
        assert_eq!(
            process_running_line(493 * MIB, 512 * MIB),
            "Process running mem=493M(96.3%)"
        );
    }

    #[test]
    fn load_averages_follow_the_kernels_formula() {
        let mut load = LoadAverage::default();
        // One core busy for a minute: the 1m average reaches 1 - 1/e.
        load.update(1.0, Duration::from_secs(60));
        let expected = 1.0 - (-1.0f64).exp();
        assert!((load.values[0] - expected).abs() < 1e-9, "{load:?}");
        assert!(load.values[1] < load.values[0] && load.values[2] < load.values[1]);
        // Three 20 s steps equal one 60 s step.
        let mut stepped = LoadAverage::default();
        for _ in 0..3 {
            stepped.update(1.0, Duration::from_secs(20));
        }
        for (a, b) in stepped.values.iter().zip(load.values) {
            assert!((a - b).abs() < 1e-9);
        }
        // Idle time decays it; a long busy stretch converges to the cores busy.
        let mut busy = LoadAverage::default();
        busy.update(2.0, Duration::from_secs(3600 * 10));
        assert!((busy.values[2] - 2.0).abs() < 1e-6);
        busy.update(0.0, Duration::from_secs(60));
        assert!((busy.values[0] - 2.0 * (-1.0f64).exp()).abs() < 1e-9);
        // A zero span changes nothing.
        let before = busy;
        busy.update(5.0, Duration::ZERO);
        assert_eq!(busy, before);
        assert_eq!(
            cores_busy(Duration::from_secs(10), Duration::from_secs(20)),
            0.5
        );
        assert_eq!(cores_busy(Duration::from_secs(1), Duration::ZERO), 0.0);
    }

    #[test]
    fn r14_is_logged_once_per_crossing() {
        let (high, max) = (Some(480 * MIB), Some(512 * MIB));
        let level = |mib: u64| MemoryLevel::of(mib * MIB, high, max);
        assert_eq!(level(100), MemoryLevel::Under);
        assert_eq!(
            level(480),
            MemoryLevel::Under,
            "at the limit is not past it"
        );
        assert_eq!(level(481), MemoryLevel::OverSoft);
        assert_eq!(level(512), MemoryLevel::AtHard);
        assert_eq!(
            MemoryLevel::of(u64::MAX - 1, None, None),
            MemoryLevel::Under,
            "no soft limit, no R14"
        );
        let mut watch = QuotaWatch::default();
        let seen: Vec<bool> = [100, 490, 495, 500, 512, 490, 100, 490]
            .into_iter()
            .map(|mib| watch.observe(level(mib)))
            .collect();
        assert_eq!(
            seen,
            [false, true, false, false, false, false, false, true],
            "once on the way up, again only after going back under"
        );
        let mut straight_to_hard = QuotaWatch::default();
        assert!(!straight_to_hard.observe(level(512)));
        assert!(straight_to_hard.observe(level(500)));
    }

    #[tokio::test]
    async fn the_first_sample_counts_cpu_since_the_start() {
        let store = crate::state::SqliteStore::open_in_memory().expect("store");
        let sampler = RuntimeMetrics::new(
            store.shared(),
            Arc::new(Systemd::new()),
            SizeTable::default(),
            Duration::from_secs(20),
        );
        let start = 1_000_000_000u64;
        let usage = UnitUsage {
            active_state: "active".into(),
            active_enter_timestamp_usec: start,
            memory_current: Some(500 * MIB),
            cpu_usage_nsec: Some(30_000_000_000),
            memory_high: Some(480 * MIB),
            memory_max: Some(512 * MIB),
            stat: Some(MemoryStat {
                rss: Some(400 * MIB),
                cache: Some(100 * MIB),
                inactive_file: Some(10 * MIB),
                ..MemoryStat::default()
            }),
        };
        // 30 s of CPU over the 60 s since the start: half a core.
        let (sample, r14) = sampler.observe("u", &usage, start + 60_000_000, 512 * MIB);
        let expected = 0.5 * (1.0 - (-1.0f64).exp());
        assert!((sample.load.values[0] - expected).abs() < 1e-9);
        assert_eq!(r14, Some(490 * MIB), "inactive file cache does not count");
        assert_eq!(sample.memory_total, Some(500 * MIB));
        // 20 s later with no more CPU: decayed, and no second R14.
        let (later, r14) = sampler.observe("u", &usage, start + 80_000_000, 512 * MIB);
        assert!(later.load.values[0] < sample.load.values[0]);
        assert_eq!(r14, None);
        assert!(
            (sampler.latest("u").expect("tracked").load_avg_1m - later.load.values[0]).abs()
                < 1e-12
        );
    }
}
