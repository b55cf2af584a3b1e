//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Migrations are append-only: a released step is never edited, a change is a
//! new step. Each step runs in its own transaction with the version bump.

use rusqlite::Connection;

use super::StoreError;

/// The steps, in order; step `i` takes the schema to version `i + 1`.
const STEPS: &[&str] = &[
    // v1: the foundation.
    r#"
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        email       TEXT NOT NULL,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE apps (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        owner_id     TEXT NOT NULL,
        maintenance  INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        released_at  TEXT
    );
    CREATE TABLE config_vars (
        app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name    TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (app_id, name)
    );
    CREATE TABLE releases (
        id                  TEXT PRIMARY KEY,
        app_id              TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        version             INTEGER NOT NULL,
        description         TEXT NOT NULL,
        status              TEXT NOT NULL,
        slug_id             TEXT,
        config_json         TEXT NOT NULL,
        process_types_json  TEXT NOT NULL,
        user_id             TEXT NOT NULL,
        user_email          TEXT NOT NULL,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL,
        UNIQUE (app_id, version)
    );
    CREATE TABLE formation (
        id            TEXT PRIMARY KEY,
        app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        process_type  TEXT NOT NULL,
        quantity      INTEGER NOT NULL,
        size          TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        UNIQUE (app_id, process_type)
    );
    "#,
    // v2: slugs, the code half of a release.
    r#"
    CREATE TABLE slugs (
        id                   TEXT PRIMARY KEY,
        app_id               TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        digest               TEXT,
        expected_digest      TEXT,
        size                 INTEGER,
        process_types_json   TEXT NOT NULL,
        commit_sha           TEXT,
        commit_description   TEXT,
        upload_secret_hash   TEXT,
        created_at           TEXT NOT NULL,
        updated_at           TEXT NOT NULL
    );
    CREATE INDEX slugs_app ON slugs (app_id);
    CREATE INDEX releases_slug ON releases (slug_id);
    "#,
    // v3: what corrald asked systemd to run, joined with systemd's own
    // view of the units to know each dyno's release, size and port.
    r#"
    CREATE TABLE dynos (
        unit             TEXT PRIMARY KEY,
        app_id           TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name             TEXT NOT NULL,
        release_version  INTEGER NOT NULL,
        size             TEXT NOT NULL,
        port             INTEGER,
        command          TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        UNIQUE (app_id, name)
    );
    "#,
    // v4: a dyno may have two units at once (a web dyno rolls: its new
    // generation starts before the old one stops), so (app, name) is no
    // longer unique. SQLite drops a constraint by rebuilding the table.
    r#"
    CREATE TABLE dynos_v4 (
        unit             TEXT PRIMARY KEY,
        app_id           TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name             TEXT NOT NULL,
        release_version  INTEGER NOT NULL,
        size             TEXT NOT NULL,
        port             INTEGER,
        command          TEXT NOT NULL,
        started_at       TEXT NOT NULL
    );
    INSERT INTO dynos_v4 SELECT unit, app_id, name, release_version, size, port, command, started_at FROM dynos;
    DROP TABLE dynos;
    ALTER TABLE dynos_v4 RENAME TO dynos;
    CREATE INDEX dynos_app_name ON dynos (app_id, name);
    "#,
    // v5: per-app settings (model::AppSettings) as a JSON object, so new
    // settings need no migration.
    r#"
    ALTER TABLE apps ADD COLUMN settings_json TEXT NOT NULL DEFAULT '{}';
    "#,
    // v6: custom domains. A hostname routes to one app only, so it is
    // unique across apps; the app's default <app>.<base-domain> is derived
    // from its name, not stored.
    r#"
    CREATE TABLE domains (
        id          TEXT PRIMARY KEY,
        app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        hostname    TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX domains_app ON domains (app_id);
    "#,
    // v7: SNI endpoints, an app's TLS certificates. The private key is
    // stored here as PEM, unencrypted: the database is as secret as the
    // config vars beside it (corrald keeps it 0600 root).
    r#"
    CREATE TABLE sni_endpoints (
        id                 TEXT PRIMARY KEY,
        app_id             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name               TEXT NOT NULL,
        certificate_chain  TEXT NOT NULL,
        private_key        TEXT NOT NULL,
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL,
        UNIQUE (app_id, name)
    );
    "#,
    // v8: builds from `git push`, and the buildpacks an app has set
    // (Heroku's buildpack installations) as a JSON array of URLs or names.
    r#"
    ALTER TABLE apps ADD COLUMN buildpacks_json TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE builds (
        id              TEXT PRIMARY KEY,
        app_id          TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        status          TEXT NOT NULL,
        source_version  TEXT NOT NULL,
        buildpacks_json TEXT NOT NULL DEFAULT '[]',
        slug_id         TEXT,
        release_version INTEGER,
        user_id         TEXT NOT NULL,
        user_email      TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX builds_app ON builds (app_id, created_at);
    "#,
    // v9: log drains. `cursor` is the journal cursor of the last entry
    // the receiver accepted (NULL before the first delivery), so a drain
    // resumes there after an outage or a restart: at-least-once delivery.
    r#"
    CREATE TABLE log_drains (
        id          TEXT PRIMARY KEY,
        app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        url         TEXT NOT NULL,
        token       TEXT NOT NULL UNIQUE,
        cursor      TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        UNIQUE (app_id, url)
    );
    "#,
    // v10: crash runs of formation dynos, so a restart of corrald keeps
    // each dyno's restart backoff. Keyed by app name: a run ends with the
    // app's next release, and the dyno manager drops rows no formation
    // wants any more.
    r#"
    CREATE TABLE dyno_crashes (
        app              TEXT NOT NULL,
        dyno             TEXT NOT NULL,
        count            INTEGER NOT NULL,
        last_at          TEXT NOT NULL,
        release_version  INTEGER NOT NULL,
        last_unit        TEXT NOT NULL,
        PRIMARY KEY (app, dyno)
    );
    "#,
];

/// The schema version this binary migrates to.
pub const SCHEMA_VERSION: u32 = STEPS.len() as u32;

/// The version recorded in the database.
pub(super) fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, step) in STEPS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_databases() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("first run");
        migrate(&mut conn).expect("second run is a no-op");
        assert_eq!(current_version(&conn).expect("version"), SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        assert!(matches!(migrate(&mut conn), Err(StoreError::TooNew { .. })));
    }
}
