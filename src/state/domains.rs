//! Custom domains, and the per-app facts the router's route table is built from.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use super::records::{self, App, Domain};
use super::{find_app, now, AppRef, StoreError};
use crate::model::{AppName, AppSettings, Hostname};
use crate::tls::PemPair;

/// A domain given by UUID or by hostname, as the Platform API allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomainRef {
    /// The domain's id.
    Id(Uuid),
    /// The domain's hostname.
    Hostname(Hostname),
}

impl DomainRef {
    /// Reads a path segment: a UUID if it parses as one, otherwise a
    /// hostname (in any case, with or without the trailing dot).
    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Id(id));
        }
        // What is not a valid hostname names no domain: "not found", as
        // for apps.
        Hostname::parse(s)
            .map(Self::Hostname)
            .map_err(|_| StoreError::NotFound("domain"))
    }

    /// Whether this refers to the domain with `id` and `hostname`.
    pub(crate) fn matches(&self, id: Uuid, hostname: &str) -> bool {
        match self {
            Self::Id(wanted) => *wanted == id,
            Self::Hostname(wanted) => wanted.as_str() == hostname,
        }
    }
}

/// What the router needs to know about one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteApp {
    /// The app, served as `<app>.<base-domain>`.
    pub app: AppName,
    /// Whether to answer with the maintenance page (H80) instead.
    pub maintenance: bool,
    /// The app's settings.
    pub settings: AppSettings,
    /// Its custom hostnames, lowercase, sorted; wildcards as `*.example.com`.
    pub domains: Vec<String>,
    /// Its SNI endpoints' certificates and keys, oldest first.
    pub certificates: Vec<PemPair>,
}

fn find_domain(
    conn: &Connection,
    app: &App,
    domain: &DomainRef,
) -> Result<Option<Domain>, StoreError> {
    let (column, key) = match domain {
        DomainRef::Id(id) => ("d.id", id.to_string()),
        DomainRef::Hostname(host) => ("d.hostname", host.to_string()),
    };
    conn.query_row(
        &format!(
            "{} WHERE d.app_id = ?1 AND {column} = ?2",
            records::DOMAIN_SELECT
        ),
        params![app.id.to_string(), key],
        records::domain_from_row,
    )
    .optional()?
    .transpose()
}

/// An app and its custom domains, by hostname.
pub(super) fn list_domains(
    conn: &mut Connection,
    app: &AppRef,
) -> Result<(App, Vec<Domain>), StoreError> {
    // One read transaction: the app and its domains as of one moment.
    let tx = conn.transaction()?;
    let found = find_app(&tx, app)?;
    let domains = {
        let mut stmt = tx.prepare(&format!(
            "{} WHERE d.app_id = ?1 ORDER BY d.hostname",
            records::DOMAIN_SELECT
        ))?;
        let rows = stmt.query_map(params![found.id.to_string()], records::domain_from_row)?;
        rows.map(|r| r?).collect::<Result<Vec<_>, _>>()?
    };
    tx.commit()?;
    Ok((found, domains))
}

/// An app and one of its custom domains, if it has that one. The app's
/// default domain is not stored; the caller recognises it.
pub(super) fn get_domain(
    conn: &mut Connection,
    app: &AppRef,
    domain: &DomainRef,
) -> Result<(App, Option<Domain>), StoreError> {
    let tx = conn.transaction()?;
    let found = find_app(&tx, app)?;
    let domain = find_domain(&tx, &found, domain)?;
    tx.commit()?;
    Ok((found, domain))
}

/// Adds a custom domain to an app. A hostname belongs to one app at most.
pub(super) fn add_domain(
    conn: &mut Connection,
    app: &AppRef,
    hostname: &Hostname,
) -> Result<(App, Domain), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let owner: Option<String> = tx
        .query_row(
            "SELECT app_id FROM domains WHERE hostname = ?1",
            params![hostname.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    match owner {
        // Heroku's wording; which other app holds it is not said, as on
        // Heroku, where that app may belong to someone else.
        Some(owner) if owner == found.id.to_string() => {
            return Err(StoreError::Conflict(format!(
                "{hostname} is already added to this app."
            )))
        }
        Some(_) => {
            return Err(StoreError::Conflict(format!(
                "{hostname} is already in use by another app."
            )))
        }
        None => {}
    }
    let id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO domains (id, app_id, hostname, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id.to_string(), found.id.to_string(), hostname.as_str(), now()],
    )?;
    let domain = find_domain(&tx, &found, &DomainRef::Id(id))?
        .ok_or_else(|| StoreError::Corrupt(format!("domain {id} vanished after insert")))?;
    tx.commit()?;
    Ok((found, domain))
}

/// Removes one of an app's custom domains; `None` when the app has no
/// such domain (nothing changes then).
pub(super) fn remove_domain(
    conn: &mut Connection,
    app: &AppRef,
    domain: &DomainRef,
) -> Result<(App, Option<Domain>), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let domain = find_domain(&tx, &found, domain)?;
    if let Some(d) = &domain {
        tx.execute(
            "DELETE FROM domains WHERE id = ?1",
            params![d.id.to_string()],
        )?;
    }
    tx.commit()?;
    Ok((found, domain))
}

/// Every app with what the router serves it by: name, maintenance mode,
/// settings, custom hostnames and certificates. Three queries in all,
/// however many apps.
pub(super) fn route_apps(conn: &mut Connection) -> Result<Vec<RouteApp>, StoreError> {
    // One read transaction, so apps and domains come from one snapshot: a
    // domain moved between the two queries cannot show up twice or never.
    let tx = conn.transaction()?;
    let mut domains: HashMap<String, Vec<String>> = HashMap::new();
    {
        let mut stmt = tx.prepare("SELECT app_id, hostname FROM domains ORDER BY hostname")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (app_id, hostname) = row?;
            // Hostnames are written lowercase through `Hostname`; they are
            // not re-parsed here so that one odd row cannot take every
            // app's routes down with it.
            domains.entry(app_id).or_default().push(hostname);
        }
    }
    let mut certificates = super::sni::certificates_by_app(&tx)?;
    let apps = {
        let mut stmt =
            tx.prepare("SELECT id, name, maintenance, settings_json FROM apps ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut apps = Vec::new();
        for row in rows {
            let (id, name, maintenance, settings) = row?;
            apps.push(RouteApp {
                app: AppName::parse(&name)
                    .map_err(|e| StoreError::Corrupt(format!("app name: {e}")))?,
                maintenance,
                settings: serde_json::from_str(&settings)
                    .map_err(|e| StoreError::Corrupt(format!("app settings: {e}")))?,
                domains: domains.remove(&id).unwrap_or_default(),
                certificates: certificates.remove(&id).unwrap_or_default(),
            });
        }
        apps
    };
    tx.commit()?;
    Ok(apps)
}
