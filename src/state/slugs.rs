//! Slugs, deploys and rollbacks: the store side of code changes.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::{
    find_app, find_release, hash_token, insert_release, now, read_config, records, write_config,
    Account, AppRef, Release, ReleaseRef, ReleaseStatus, StoreError,
};
use crate::model::{AppName, ProcessType, SlugDigest};

/// A slug record: the metadata of a compiled app; its bytes live in the
/// slug store under `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slug {
    /// Stable id.
    pub id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// The app's name when read.
    pub app_name: AppName,
    /// The sha256 of the uploaded bytes; `None` until uploaded.
    pub digest: Option<SlugDigest>,
    /// The checksum the creator announced, verified at upload.
    pub expected: Option<SlugDigest>,
    /// Size in bytes, once uploaded.
    pub size: Option<u64>,
    /// Commands by process type.
    pub process_types: BTreeMap<ProcessType, String>,
    /// The commit it was built from.
    pub commit: Option<String>,
    /// That commit's message.
    pub commit_description: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last changed (uploaded).
    pub updated_at: DateTime<Utc>,
}

/// What `POST /apps/{app}/slugs` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewSlug {
    /// Commands by process type.
    pub process_types: BTreeMap<ProcessType, String>,
    /// The checksum the upload must match.
    pub expected: Option<SlugDigest>,
    /// The commit it was built from.
    pub commit: Option<String>,
    /// That commit's message.
    pub commit_description: Option<String>,
}

const SLUG_SELECT: &str = "SELECT s.id, s.app_id, a.name, s.digest, s.expected_digest, s.size, \
     s.process_types_json, s.commit_sha, s.commit_description, s.created_at, s.updated_at \
     FROM slugs s JOIN apps a ON a.id = s.app_id";

fn slug_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Slug, StoreError>> {
    let id: String = r.get(0)?;
    let app_id: String = r.get(1)?;
    let app_name: String = r.get(2)?;
    let digest: Option<String> = r.get(3)?;
    let expected: Option<String> = r.get(4)?;
    let size: Option<i64> = r.get(5)?;
    let types_json: String = r.get(6)?;
    let commit: Option<String> = r.get(7)?;
    let commit_description: Option<String> = r.get(8)?;
    let created_at: DateTime<Utc> = r.get(9)?;
    let updated_at: DateTime<Utc> = r.get(10)?;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    let digest_of = |s: Option<String>| {
        s.map(|s| SlugDigest::parse(&s).map_err(|e| corrupt("slug digest", &e)))
            .transpose()
    };
    Ok((|| {
        Ok(Slug {
            id: Uuid::parse_str(&id).map_err(|e| corrupt("slug id", &e))?,
            app_id: Uuid::parse_str(&app_id).map_err(|e| corrupt("app id", &e))?,
            app_name: AppName::parse(&app_name).map_err(|e| corrupt("app name", &e))?,
            digest: digest_of(digest)?,
            expected: digest_of(expected)?,
            size: size.and_then(|s| u64::try_from(s).ok()),
            process_types: serde_json::from_str(&types_json)
                .map_err(|e| corrupt("process types", &e))?,
            commit,
            commit_description,
            created_at,
            updated_at,
        })
    })())
}

fn find_slug(conn: &Connection, app: &records::App, id: Uuid) -> Result<Slug, StoreError> {
    conn.query_row(
        &format!("{SLUG_SELECT} WHERE s.app_id = ?1 AND s.id = ?2"),
        params![app.id.to_string(), id.to_string()],
        slug_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("slug"))?
}

/// Records a slug waiting for its upload; returns it with the one-time
/// secret that authorizes the upload (only its hash is stored).
pub(super) fn create_slug(
    conn: &mut Connection,
    app: &AppRef,
    new: &NewSlug,
) -> Result<(Slug, String), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let made = create_slug_in(&tx, app, new)?;
    tx.commit()?;
    Ok(made)
}

/// [`create_slug`] inside the caller's transaction.
pub(super) fn create_slug_in(
    tx: &Connection,
    app: &AppRef,
    new: &NewSlug,
) -> Result<(Slug, String), StoreError> {
    let found = find_app(tx, app)?;
    let id = Uuid::new_v4();
    let mut secret_bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret_bytes);
    let secret = hex::encode(secret_bytes);
    let types_json = serde_json::to_string(&new.process_types)
        .map_err(|e| StoreError::Corrupt(format!("process types: {e}")))?;
    let at = now();
    tx.execute(
        "INSERT INTO slugs (id, app_id, expected_digest, process_types_json, commit_sha, commit_description, upload_secret_hash, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            id.to_string(),
            found.id.to_string(),
            new.expected.map(|d| d.to_hex()),
            types_json,
            new.commit,
            new.commit_description,
            hash_token(&secret),
            at
        ],
    )?;
    let slug = find_slug(tx, &found, id)?;
    Ok((slug, secret))
}

/// One slug of an app.
pub(super) fn get_slug(conn: &mut Connection, app: &AppRef, id: Uuid) -> Result<Slug, StoreError> {
    let found = find_app(conn, app)?;
    find_slug(conn, &found, id)
}

/// The slug an upload URL names, if `secret` is its upload secret and it
/// has not been uploaded yet. Any mismatch is "not found": the URL is the
/// credential, and a wrong one should reveal nothing.
pub(super) fn slug_for_upload(
    conn: &mut Connection,
    id: Uuid,
    secret: &str,
) -> Result<Slug, StoreError> {
    conn.query_row(
        &format!(
            "{SLUG_SELECT} WHERE s.id = ?1 AND s.upload_secret_hash = ?2 AND s.digest IS NULL"
        ),
        params![id.to_string(), hash_token(secret)],
        slug_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("slug upload"))?
}

/// Marks a slug uploaded with the digest and size the slug store computed.
pub(super) fn complete_upload(
    conn: &mut Connection,
    id: Uuid,
    digest: SlugDigest,
    size: u64,
) -> Result<Slug, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let slug = complete_upload_in(&tx, id, digest, size)?;
    tx.commit()?;
    Ok(slug)
}

/// [`complete_upload`] inside the caller's transaction.
pub(super) fn complete_upload_in(
    tx: &Connection,
    id: Uuid,
    digest: SlugDigest,
    size: u64,
) -> Result<Slug, StoreError> {
    let changed = tx.execute(
        "UPDATE slugs SET digest = ?1, size = ?2, upload_secret_hash = NULL, updated_at = ?3
         WHERE id = ?4 AND digest IS NULL",
        params![
            digest.to_hex(),
            i64::try_from(size).unwrap_or(i64::MAX),
            now(),
            id.to_string()
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict(
            "This slug was uploaded already; create a new slug to upload other bytes.".to_owned(),
        ));
    }
    let slug = tx
        .query_row(
            &format!("{SLUG_SELECT} WHERE s.id = ?1"),
            params![id.to_string()],
            slug_from_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound("slug"))??;
    Ok(slug)
}

/// The digest of a release's slug, if it has one.
pub(super) fn release_slug_digest(
    conn: &Connection,
    release: &Release,
) -> Result<Option<SlugDigest>, StoreError> {
    let Some(slug_id) = release.slug_id else {
        return Ok(None);
    };
    let digest: Option<Option<String>> = conn
        .query_row(
            "SELECT digest FROM slugs WHERE id = ?1",
            params![slug_id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    digest
        .flatten()
        .map(|d| {
            SlugDigest::parse(&d).map_err(|e| StoreError::Corrupt(format!("slug digest: {e}")))
        })
        .transpose()
}

/// Makes sure every process type of `types` has a formation entry, and that
/// types a release no longer declares are gone, as Heroku does on deploy.
/// A new `web` type starts with one dyno, everything else with none;
/// `release` is the release phase, never a formation entry.
fn sync_formation(
    tx: &Connection,
    app: &records::App,
    types: &BTreeMap<ProcessType, String>,
) -> Result<(), StoreError> {
    let at = now();
    for process_type in types.keys().filter(|t| t.is_scalable()) {
        let quantity = i64::from(process_type.is_web());
        tx.execute(
            "INSERT INTO formation (id, app_id, process_type, quantity, size, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'standard-1X', ?5, ?5)
             ON CONFLICT (app_id, process_type) DO NOTHING",
            params![
                Uuid::new_v4().to_string(),
                app.id.to_string(),
                process_type.as_str(),
                quantity,
                at
            ],
        )?;
    }
    let mut stmt = tx.prepare("SELECT process_type FROM formation WHERE app_id = ?1")?;
    let existing: Vec<String> = stmt
        .query_map(params![app.id.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in existing {
        let declared = types
            .keys()
            .any(|t| t.as_str() == name && t.as_str() != "release");
        if !declared {
            tx.execute(
                "DELETE FROM formation WHERE app_id = ?1 AND process_type = ?2",
                params![app.id.to_string(), name],
            )?;
        }
    }
    Ok(())
}

/// Releases an uploaded slug with the app's current config vars.
pub(super) fn deploy_slug(
    conn: &mut Connection,
    app: &AppRef,
    slug_id: Uuid,
    description: Option<&str>,
    user: &Account,
) -> Result<Release, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let release = deploy_slug_in(&tx, app, slug_id, description, user)?;
    tx.commit()?;
    Ok(release)
}

/// [`deploy_slug`] inside the caller's transaction.
pub(super) fn deploy_slug_in(
    tx: &Connection,
    app: &AppRef,
    slug_id: Uuid,
    description: Option<&str>,
    user: &Account,
) -> Result<Release, StoreError> {
    let found = find_app(tx, app)?;
    let slug = find_slug(tx, &found, slug_id)?;
    if slug.digest.is_none() {
        return Err(StoreError::Conflict(
            "This slug has not been uploaded yet; PUT its bytes to the slug's blob URL first."
                .to_owned(),
        ));
    }
    let config = read_config(tx, found.id)?;
    let description = match (description, &slug.commit) {
        (Some(d), _) if !d.trim().is_empty() => d.trim().to_owned(),
        (_, Some(commit)) => format!("Deploy {}", commit.chars().take(7).collect::<String>()),
        _ => "Deploy".to_owned(),
    };
    let version = insert_release(
        tx,
        found.id,
        &description,
        &config,
        Some(slug.id),
        &slug.process_types,
        user,
    )?;
    sync_formation(tx, &found, &slug.process_types)?;
    let release = find_release(tx, &found, ReleaseRef::Version(version))?;
    Ok(release)
}

/// Heroku's rollback: a new release with the code *and* config vars of
/// `target`, which must have succeeded and carry a slug.
pub(super) fn rollback(
    conn: &mut Connection,
    app: &AppRef,
    target: ReleaseRef,
    user: &Account,
) -> Result<Release, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = find_app(&tx, app)?;
    let target = find_release(&tx, &found, target)?;
    if target.status != ReleaseStatus::Succeeded || target.slug_id.is_none() {
        return Err(StoreError::Conflict(format!(
            "Release {} cannot be rolled back to: only succeeded releases with code can be.",
            target.version
        )));
    }
    write_config(&tx, found.id, &target.config)?;
    let version = insert_release(
        &tx,
        found.id,
        &format!("Rollback to {}", target.version),
        &target.config,
        target.slug_id,
        &target.process_types,
        user,
    )?;
    sync_formation(&tx, &found, &target.process_types)?;
    let release = find_release(&tx, &found, ReleaseRef::Version(version))?;
    tx.commit()?;
    Ok(release)
}

/// The slugs garbage collection must keep: those of each app's newest
/// `retain` releases and its current release, those of the releases that
/// recorded dynos run, and uploaded slugs that no release uses yet but were
/// made within `fresh` (a deploy in progress).
pub(super) fn live_slug_digests(
    conn: &mut Connection,
    retain: u32,
    fresh: chrono::Duration,
) -> Result<HashSet<SlugDigest>, StoreError> {
    let cutoff = Utc::now() - fresh;
    let mut stmt = conn.prepare(
        "SELECT DISTINCT s.digest FROM slugs s WHERE s.digest IS NOT NULL AND (
            s.id IN (
                SELECT r.slug_id FROM releases r
                WHERE r.slug_id IS NOT NULL AND r.version > (
                    SELECT MAX(m.version) FROM releases m WHERE m.app_id = r.app_id
                ) - ?1
            )
            OR s.id IN (
                SELECT r.slug_id FROM releases r
                WHERE r.slug_id IS NOT NULL AND r.status = 'succeeded' AND r.version = (
                    SELECT MAX(c.version) FROM releases c
                    WHERE c.app_id = r.app_id AND c.status = 'succeeded'
                )
            )
            OR (s.created_at > ?2 AND s.id NOT IN (
                SELECT slug_id FROM releases WHERE slug_id IS NOT NULL))
            OR s.id IN (
                SELECT r.slug_id FROM releases r
                JOIN dynos d ON d.app_id = r.app_id AND d.release_version = r.version
            )
        )",
    )?;
    let rows = stmt.query_map(params![retain, cutoff], |r| r.get::<_, String>(0))?;
    let mut live = HashSet::new();
    for row in rows {
        let hex = row?;
        live.insert(
            SlugDigest::parse(&hex)
                .map_err(|e| StoreError::Corrupt(format!("slug digest: {e}")))?,
        );
    }
    Ok(live)
}
