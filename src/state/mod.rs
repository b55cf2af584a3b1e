//! The SQLite store: apps, config vars, releases, slugs, formation, domains, SNI endpoints, log drains and API tokens.
//!
//! Callers see only the [`Store`] trait (`store.rs`): named operations, one
//! transaction each. [`SqliteStore`] (`sqlite.rs`) implements it over one
//! database file, one connection behind a mutex, every change in one
//! `IMMEDIATE` transaction: a config change and the release it creates land
//! together or not at all, which is what makes a SIGKILL mid-change
//! harmless. The files beside it hold the SQL, one per aggregate, as
//! functions over a connection that nothing outside this module can call.

mod builds;
mod crashes;
mod domains;
mod drains;
mod dynos;
mod migrations;
mod records;
mod slugs;
mod sni;
mod sqlite;
mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{
    AppName, ConfigVarName, ConfigVars, DynoSize, InvalidValue, ProcessType, Quantity,
    ReleaseVersion,
};

pub(crate) use builds::{Build, BuildStatus};
pub(crate) use crashes::CrashRecord;
pub(crate) use domains::{DomainRef, RouteApp};
pub(crate) use drains::{DrainRef, LogDrain};
pub(crate) use dynos::{timestamp, DesiredApp, DynoRecord};
pub use migrations::SCHEMA_VERSION;
pub use records::Account;
pub(crate) use records::{App, Domain, FormationEntry, FormationUpdate, Release, ReleaseStatus};
pub(crate) use slugs::{NewSlug, Slug};
pub(crate) use sni::{SniEndpoint, SniEndpointRef, SniView};
pub use sqlite::SqliteStore;
pub(crate) use store::{BuildRelease, BuiltSlug, ReleaseWithSlug, SharedStore, Store};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("Couldn't find that {0}.")]
    NotFound(&'static str),
    /// The change clashes with what exists, e.g. a taken app name.
    #[error("{0}")]
    Conflict(String),
    /// The change would break a rule of the model.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The database failed; the transaction was rolled back. The source
    /// is boxed so that no database crate's type is part of this API.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row holds something this version cannot read.
    #[error("the database holds a value this corrald cannot read ({0}); was it written by a newer version?")]
    Corrupt(String),
    /// The database is newer than this binary.
    #[error("the database has schema version {found} but this corrald knows only up to {known}; upgrade corrald")]
    TooNew {
        /// The version found on disk.
        found: u32,
        /// The newest version this binary can migrate to.
        known: u32,
    },
    /// The blocking task running the query died.
    #[error("the database task failed: {0}")]
    Task(String),
    /// The state directory could not be prepared.
    #[error("cannot prepare state directory {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// An app given by UUID or by name, as the Platform API allows everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppRef {
    /// The app's id.
    Id(Uuid),
    /// The app's name.
    Name(AppName),
}

impl AppRef {
    /// Reads a path segment: a UUID if it parses as one, otherwise a name.
    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Id(id));
        }
        // An identifier that is neither a UUID nor a valid name can match
        // nothing; saying "not found" keeps Heroku's behaviour.
        AppName::parse(s)
            .map(Self::Name)
            .map_err(|_| StoreError::NotFound("app"))
    }
}

/// A release given by UUID or by version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseRef {
    /// The release's id.
    Id(Uuid),
    /// The release's version.
    Version(ReleaseVersion),
}

impl ReleaseRef {
    /// Reads a path segment: a UUID, or a version like `3` or `v3`.
    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Id(id));
        }
        ReleaseVersion::parse(s)
            .map(Self::Version)
            .ok_or(StoreError::NotFound("release"))
    }
}

/// A newly minted API token: the secret is shown once and never stored.
#[derive(Debug)]
pub struct NewToken {
    /// The account the token belongs to.
    pub account: Account,
    /// The bearer token itself.
    pub secret: String,
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates an account with a fresh bearer token.
fn create_token(
    conn: &mut Connection,
    name: &str,
    email: Option<&str>,
) -> Result<NewToken, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(
            InvalidValue::new("A token name must be 1 to 100 printable characters.").into(),
        );
    }
    let email = email.map_or_else(|| format!("{name}@corral.local"), str::to_owned);
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
    let secret = format!("corral_{}", hex::encode(bytes));
    let account = Account {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        email,
        created_at: now(),
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO accounts (id, name, email, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account.id.to_string(), account.name, account.email, hash_token(&secret), account.created_at],
    )?;
    tx.commit()?;
    Ok(NewToken { account, secret })
}

/// The account that owns apps declared in corrald's configuration and
/// authors the releases their declarations make. It has a fixed id and no
/// token: its `token_hash` is not a SHA-256 digest, so no secret matches.
fn config_account(conn: &mut Connection) -> Result<Account, StoreError> {
    let id = Uuid::nil();
    conn.execute(
        "INSERT OR IGNORE INTO accounts (id, name, email, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.to_string(), "corrald configuration", "config@corral.local", "none:configuration", now()],
    )?;
    conn.query_row(
        "SELECT id, name, email, created_at FROM accounts WHERE id = ?1",
        params![id.to_string()],
        records::account_from_row,
    )?
}

/// The account a bearer token belongs to, if any.
fn authenticate(conn: &mut Connection, secret: &str) -> Result<Option<Account>, StoreError> {
    conn.query_row(
        "SELECT id, name, email, created_at FROM accounts WHERE token_hash = ?1",
        params![hash_token(secret)],
        records::account_from_row,
    )
    .optional()?
    .transpose()
}

fn find_app(conn: &Connection, app: &AppRef) -> Result<App, StoreError> {
    let (column, key) = match app {
        AppRef::Id(id) => ("a.id", id.to_string()),
        AppRef::Name(name) => ("a.name", name.to_string()),
    };
    conn.query_row(
        &format!("{} WHERE {column} = ?1", records::APP_SELECT),
        params![key],
        records::app_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("app"))?
}

/// Looks up one app.
fn get_app(conn: &mut Connection, app: &AppRef) -> Result<App, StoreError> {
    find_app(conn, app)
}

/// Every app, by name.
fn list_apps(conn: &mut Connection) -> Result<Vec<App>, StoreError> {
    let mut stmt = conn.prepare(&format!("{} ORDER BY a.name", records::APP_SELECT))?;
    let rows = stmt.query_map([], records::app_from_row)?;
    rows.map(|r| r?).collect()
}

/// Creates an app with its v1 "Initial release", in one transaction.
fn create_app(
    conn: &mut Connection,
    name: &AppName,
    owner: &Account,
) -> Result<(App, Release), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM apps WHERE name = ?1)",
        params![name.as_str()],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Conflict("Name is already taken".to_owned()));
    }
    let id = Uuid::new_v4();
    let at = now();
    tx.execute(
        "INSERT INTO apps (id, name, owner_id, maintenance, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?4)",
        params![id.to_string(), name.as_str(), owner.id.to_string(), at],
    )?;
    insert_release(
        &tx,
        id,
        "Initial release",
        &ConfigVars::default(),
        None,
        &BTreeMap::new(),
        owner,
    )?;
    let app = find_app(&tx, &AppRef::Id(id))?;
    let release = find_release(&tx, &app, ReleaseRef::Version(ReleaseVersion(1)))?;
    tx.commit()?;
    Ok((app, release))
}

/// Renames an app or switches maintenance mode.
fn update_app(
    conn: &mut Connection,
    app: &AppRef,
    new_name: Option<&AppName>,
    maintenance: Option<bool>,
) -> Result<App, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = find_app(&tx, app)?;
    let at = now();
    if let Some(name) = new_name.filter(|n| **n != current.name) {
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM apps WHERE name = ?1)",
            params![name.as_str()],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::Conflict("Name is already taken".to_owned()));
        }
        tx.execute(
            "UPDATE apps SET name = ?1, updated_at = ?2 WHERE id = ?3",
            params![name.as_str(), at, current.id.to_string()],
        )?;
    }
    if let Some(maintenance) = maintenance.filter(|m| *m != current.maintenance) {
        tx.execute(
            "UPDATE apps SET maintenance = ?1, updated_at = ?2 WHERE id = ?3",
            params![maintenance, at, current.id.to_string()],
        )?;
    }
    let updated = find_app(&tx, &AppRef::Id(current.id))?;
    tx.commit()?;
    Ok(updated)
}

/// Changes an app's settings with a JSON merge patch (`null` resets one).
/// Settings are not part of releases: nothing restarts.
fn update_app_settings(
    conn: &mut Connection,
    app: &AppRef,
    patch: &serde_json::Value,
) -> Result<App, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = find_app(&tx, app)?;
    let settings = current.settings.merge(patch)?;
    let json = serde_json::to_string(&settings)
        .map_err(|e| StoreError::Corrupt(format!("app settings: {e}")))?;
    tx.execute(
        "UPDATE apps SET settings_json = ?1, updated_at = ?2 WHERE id = ?3",
        params![json, now(), current.id.to_string()],
    )?;
    let updated = find_app(&tx, &AppRef::Id(current.id))?;
    tx.commit()?;
    Ok(updated)
}

/// Deletes an app with everything it owns.
fn delete_app(conn: &mut Connection, app: &AppRef) -> Result<App, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    tx.execute(
        "DELETE FROM apps WHERE id = ?1",
        params![found.id.to_string()],
    )?;
    tx.commit()?;
    Ok(found)
}

fn read_config(conn: &Connection, app_id: Uuid) -> Result<ConfigVars, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, value FROM config_vars WHERE app_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map(params![app_id.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut map = BTreeMap::new();
    for row in rows {
        let (name, value) = row?;
        let name = ConfigVarName::parse(&name)
            .map_err(|e| StoreError::Corrupt(format!("config var name: {e}")))?;
        map.insert(name, value);
    }
    Ok(ConfigVars::from_trusted(map))
}

/// An app's config vars.
fn get_config(conn: &Connection, app: &AppRef) -> Result<ConfigVars, StoreError> {
    let found = find_app(conn, app)?;
    read_config(conn, found.id)
}

/// Applies a config patch and records the release it makes, in one
/// transaction. A patch that changes nothing makes no release.
fn patch_config(
    conn: &mut Connection,
    app: &AppRef,
    patch: &BTreeMap<ConfigVarName, Option<String>>,
    user: &Account,
) -> Result<(ConfigVars, Option<Release>), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let before = read_config(&tx, found.id)?;
    let after = before.apply(patch)?;
    if after == before {
        return Ok((before, None));
    }
    let set: Vec<&str> = patch
        .iter()
        .filter(|(k, v)| v.is_some() && before.get(k.as_str()) != v.as_deref())
        .map(|(k, _)| k.as_str())
        .collect();
    let removed: Vec<&str> = patch
        .iter()
        .filter(|(k, v)| v.is_none() && before.get(k.as_str()).is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut parts = Vec::new();
    if !set.is_empty() {
        parts.push(format!("Set {} config vars", set.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("Remove {} config vars", removed.join(", ")));
    }
    write_config(&tx, found.id, &after)?;
    let previous = current_release(&tx, &found)?;
    let (slug_id, process_types) = previous
        .map(|r| (r.slug_id, r.process_types))
        .unwrap_or_default();
    let version = insert_release(
        &tx,
        found.id,
        &parts.join("; "),
        &after,
        slug_id,
        &process_types,
        user,
    )?;
    let release = find_release(&tx, &found, ReleaseRef::Version(version))?;
    tx.commit()?;
    Ok((after, Some(release)))
}

/// Replaces an app's config vars with `vars`.
fn write_config(tx: &Connection, app_id: Uuid, vars: &ConfigVars) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM config_vars WHERE app_id = ?1",
        params![app_id.to_string()],
    )?;
    for (name, value) in vars.as_map() {
        tx.execute(
            "INSERT INTO config_vars (app_id, name, value) VALUES (?1, ?2, ?3)",
            params![app_id.to_string(), name.as_str(), value],
        )?;
    }
    Ok(())
}

fn insert_release(
    tx: &Connection,
    app_id: Uuid,
    description: &str,
    config: &ConfigVars,
    slug_id: Option<Uuid>,
    process_types: &BTreeMap<ProcessType, String>,
    user: &Account,
) -> Result<ReleaseVersion, StoreError> {
    let next: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_id = ?1",
        params![app_id.to_string()],
        |r| r.get(0),
    )?;
    let at = now();
    let config_json = serde_json::to_string(config)
        .map_err(|e| StoreError::Corrupt(format!("config snapshot: {e}")))?;
    let types_json = serde_json::to_string(process_types)
        .map_err(|e| StoreError::Corrupt(format!("process types: {e}")))?;
    // A release with code and a `release` process type waits for its
    // release phase (Heroku runs it on deploys, rollbacks and config
    // changes alike) before it can become current.
    let status = if slug_id.is_some() && process_types.keys().any(|t| t.as_str() == "release") {
        ReleaseStatus::Pending
    } else {
        ReleaseStatus::Succeeded
    };
    tx.execute(
        "INSERT INTO releases (id, app_id, version, description, status, slug_id, config_json, process_types_json, user_id, user_email, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?11, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            Uuid::new_v4().to_string(),
            app_id.to_string(),
            next,
            description,
            slug_id.map(|s| s.to_string()),
            config_json,
            types_json,
            user.id.to_string(),
            user.email,
            at,
            status.as_str(),
        ],
    )?;
    tx.execute(
        "UPDATE apps SET released_at = ?1, updated_at = ?1 WHERE id = ?2",
        params![at, app_id.to_string()],
    )?;
    Ok(ReleaseVersion(next))
}

fn current_release(conn: &Connection, app: &App) -> Result<Option<Release>, StoreError> {
    let row = conn
        .query_row(
            &format!(
                "{} WHERE r.app_id = ?1 AND r.status = 'succeeded' ORDER BY r.version DESC LIMIT 1",
                records::RELEASE_SELECT
            ),
            params![app.id.to_string()],
            records::release_from_row,
        )
        .optional()?;
    row.transpose()
}

fn find_release(conn: &Connection, app: &App, release: ReleaseRef) -> Result<Release, StoreError> {
    let (column, key): (&str, Box<dyn rusqlite::ToSql>) = match release {
        ReleaseRef::Id(id) => ("r.id", Box::new(id.to_string())),
        ReleaseRef::Version(v) => ("r.version", Box::new(v.0)),
    };
    conn.query_row(
        &format!(
            "{} WHERE r.app_id = ?1 AND {column} = ?2",
            records::RELEASE_SELECT
        ),
        params![app.id.to_string(), key],
        records::release_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("release"))?
}

/// One release of an app.
fn get_release(
    conn: &mut Connection,
    app: &AppRef,
    release: ReleaseRef,
) -> Result<Release, StoreError> {
    let found = find_app(conn, app)?;
    find_release(conn, &found, release)
}

/// An app's releases, oldest first.
fn list_releases(conn: &mut Connection, app: &AppRef) -> Result<Vec<Release>, StoreError> {
    let found = find_app(conn, app)?;
    let mut stmt = conn.prepare(&format!(
        "{} WHERE r.app_id = ?1 ORDER BY r.version",
        records::RELEASE_SELECT
    ))?;
    let rows = stmt.query_map(params![found.id.to_string()], records::release_from_row)?;
    rows.map(|r| r?).collect()
}

fn read_formation(conn: &Connection, app: &App) -> Result<Vec<FormationEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "{} WHERE f.app_id = ?1 ORDER BY f.process_type",
        records::FORMATION_SELECT
    ))?;
    let rows = stmt.query_map(params![app.id.to_string()], records::formation_from_row)?;
    let mut entries: Vec<FormationEntry> = rows.map(|r| r?).collect::<Result<_, _>>()?;
    // The command comes from the current release, so it is never stale.
    let types = current_release(conn, app)?
        .map(|r| r.process_types)
        .unwrap_or_default();
    for entry in &mut entries {
        entry.command = types.get(&entry.process_type).cloned();
    }
    Ok(entries)
}

/// An app's formation, by process type.
fn list_formation(conn: &mut Connection, app: &AppRef) -> Result<Vec<FormationEntry>, StoreError> {
    let found = find_app(conn, app)?;
    read_formation(conn, &found)
}

/// One process type's formation.
fn get_formation(
    conn: &mut Connection,
    app: &AppRef,
    process_type: &ProcessType,
) -> Result<FormationEntry, StoreError> {
    let found = find_app(conn, app)?;
    read_formation(conn, &found)?
        .into_iter()
        .find(|f| f.process_type == *process_type)
        .ok_or(StoreError::NotFound("process type"))
}

/// Changes quantities and sizes of several process types in one
/// transaction: either every update applies or none does.
///
/// While the app's current release declares process types, only those can
/// be scaled, as on Heroku. Before any code is deployed there is nothing to
/// check against, so the formation is recorded as asked for and takes effect
/// once a release provides the commands.
fn update_formation(
    conn: &mut Connection,
    app: &AppRef,
    updates: &[FormationUpdate],
) -> Result<Vec<FormationEntry>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let types = current_release(&tx, &found)?
        .map(|r| r.process_types)
        .unwrap_or_default();
    let at = now();
    for update in updates {
        if update.process_type.as_str() == ProcessType::ONE_OFF {
            return Err(StoreError::Invalid(InvalidValue::new(
                "run dynos are one-offs and cannot be scaled; start one with corral run.",
            )));
        }
        if !types.is_empty() && !types.contains_key(&update.process_type) {
            return Err(StoreError::NotFound("process type"));
        }
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT quantity, size FROM formation WHERE app_id = ?1 AND process_type = ?2",
                params![found.id.to_string(), update.process_type.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (current, size) = match existing {
            Some((q, s)) => (
                Quantity::new(q).map_err(|e| StoreError::Corrupt(format!("quantity: {e}")))?,
                s,
            ),
            None => (Quantity::default(), DynoSize::default_size().into()),
        };
        let quantity = match update.quantity {
            Some(change) => change.resolve(current)?,
            None => current,
        };
        let size: String = update.size.clone().map_or(size, String::from);
        tx.execute(
            "INSERT INTO formation (id, app_id, process_type, quantity, size, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (app_id, process_type) DO UPDATE SET quantity = ?4, size = ?5, updated_at = ?6",
            params![
                Uuid::new_v4().to_string(),
                found.id.to_string(),
                update.process_type.as_str(),
                quantity.get(),
                size,
                at
            ],
        )?;
    }
    let entries = read_formation(&tx, &found)?;
    tx.commit()?;
    Ok(entries
        .into_iter()
        .filter(|e| updates.iter().any(|u| u.process_type == e.process_type))
        .collect())
}

#[cfg(test)]
mod tests;
