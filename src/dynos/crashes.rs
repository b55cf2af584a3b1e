//! Crash runs of formation dynos: deaths in a row per dyno slot, which decide its restart backoff; written through to the store so a restart of corrald keeps them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::plan::DesiredDyno;
use crate::model::{AppName, DynoName, ReleaseVersion};
use crate::state::CrashRecord;

/// A dyno that ran this long before dying was not crash-looping: its
/// count starts again at one.
pub(super) const STABLE_AFTER: Duration = Duration::from_secs(10 * 60);

/// The manager's copy of the crash runs on file.
#[derive(Debug, Default)]
pub(super) struct CrashRuns {
    runs: HashMap<(AppName, DynoName), CrashRecord>,
    loaded: bool,
}

impl CrashRuns {
    /// Whether the runs on file were read yet.
    pub(super) fn loaded(&self) -> bool {
        self.loaded
    }

    /// Takes the runs on file, once, when the manager starts.
    pub(super) fn load(&mut self, records: Vec<CrashRecord>) {
        for record in records {
            self.runs
                .insert((record.app.clone(), record.dyno.clone()), record);
        }
        self.loaded = true;
    }

    /// Counts the death of `unit` into its slot's run; `None` if that unit
    /// was counted already (by this process or before a restart). A dyno
    /// that had run [`STABLE_AFTER`] (or whose start is unknown) begins a
    /// new run. The result is what to write to the store.
    pub(super) fn count(
        &mut self,
        unit: &str,
        app: &AppName,
        dyno: &DynoName,
        release: ReleaseVersion,
        started_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<CrashRecord> {
        let key = (app.clone(), dyno.clone());
        if self.runs.get(&key).is_some_and(|r| r.last_unit == unit) {
            return None;
        }
        let stable = started_at.is_none_or(|t| elapsed(t, now) >= STABLE_AFTER);
        let count = match self.runs.get(&key) {
            Some(run) if !stable => run.count.saturating_add(1),
            _ => 1,
        };
        let record = CrashRecord {
            app: app.clone(),
            dyno: dyno.clone(),
            count,
            last_at: now,
            release,
            last_unit: unit.to_owned(),
        };
        self.runs.insert(key, record.clone());
        Some(record)
    }

    /// Deaths in a row and the time since the last, for the planner.
    pub(super) fn since(
        &self,
        app: &AppName,
        dyno: &DynoName,
        now: DateTime<Utc>,
    ) -> (u32, Duration) {
        self.runs
            .get(&(app.clone(), dyno.clone()))
            .map_or((0, Duration::ZERO), |r| (r.count, elapsed(r.last_at, now)))
    }

    /// Ends every run whose slot is no longer wanted or now runs another
    /// release: a new release starts every count afresh. Returns the
    /// slots ended, to forget in the store.
    pub(super) fn retain_current(&mut self, desired: &[DesiredDyno]) -> Vec<(AppName, DynoName)> {
        let mut ended = Vec::new();
        self.runs.retain(|(app, dyno), run| {
            let current = desired
                .iter()
                .any(|d| d.app == *app && d.dyno == *dyno && d.release == run.release);
            if !current {
                ended.push((app.clone(), dyno.clone()));
            }
            current
        });
        ended
    }
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}
