//! The rows the store hands out, and how they are read from SQLite.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use uuid::Uuid;

use super::StoreError;
use crate::model::{
    AppName, AppSettings, ConfigVars, DynoSize, Hostname, ProcessType, Quantity, QuantityChange,
    ReleaseVersion,
};

/// A user of the API: the owner of one or more tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable id.
    pub id: Uuid,
    /// The name given at `corrald tokens create --name`.
    pub name: String,
    /// The address shown as owner and release author.
    pub email: String,
    /// When the token was made.
    pub created_at: DateTime<Utc>,
}

/// An app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct App {
    /// Stable id; survives a rename.
    pub id: Uuid,
    /// Current name.
    pub name: AppName,
    /// Whether the router answers H80 instead of forwarding.
    pub maintenance: bool,
    /// Settings that differ from the platform's defaults.
    pub settings: AppSettings,
    /// Who created the app.
    pub owner: Account,
    /// When the app was created.
    pub created_at: DateTime<Utc>,
    /// When anything about the app last changed.
    pub updated_at: DateTime<Utc>,
    /// When the newest release was made.
    pub released_at: Option<DateTime<Utc>>,
}

/// A release's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseStatus {
    /// Running or runnable.
    Succeeded,
    /// Its release phase failed; it never ran.
    Failed,
    /// Its release phase is still running.
    Pending,
}

impl ReleaseStatus {
    /// Heroku's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Pending => "pending",
        }
    }
}

/// An immutable release: code, config and process types, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Release {
    /// Stable id.
    pub id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// The app's name when read.
    pub app_name: AppName,
    /// `vN`.
    pub version: ReleaseVersion,
    /// What changed, in Heroku's words.
    pub description: String,
    /// Outcome.
    pub status: ReleaseStatus,
    /// The slug, once code has been deployed.
    pub slug_id: Option<Uuid>,
    /// The config vars as they were when this release was made.
    pub config: ConfigVars,
    /// Commands by process type.
    pub process_types: BTreeMap<ProcessType, String>,
    /// Who made it.
    pub user_id: Uuid,
    /// Their email.
    pub user_email: String,
    /// Whether this is the release the app runs.
    pub current: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// How many dynos of a process type run, at what size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormationEntry {
    /// Stable id.
    pub id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// The app's name when read.
    pub app_name: AppName,
    /// The process type.
    pub process_type: ProcessType,
    /// How many.
    pub quantity: Quantity,
    /// How big.
    pub size: DynoSize,
    /// The command, from the current release; `None` before any deploy.
    pub command: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A requested change to one process type; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormationUpdate {
    /// Which process type.
    pub process_type: ProcessType,
    /// New quantity, absolute or relative.
    pub quantity: Option<QuantityChange>,
    /// New size.
    pub size: Option<DynoSize>,
}

/// A custom domain of an app. The app's default domain is not a row: it
/// follows from the app's name and the router's base domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Domain {
    /// Stable id.
    pub id: Uuid,
    /// The app it routes to.
    pub app_id: Uuid,
    /// The app's name when read.
    pub app_name: AppName,
    /// The hostname, unique across apps.
    pub hostname: Hostname,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

fn uuid(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("{what} id {s:?}: {e}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Reads `id, name, email, created_at`.
pub(super) fn account_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Account, StoreError>> {
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let email: String = r.get(2)?;
    let created_at: DateTime<Utc> = r.get(3)?;
    Ok(uuid(&id, "account").map(|id| Account {
        id,
        name,
        email,
        created_at,
    }))
}

/// The app columns, joined with the owner, for [`app_from_row`].
pub(super) const APP_SELECT: &str =
    "SELECT a.id, a.name, a.maintenance, a.created_at, a.updated_at, a.released_at, \
     o.id, o.name, o.email, o.created_at, a.settings_json \
     FROM apps a LEFT JOIN accounts o ON o.id = a.owner_id";

pub(super) fn app_from_row(r: &Row<'_>) -> rusqlite::Result<Result<App, StoreError>> {
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let maintenance: bool = r.get(2)?;
    let created_at: DateTime<Utc> = r.get(3)?;
    let updated_at: DateTime<Utc> = r.get(4)?;
    let released_at: Option<DateTime<Utc>> = r.get(5)?;
    let owner_id: Option<String> = r.get(6)?;
    let settings_json: String = r.get(10)?;
    // An owner whose account row is gone still owns the app; show a
    // placeholder instead of failing every read of the app.
    let owner = match owner_id {
        Some(owner_id) => Account {
            id: match uuid(&owner_id, "owner") {
                Ok(id) => id,
                Err(e) => return Ok(Err(e)),
            },
            name: r.get(7)?,
            email: r.get(8)?,
            created_at: r.get(9)?,
        },
        None => Account {
            id: Uuid::nil(),
            name: "unknown".to_owned(),
            email: "unknown@corral.local".to_owned(),
            created_at,
        },
    };
    Ok((|| {
        Ok(App {
            id: uuid(&id, "app")?,
            name: AppName::parse(&name).map_err(|e| corrupt("app name", e))?,
            maintenance,
            settings: serde_json::from_str(&settings_json)
                .map_err(|e| corrupt("app settings", e))?,
            owner,
            created_at,
            updated_at,
            released_at,
        })
    })())
}

/// The release columns for [`release_from_row`]; `current` is computed so it
/// can never disagree with the releases themselves.
pub(super) const RELEASE_SELECT: &str = "SELECT r.id, r.app_id, a.name, r.version, r.description, r.status, r.slug_id, \
     r.config_json, r.process_types_json, r.user_id, r.user_email, r.created_at, r.updated_at, \
     r.version = (SELECT MAX(c.version) FROM releases c WHERE c.app_id = r.app_id AND c.status = 'succeeded') \
     FROM releases r JOIN apps a ON a.id = r.app_id";

pub(super) fn release_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Release, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let app_name: String = r.get(2)?;
    let version: u32 = r.get(3)?;
    let description: String = r.get(4)?;
    let status: String = r.get(5)?;
    let slug_id: Option<String> = r.get(6)?;
    let config_json: String = r.get(7)?;
    let types_json: String = r.get(8)?;
    let user_id: String = r.get(9)?;
    let user_email: String = r.get(10)?;
    let created_at: DateTime<Utc> = r.get(11)?;
    let updated_at: DateTime<Utc> = r.get(12)?;
    let current: Option<bool> = r.get(13)?;
    Ok((|| {
        Ok(Release {
            id: uuid(&id, "release")?,
            app_id: uuid(&app_id, "app")?,
            app_name: AppName::parse(&app_name).map_err(|e| corrupt("app name", e))?,
            version: ReleaseVersion(version),
            description,
            status: match status.as_str() {
                "succeeded" => ReleaseStatus::Succeeded,
                "failed" => ReleaseStatus::Failed,
                "pending" => ReleaseStatus::Pending,
                other => return Err(corrupt("release status", other)),
            },
            slug_id: slug_id.as_deref().map(|s| uuid(s, "slug")).transpose()?,
            config: serde_json::from_str(&config_json)
                .map_err(|e| corrupt("config snapshot", e))?,
            process_types: serde_json::from_str(&types_json)
                .map_err(|e| corrupt("process types", e))?,
            user_id: uuid(&user_id, "user")?,
            user_email,
            current: current.unwrap_or(false),
            created_at,
            updated_at,
        })
    })())
}

/// The formation columns for [`formation_from_row`].
pub(super) const FORMATION_SELECT: &str = "SELECT f.id, f.app_id, a.name, f.process_type, f.quantity, f.size, f.created_at, f.updated_at \
     FROM formation f JOIN apps a ON a.id = f.app_id";

pub(super) fn formation_from_row(
    r: &Row<'_>,
) -> rusqlite::Result<Result<FormationEntry, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let app_name: String = r.get(2)?;
    let process_type: String = r.get(3)?;
    let quantity: i64 = r.get(4)?;
    let size: String = r.get(5)?;
    let created_at: DateTime<Utc> = r.get(6)?;
    let updated_at: DateTime<Utc> = r.get(7)?;
    Ok((|| {
        Ok(FormationEntry {
            id: uuid(&id, "formation")?,
            app_id: uuid(&app_id, "app")?,
            app_name: AppName::parse(&app_name).map_err(|e| corrupt("app name", e))?,
            process_type: ProcessType::parse(&process_type)
                .map_err(|e| corrupt("process type", e))?,
            quantity: Quantity::new(quantity).map_err(|e| corrupt("quantity", e))?,
            size: DynoSize::stored(&size).map_err(|e| corrupt("size", e))?,
            command: None,
            created_at,
            updated_at,
        })
    })())
}

/// The domain columns for [`domain_from_row`].
pub(super) const DOMAIN_SELECT: &str =
    "SELECT d.id, d.app_id, a.name, d.hostname, d.created_at, d.updated_at \
     FROM domains d JOIN apps a ON a.id = d.app_id";

pub(super) fn domain_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Domain, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let app_name: String = r.get(2)?;
    let hostname: String = r.get(3)?;
    let created_at: DateTime<Utc> = r.get(4)?;
    let updated_at: DateTime<Utc> = r.get(5)?;
    Ok((|| {
        Ok(Domain {
            id: uuid(&id, "domain")?,
            app_id: uuid(&app_id, "app")?,
            app_name: AppName::parse(&app_name).map_err(|e| corrupt("app name", e))?,
            hostname: Hostname::parse(&hostname).map_err(|e| corrupt("hostname", e))?,
            created_at,
            updated_at,
        })
    })())
}
