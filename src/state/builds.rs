//! Builds from `git push`, an app's buildpacks, and the release phase's outcome.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::{
    find_app, find_release, now, read_config, records, write_config, Account, AppRef, Release,
    ReleaseRef, ReleaseStatus, StoreError,
};
use crate::model::{AppName, ConfigVarName, InvalidValue, ReleaseVersion};

/// The most buildpacks an app may set (Heroku allows a handful; a chain
/// longer than this is a mistake).
pub(crate) const MAX_BUILDPACKS: usize = 16;

/// A build's state, in Heroku's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuildStatus {
    /// Running.
    Pending,
    /// It made a slug and a release.
    Succeeded,
    /// It did not; the running release is untouched.
    Failed,
}

impl BuildStatus {
    /// Heroku's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("build status {other:?}"))),
        }
    }
}

/// One build of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Build {
    /// Stable id.
    pub id: Uuid,
    /// The app.
    pub app_id: Uuid,
    /// The app's name when read.
    pub app_name: AppName,
    /// State.
    pub status: BuildStatus,
    /// The commit built.
    pub source_version: String,
    /// The buildpacks that ran, by URL or name.
    pub buildpacks: Vec<String>,
    /// The slug it made.
    pub slug_id: Option<Uuid>,
    /// The release it made.
    pub release: Option<ReleaseVersion>,
    /// That release's id.
    pub release_id: Option<Uuid>,
    /// Who pushed.
    pub user_id: Uuid,
    /// Their email.
    pub user_email: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const BUILD_SELECT: &str = "SELECT b.id, a.name, b.status, b.source_version, b.buildpacks_json, \
     b.slug_id, b.release_version, b.user_id, b.user_email, b.created_at, b.updated_at, \
     (SELECT r.id FROM releases r WHERE r.app_id = b.app_id AND r.version = b.release_version), \
     b.app_id \
     FROM builds b JOIN apps a ON a.id = b.app_id";

fn build_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Build, StoreError>> {
    let id: String = r.get(0)?;
    let app: String = r.get(1)?;
    let status: String = r.get(2)?;
    let source_version: String = r.get(3)?;
    let buildpacks: String = r.get(4)?;
    let slug_id: Option<String> = r.get(5)?;
    let release: Option<u32> = r.get(6)?;
    let user_id: String = r.get(7)?;
    let user_email: String = r.get(8)?;
    let created_at: DateTime<Utc> = r.get(9)?;
    let updated_at: DateTime<Utc> = r.get(10)?;
    let release_id: Option<String> = r.get(11)?;
    let app_id: String = r.get(12)?;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    Ok((|| {
        Ok(Build {
            id: Uuid::parse_str(&id).map_err(|e| corrupt("build id", &e))?,
            app_id: Uuid::parse_str(&app_id).map_err(|e| corrupt("app id", &e))?,
            app_name: AppName::parse(&app).map_err(|e| corrupt("app name", &e))?,
            status: BuildStatus::parse(&status)?,
            source_version,
            buildpacks: serde_json::from_str(&buildpacks)
                .map_err(|e| corrupt("build buildpacks", &e))?,
            slug_id: slug_id
                .map(|s| Uuid::parse_str(&s).map_err(|e| corrupt("slug id", &e)))
                .transpose()?,
            release: release.map(ReleaseVersion),
            release_id: release_id
                .map(|s| Uuid::parse_str(&s).map_err(|e| corrupt("release id", &e)))
                .transpose()?,
            user_id: Uuid::parse_str(&user_id).map_err(|e| corrupt("user id", &e))?,
            user_email,
            created_at,
            updated_at,
        })
    })())
}

/// The buildpacks an app has set, in order; empty means "detect".
pub(super) fn get_buildpacks(conn: &Connection, app: &AppRef) -> Result<Vec<String>, StoreError> {
    let found = find_app(conn, app)?;
    let json: String = conn.query_row(
        "SELECT buildpacks_json FROM apps WHERE id = ?1",
        params![found.id.to_string()],
        |r| r.get(0),
    )?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("buildpacks: {e}")))
}

/// Replaces an app's buildpacks (Heroku's `PUT buildpack-installations`).
/// The caller checked each entry's form.
pub(super) fn set_buildpacks(
    conn: &mut Connection,
    app: &AppRef,
    buildpacks: &[String],
) -> Result<Vec<String>, StoreError> {
    if buildpacks.len() > MAX_BUILDPACKS {
        return Err(StoreError::Invalid(InvalidValue::new(format!(
            "An app can have at most {MAX_BUILDPACKS} buildpacks."
        ))));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let json = serde_json::to_string(buildpacks)
        .map_err(|e| StoreError::Corrupt(format!("buildpacks: {e}")))?;
    tx.execute(
        "UPDATE apps SET buildpacks_json = ?1, updated_at = ?2 WHERE id = ?3",
        params![json, now(), found.id.to_string()],
    )?;
    tx.commit()?;
    Ok(buildpacks.to_vec())
}

/// Records a build that is starting.
pub(super) fn create_build(
    conn: &mut Connection,
    app: &AppRef,
    source_version: &str,
    user: &Account,
) -> Result<Build, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let id = Uuid::new_v4();
    let at = now();
    tx.execute(
        "INSERT INTO builds (id, app_id, status, source_version, user_id, user_email, created_at, updated_at)
         VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?6)",
        params![
            id.to_string(),
            found.id.to_string(),
            source_version,
            user.id.to_string(),
            user.email,
            at
        ],
    )?;
    let build = find_build(&tx, found.id, id)?;
    tx.commit()?;
    Ok(build)
}

/// Records how a build ended.
pub(super) fn finish_build(
    conn: &mut Connection,
    id: Uuid,
    status: BuildStatus,
    buildpacks: &[String],
    slug_id: Option<Uuid>,
    release: Option<ReleaseVersion>,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(buildpacks)
        .map_err(|e| StoreError::Corrupt(format!("buildpacks: {e}")))?;
    conn.execute(
        "UPDATE builds SET status = ?1, buildpacks_json = ?2, slug_id = ?3, release_version = ?4, updated_at = ?5
         WHERE id = ?6",
        params![
            status.as_str(),
            json,
            slug_id.map(|s| s.to_string()),
            release.map(|r| r.0),
            now(),
            id.to_string()
        ],
    )?;
    Ok(())
}

/// Builds still marked pending when corrald starts were cut off by a
/// restart: they failed.
pub(super) fn fail_pending_builds(conn: &mut Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE builds SET status = 'failed', updated_at = ?1 WHERE status = 'pending'",
        params![now()],
    )?)
}

fn find_build(conn: &Connection, app_id: Uuid, id: Uuid) -> Result<Build, StoreError> {
    conn.query_row(
        &format!("{BUILD_SELECT} WHERE b.app_id = ?1 AND b.id = ?2"),
        params![app_id.to_string(), id.to_string()],
        build_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("build"))?
}

/// One build of an app.
pub(super) fn get_build(
    conn: &mut Connection,
    app: &AppRef,
    id: Uuid,
) -> Result<Build, StoreError> {
    let found = find_app(conn, app)?;
    find_build(conn, found.id, id)
}

/// An app's builds, oldest first.
pub(super) fn list_builds(conn: &mut Connection, app: &AppRef) -> Result<Vec<Build>, StoreError> {
    let found = find_app(conn, app)?;
    let mut stmt = conn.prepare(&format!(
        "{BUILD_SELECT} WHERE b.app_id = ?1 ORDER BY b.created_at, b.rowid"
    ))?;
    let rows = stmt.query_map(params![found.id.to_string()], build_from_row)?;
    rows.map(|r| r?).collect()
}

/// Sets config vars a buildpack's `bin/release` asks for, where the app
/// has not set them (Heroku applies `config_vars` only as defaults).
/// Returns the names it set. Part of the deploy, so no release of its own.
pub(super) fn add_default_config_in(
    tx: &Connection,
    app: &AppRef,
    defaults: &BTreeMap<ConfigVarName, String>,
) -> Result<Vec<ConfigVarName>, StoreError> {
    let found = find_app(tx, app)?;
    let config = read_config(tx, found.id)?;
    let patch: BTreeMap<ConfigVarName, Option<String>> = defaults
        .iter()
        .filter(|(name, _)| config.get(name.as_str()).is_none())
        .map(|(name, value)| (name.clone(), Some(value.clone())))
        .collect();
    if patch.is_empty() {
        return Ok(Vec::new());
    }
    let merged = config.apply(&patch).map_err(StoreError::Invalid)?;
    write_config(tx, found.id, &merged)?;
    Ok(patch.into_keys().collect())
}

/// Releases whose release phase has not run yet, oldest first.
pub(super) fn pending_releases(conn: &mut Connection) -> Result<Vec<Release>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "{} WHERE r.status = 'pending' ORDER BY r.created_at, r.version",
        records::RELEASE_SELECT
    ))?;
    let rows = stmt.query_map([], records::release_from_row)?;
    rows.map(|r| r?).collect()
}

/// Settles a pending release: `Succeeded` makes it current (if it is the
/// newest to succeed), `Failed` leaves the running release in place.
pub(super) fn settle_release(
    conn: &mut Connection,
    app: &AppRef,
    version: ReleaseVersion,
    status: ReleaseStatus,
) -> Result<Release, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let changed = tx.execute(
        "UPDATE releases SET status = ?1, updated_at = ?2 WHERE app_id = ?3 AND version = ?4 AND status = 'pending'",
        params![status.as_str(), now(), found.id.to_string(), version.0],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "Release {version} is not waiting for its release phase."
        )));
    }
    let release = find_release(&tx, &found, ReleaseRef::Version(version))?;
    tx.commit()?;
    Ok(release)
}
