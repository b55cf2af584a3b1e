//! Crash runs of formation dynos, kept so a restart of corrald keeps each dyno's restart backoff.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::StoreError;
use crate::model::{AppName, DynoName, ReleaseVersion};

/// How often a formation dyno died in a row, and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CrashRecord {
    /// The app, by name (a run ends with the app's next release anyway).
    pub app: AppName,
    /// The dyno slot, `web.1`.
    pub dyno: DynoName,
    /// Deaths in a row; 1 after a death that followed a stable run.
    pub count: u32,
    /// When the last death was seen.
    pub last_at: DateTime<Utc>,
    /// The release the dyno ran when it died: a new release starts afresh.
    pub release: ReleaseVersion,
    /// The unit whose death was counted last, so a restart of corrald
    /// does not count the same dead unit twice.
    pub last_unit: String,
}

/// Every crash run on file.
pub(super) fn dyno_crashes(conn: &mut Connection) -> Result<Vec<CrashRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT app, dyno, count, last_at, release_version, last_unit FROM dyno_crashes \
         ORDER BY app, dyno",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
            r.get::<_, DateTime<Utc>>(3)?,
            r.get::<_, u32>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("dyno_crashes {what}: {e}"))
    };
    let mut found = Vec::new();
    for row in rows {
        let (app, dyno, count, last_at, release, last_unit) = row?;
        found.push(CrashRecord {
            app: AppName::parse(&app).map_err(|e| corrupt("app", &e))?,
            dyno: DynoName::parse(&dyno).map_err(|e| corrupt("dyno", &e))?,
            count,
            last_at,
            release: ReleaseVersion(release),
            last_unit,
        });
    }
    Ok(found)
}

/// Records (or replaces) a dyno's crash run.
pub(super) fn record_crash(conn: &mut Connection, crash: &CrashRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO dyno_crashes (app, dyno, count, last_at, release_version, last_unit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (app, dyno)
         DO UPDATE SET count = ?3, last_at = ?4, release_version = ?5, last_unit = ?6",
        params![
            crash.app.as_str(),
            crash.dyno.to_string(),
            crash.count,
            crash.last_at,
            crash.release.0,
            crash.last_unit
        ],
    )?;
    Ok(())
}

/// Ends the crash runs of these dyno slots, in one transaction.
pub(super) fn forget_crashes(
    conn: &mut Connection,
    slots: &[(AppName, DynoName)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for (app, dyno) in slots {
        tx.execute(
            "DELETE FROM dyno_crashes WHERE app = ?1 AND dyno = ?2",
            params![app.as_str(), dyno.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(())
}
