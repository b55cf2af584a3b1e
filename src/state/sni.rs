//! SNI endpoints: an app's TLS certificate chains with their private keys.
//!
//! The store keeps the PEM as given; the API checks it before it gets
//! here, and the router parses it again when it enters the route table.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use super::records::{self, App, Domain};
use super::{find_app, now, AppRef, StoreError};
use crate::model::AppName;
use crate::tls::PemPair;

/// An SNI endpoint given by UUID or by name, as the Platform API allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SniEndpointRef {
    /// The endpoint's id.
    Id(Uuid),
    /// The endpoint's name.
    Name(String),
}

impl SniEndpointRef {
    /// Reads a path segment: a UUID if it parses as one, otherwise a name
    /// (lowercase letters, digits and dashes).
    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Id(id));
        }
        let valid = (1..=100).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self::Name(s.to_owned()))
        } else {
            Err(StoreError::NotFound("SNI endpoint"))
        }
    }
}

/// One SNI endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SniEndpoint {
    /// Stable id.
    pub id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// Its name, unique within the app, like `quiet-river-4821`.
    pub name: String,
    /// The certificate chain and key.
    pub pem: PemPair,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When its certificate was last replaced.
    pub updated_at: DateTime<Utc>,
}

/// An app with its SNI endpoints (one or all) and its custom domains, which
/// say which domains each endpoint serves.
#[derive(Debug, Clone)]
pub(crate) struct SniView<T> {
    /// The app.
    pub app: App,
    /// The endpoint or endpoints.
    pub endpoints: T,
    /// The app's custom domains.
    pub domains: Vec<Domain>,
}

const SELECT: &str = "SELECT id, app_id, name, certificate_chain, private_key, created_at, updated_at FROM sni_endpoints";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SniEndpoint, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let endpoint = |id: &str, app_id: &str| -> Result<SniEndpoint, StoreError> {
        Ok(SniEndpoint {
            id: Uuid::parse_str(id)
                .map_err(|e| StoreError::Corrupt(format!("SNI endpoint id: {e}")))?,
            app_id: Uuid::parse_str(app_id)
                .map_err(|e| StoreError::Corrupt(format!("SNI endpoint app id: {e}")))?,
            name: r.get(2)?,
            pem: PemPair {
                chain: r.get(3)?,
                key: r.get(4)?,
            },
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
        })
    };
    Ok(endpoint(&id, &app_id))
}

fn find(conn: &Connection, app: &App, which: &SniEndpointRef) -> Result<SniEndpoint, StoreError> {
    let (column, key) = match which {
        SniEndpointRef::Id(id) => ("id", id.to_string()),
        SniEndpointRef::Name(name) => ("name", name.clone()),
    };
    conn.query_row(
        &format!("{SELECT} WHERE app_id = ?1 AND {column} = ?2"),
        params![app.id.to_string(), key],
        from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("SNI endpoint"))?
}

fn app_domains(conn: &Connection, app: &App) -> Result<Vec<Domain>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "{} WHERE d.app_id = ?1 ORDER BY d.hostname",
        records::DOMAIN_SELECT
    ))?;
    let rows = stmt.query_map(params![app.id.to_string()], records::domain_from_row)?;
    rows.map(|r| r?).collect()
}

/// An app's SNI endpoints, oldest first.
pub(super) fn list_sni_endpoints(
    conn: &mut Connection,
    app: &AppRef,
) -> Result<SniView<Vec<SniEndpoint>>, StoreError> {
    let tx = conn.transaction()?;
    let app = find_app(&tx, app)?;
    let endpoints = {
        let mut stmt = tx.prepare(&format!(
            "{SELECT} WHERE app_id = ?1 ORDER BY created_at, name"
        ))?;
        let rows = stmt.query_map(params![app.id.to_string()], from_row)?;
        rows.map(|r| r?).collect::<Result<Vec<_>, _>>()?
    };
    let domains = app_domains(&tx, &app)?;
    tx.commit()?;
    Ok(SniView {
        app,
        endpoints,
        domains,
    })
}

/// One SNI endpoint of an app.
pub(super) fn get_sni_endpoint(
    conn: &mut Connection,
    app: &AppRef,
    which: &SniEndpointRef,
) -> Result<SniView<SniEndpoint>, StoreError> {
    let tx = conn.transaction()?;
    let app = find_app(&tx, app)?;
    let endpoint = find(&tx, &app, which)?;
    let domains = app_domains(&tx, &app)?;
    tx.commit()?;
    Ok(SniView {
        app,
        endpoints: endpoint,
        domains,
    })
}

/// Adds an SNI endpoint with a fresh name. The caller has checked `pem`.
pub(super) fn add_sni_endpoint(
    conn: &mut Connection,
    app: &AppRef,
    pem: &PemPair,
) -> Result<SniView<SniEndpoint>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app = find_app(&tx, app)?;
    // Heroku-style names; a clash within one app is rare, so try again.
    let name = loop {
        let name = AppName::random().to_string();
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sni_endpoints WHERE app_id = ?1 AND name = ?2)",
            params![app.id.to_string(), name],
            |r| r.get(0),
        )?;
        if !taken {
            break name;
        }
    };
    let id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO sni_endpoints (id, app_id, name, certificate_chain, private_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![id.to_string(), app.id.to_string(), name, pem.chain, pem.key, now()],
    )?;
    let endpoint = find(&tx, &app, &SniEndpointRef::Id(id))?;
    let domains = app_domains(&tx, &app)?;
    tx.commit()?;
    Ok(SniView {
        app,
        endpoints: endpoint,
        domains,
    })
}

/// Replaces an SNI endpoint's certificate and key (a renewal). The caller
/// has checked `pem`.
pub(super) fn update_sni_endpoint(
    conn: &mut Connection,
    app: &AppRef,
    which: &SniEndpointRef,
    pem: &PemPair,
) -> Result<SniView<SniEndpoint>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app = find_app(&tx, app)?;
    let found = find(&tx, &app, which)?;
    tx.execute(
        "UPDATE sni_endpoints SET certificate_chain = ?1, private_key = ?2, updated_at = ?3 WHERE id = ?4",
        params![pem.chain, pem.key, now(), found.id.to_string()],
    )?;
    let endpoint = find(&tx, &app, &SniEndpointRef::Id(found.id))?;
    let domains = app_domains(&tx, &app)?;
    tx.commit()?;
    Ok(SniView {
        app,
        endpoints: endpoint,
        domains,
    })
}

/// Removes an SNI endpoint; the answer is what was removed.
pub(super) fn remove_sni_endpoint(
    conn: &mut Connection,
    app: &AppRef,
    which: &SniEndpointRef,
) -> Result<SniView<SniEndpoint>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app = find_app(&tx, app)?;
    let endpoint = find(&tx, &app, which)?;
    tx.execute(
        "DELETE FROM sni_endpoints WHERE id = ?1",
        params![endpoint.id.to_string()],
    )?;
    let domains = app_domains(&tx, &app)?;
    tx.commit()?;
    Ok(SniView {
        app,
        endpoints: endpoint,
        domains,
    })
}

/// Every app's certificates, by app id, for the route table.
pub(super) fn certificates_by_app(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, Vec<PemPair>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<PemPair>> = Default::default();
    let mut stmt = conn.prepare(
        "SELECT app_id, certificate_chain, private_key FROM sni_endpoints ORDER BY created_at, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            PemPair {
                chain: r.get(1)?,
                key: r.get(2)?,
            },
        ))
    })?;
    for row in rows {
        let (app_id, pem) = row?;
        out.entry(app_id).or_default().push(pem);
    }
    Ok(out)
}
