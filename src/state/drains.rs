//! Log drains: where an app's stream is forwarded, with each drain's journal cursor.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::records::App;
use super::{find_app, now, AppRef, StoreError};
use crate::model::AppName;
use chrono::{DateTime, Utc};

/// A log drain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogDrain {
    /// Stable id.
    pub id: Uuid,
    /// The app whose stream it receives.
    pub app_id: Uuid,
    /// The app's name when read (the journal's `CORRAL_APP`).
    pub app_name: AppName,
    /// The receiver, validated when the drain was added.
    pub url: String,
    /// `d.<uuid>`: written into every message as its HOSTNAME.
    pub token: String,
    /// The journal cursor of the last entry the receiver accepted.
    pub cursor: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed (cursor moves are not changes of the drain).
    pub updated_at: DateTime<Utc>,
}

/// A drain given by id, token or URL, as Heroku's API allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrainRef {
    /// The drain's id.
    Id(Uuid),
    /// Its token (`d.<uuid>`) or its URL.
    Key(String),
}

impl DrainRef {
    /// Reads an already percent-decoded path segment.
    pub(crate) fn parse(s: &str) -> Self {
        match Uuid::parse_str(s) {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Key(s.to_owned()),
        }
    }
}

const SELECT: &str =
    "SELECT d.id, d.app_id, a.name, d.url, d.token, d.cursor, d.created_at, d.updated_at \
     FROM log_drains d JOIN apps a ON a.id = d.app_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<LogDrain, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let app_name: String = r.get(2)?;
    let url: String = r.get(3)?;
    let token: String = r.get(4)?;
    let cursor: Option<String> = r.get(5)?;
    let created_at: DateTime<Utc> = r.get(6)?;
    let updated_at: DateTime<Utc> = r.get(7)?;
    let parse = |s: &str, what: &str| {
        Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("{what} id {s:?}: {e}")))
    };
    Ok((|| {
        Ok(LogDrain {
            id: parse(&id, "log drain")?,
            app_id: parse(&app_id, "app")?,
            app_name: AppName::parse(&app_name)
                .map_err(|e| StoreError::Corrupt(format!("app name: {e}")))?,
            url,
            token,
            cursor,
            created_at,
            updated_at,
        })
    })())
}

fn find_drain(
    conn: &Connection,
    app: &App,
    drain: &DrainRef,
) -> Result<Option<LogDrain>, StoreError> {
    let (condition, key) = match drain {
        DrainRef::Id(id) => ("d.id = ?2", id.to_string()),
        DrainRef::Key(key) => ("(d.url = ?2 OR d.token = ?2)", key.clone()),
    };
    conn.query_row(
        &format!("{SELECT} WHERE d.app_id = ?1 AND {condition}"),
        params![app.id.to_string(), key],
        from_row,
    )
    .optional()?
    .transpose()
}

/// An app's drains, oldest first.
pub(super) fn list_drains(
    conn: &mut Connection,
    app: &AppRef,
) -> Result<Vec<LogDrain>, StoreError> {
    let tx = conn.transaction()?;
    let found = find_app(&tx, app)?;
    let drains = {
        let mut stmt = tx.prepare(&format!(
            "{SELECT} WHERE d.app_id = ?1 ORDER BY d.created_at, d.id"
        ))?;
        let rows = stmt.query_map(params![found.id.to_string()], from_row)?;
        rows.map(|r| r?).collect::<Result<Vec<_>, _>>()?
    };
    tx.commit()?;
    Ok(drains)
}

/// One of an app's drains.
pub(super) fn get_drain(
    conn: &mut Connection,
    app: &AppRef,
    drain: &DrainRef,
) -> Result<LogDrain, StoreError> {
    let tx = conn.transaction()?;
    let found = find_app(&tx, app)?;
    let drain = find_drain(&tx, &found, drain)?.ok_or(StoreError::NotFound("log drain"))?;
    tx.commit()?;
    Ok(drain)
}

/// Adds a drain with a fresh token; `url` must be validated already. An
/// app has each URL once.
pub(super) fn add_drain(
    conn: &mut Connection,
    app: &AppRef,
    url: &str,
) -> Result<LogDrain, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    if find_drain(&tx, &found, &DrainRef::Key(url.to_owned()))?.is_some() {
        return Err(StoreError::Conflict(
            "This app already has a drain with that URL.".to_owned(),
        ));
    }
    let id = Uuid::new_v4();
    let token = format!("d.{}", Uuid::new_v4());
    tx.execute(
        "INSERT INTO log_drains (id, app_id, url, token, cursor, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5)",
        params![id.to_string(), found.id.to_string(), url, token, now()],
    )?;
    let drain = find_drain(&tx, &found, &DrainRef::Id(id))?
        .ok_or_else(|| StoreError::Corrupt(format!("log drain {id} vanished after insert")))?;
    tx.commit()?;
    Ok(drain)
}

/// Removes a drain; the removed one, or `NotFound`.
pub(super) fn remove_drain(
    conn: &mut Connection,
    app: &AppRef,
    drain: &DrainRef,
) -> Result<LogDrain, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let drain = find_drain(&tx, &found, drain)?.ok_or(StoreError::NotFound("log drain"))?;
    tx.execute(
        "DELETE FROM log_drains WHERE id = ?1",
        params![drain.id.to_string()],
    )?;
    tx.commit()?;
    Ok(drain)
}

/// Every drain of every app: what should be running.
pub(super) fn all_drains(conn: &mut Connection) -> Result<Vec<LogDrain>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY d.created_at, d.id"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| r?).collect()
}

/// Records that the receiver accepted everything up to `cursor`. A drain
/// removed meanwhile is left removed.
pub(super) fn save_drain_cursor(
    conn: &mut Connection,
    id: Uuid,
    cursor: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE log_drains SET cursor = ?2 WHERE id = ?1",
        params![id.to_string(), cursor],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{create_app, create_token, SqliteStore};

    #[test]
    fn drains_are_added_found_by_url_token_or_id_and_keep_a_cursor() {
        let store = SqliteStore::open_in_memory().expect("store");
        store
            .call_blocking(|c| {
                let owner = create_token(c, "t", None)?.account;
                let name = AppName::parse("demo")?;
                create_app(c, &name, &owner)?;
                let app = AppRef::Name(name);
                let drain = add_drain(c, &app, "syslog://logs.example.com:514")?;
                assert!(drain.token.starts_with("d.") && drain.cursor.is_none());
                assert!(matches!(
                    add_drain(c, &app, "syslog://logs.example.com:514"),
                    Err(StoreError::Conflict(_))
                ));
                save_drain_cursor(c, drain.id, "s=abc")?;
                let by_url = get_drain(c, &app, &DrainRef::parse("syslog://logs.example.com:514"))?;
                assert_eq!(by_url.cursor.as_deref(), Some("s=abc"));
                let by_token = get_drain(c, &app, &DrainRef::parse(&drain.token))?;
                assert_eq!(by_token.id, drain.id);
                assert_eq!(all_drains(c)?.len(), 1);
                let removed = remove_drain(c, &app, &DrainRef::Id(drain.id))?;
                assert_eq!(removed.id, drain.id);
                assert!(list_drains(c, &app)?.is_empty());
                assert!(matches!(
                    remove_drain(c, &app, &DrainRef::Id(drain.id)),
                    Err(StoreError::NotFound(_))
                ));
                Ok(())
            })
            .expect("drains");
    }
}
