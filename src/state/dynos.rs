//! Dyno records and the desired formation, for the dyno manager.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{current_release, now, records, StoreError};
use crate::model::{
    AppName, AppSettings, ConfigVars, DynoName, DynoSize, ProcessType, Quantity, ReleaseVersion,
    SlugDigest,
};

/// What one app should run: its current release and formation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredApp {
    /// The app's id.
    pub app_id: Uuid,
    /// The app.
    pub app: AppName,
    /// The current release.
    pub release: ReleaseVersion,
    /// The release's id.
    pub release_id: Uuid,
    /// The release's slug.
    pub slug: SlugDigest,
    /// The release's commands.
    pub process_types: BTreeMap<ProcessType, String>,
    /// The release's config vars.
    pub config: ConfigVars,
    /// Quantity and size by process type (only types the release declares).
    pub formation: Vec<(ProcessType, Quantity, DynoSize)>,
    /// The app's settings (its boot timeout, ...).
    pub settings: AppSettings,
}

/// A dyno corrald started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DynoRecord {
    /// The systemd unit.
    pub unit: String,
    /// The app's id.
    pub app_id: Uuid,
    /// `web.1`.
    pub name: DynoName,
    /// The release it runs.
    pub release: ReleaseVersion,
    /// Its size.
    pub size: DynoSize,
    /// `$PORT` of a web dyno.
    pub port: Option<u16>,
    /// The command it runs.
    pub command: String,
    /// When it was started.
    pub started_at: DateTime<Utc>,
}

/// Every app whose current release has code, with what it should run.
pub(super) fn desired_apps(conn: &mut Connection) -> Result<Vec<DesiredApp>, StoreError> {
    let apps = super::list_apps(conn)?;
    let mut desired = Vec::new();
    for app in apps {
        let Some(release) = current_release(conn, &app)? else {
            continue;
        };
        let Some(slug) = super::slugs::release_slug_digest(conn, &release)? else {
            continue;
        };
        let formation = super::read_formation(conn, &app)?
            .into_iter()
            .filter(|f| release.process_types.contains_key(&f.process_type))
            .map(|f| (f.process_type, f.quantity, f.size))
            .collect();
        desired.push(DesiredApp {
            app_id: app.id,
            app: app.name.clone(),
            release: release.version,
            release_id: release.id,
            slug,
            process_types: release.process_types,
            config: release.config,
            formation,
            settings: app.settings.clone(),
        });
    }
    Ok(desired)
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<DynoRecord, StoreError>> {
    let unit: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let name: String = r.get(2)?;
    let release: u32 = r.get(3)?;
    let size: String = r.get(4)?;
    let port: Option<u16> = r.get(5)?;
    let command: String = r.get(6)?;
    let started_at: DateTime<Utc> = r.get(7)?;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    Ok((|| {
        Ok(DynoRecord {
            unit,
            app_id: Uuid::parse_str(&app_id).map_err(|e| corrupt("app id", &e))?,
            name: DynoName::parse(&name).map_err(|e| corrupt("dyno name", &e))?,
            release: ReleaseVersion(release),
            size: DynoSize::stored(&size).map_err(|e| corrupt("dyno size", &e))?,
            port,
            command,
            started_at,
        })
    })())
}

const RECORD_SELECT: &str =
    "SELECT unit, app_id, name, release_version, size, port, command, started_at FROM dynos";

/// Every dyno record, or those of one app.
pub(super) fn dyno_records(
    conn: &mut Connection,
    app: Option<&records::App>,
) -> Result<Vec<DynoRecord>, StoreError> {
    let (sql, key) = match app {
        Some(app) => (
            format!("{RECORD_SELECT} WHERE app_id = ?1 ORDER BY name, started_at"),
            app.id.to_string(),
        ),
        None => (
            format!("{RECORD_SELECT} WHERE ?1 = ?1 ORDER BY unit"),
            String::new(),
        ),
    };
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![key], record_from_row)?;
    rows.map(|r| r?).collect()
}

/// Records (or replaces) the dyno corrald just started.
pub(super) fn record_dyno(conn: &mut Connection, record: &DynoRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO dynos (unit, app_id, name, release_version, size, port, command, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (unit) DO UPDATE SET release_version = ?4, size = ?5, port = ?6, command = ?7, started_at = ?8",
        params![
            record.unit,
            record.app_id.to_string(),
            record.name.to_string(),
            record.release.0,
            record.size.as_str(),
            record.port,
            record.command,
            record.started_at
        ],
    )?;
    Ok(())
}

/// Forgets a dyno that was stopped for good.
pub(super) fn forget_dyno(conn: &mut Connection, unit: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM dynos WHERE unit = ?1", params![unit])?;
    Ok(())
}

/// The dyno records of one app, by app reference.
pub(super) fn app_dynos(
    conn: &mut Connection,
    app: &super::AppRef,
) -> Result<(records::App, Vec<DynoRecord>), StoreError> {
    let found = super::find_app(conn, app)?;
    let records = dyno_records(conn, Some(&found))?;
    Ok((found, records))
}

/// The ports recorded dynos have.
pub(super) fn recorded_ports(
    conn: &mut Connection,
) -> Result<std::collections::HashSet<u16>, StoreError> {
    let mut stmt = conn.prepare("SELECT port FROM dynos WHERE port IS NOT NULL")?;
    let used = stmt
        .query_map([], |r| r.get::<_, u16>(0))?
        .collect::<Result<_, _>>()?;
    Ok(used)
}

/// Keeps `now` in use for callers that stamp records.
pub(crate) fn timestamp() -> DateTime<Utc> {
    now()
}
