//! [`SqliteStore`]: the [`Store`] over one SQLite file, each operation one transaction on tokio's blocking pool.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use uuid::Uuid;

use super::store::{BuildRelease, BuiltSlug, ConfigPatch, ReleaseWithSlug, SharedStore, Store};
use super::{
    builds, crashes, domains, drains, dynos, migrations, slugs, sni, Account, App, AppRef, Build,
    BuildStatus, CrashRecord, DesiredApp, Domain, DomainRef, DrainRef, DynoRecord, FormationEntry,
    FormationUpdate, LogDrain, NewSlug, NewToken, Release, ReleaseRef, ReleaseStatus, RouteApp,
    Slug, SniEndpoint, SniEndpointRef, SniView, StoreError,
};
use crate::model::{
    AppName, ConfigVars, DynoName, Hostname, ProcessType, ReleaseVersion, SlugDigest,
};
use crate::tls::PemPair;

/// The SQLite store, cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// An in-memory database, for tests.
    #[cfg(test)]
    pub(crate) fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        // WAL lets `corrald tokens create` write while the daemon runs;
        // synchronous=FULL makes a commit durable before the API answers.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// This store as the rest of Corral holds it.
    pub(crate) fn shared(self) -> SharedStore {
        Arc::new(self)
    }

    /// Creates an account with a fresh token on the current thread, for
    /// `corrald tokens create` and test harnesses that have no runtime.
    pub fn create_token_blocking(
        &self,
        name: &str,
        email: Option<&str>,
    ) -> Result<NewToken, StoreError> {
        self.call_blocking(|c| super::create_token(c, name, email))
    }

    /// Runs `f` with the connection on the blocking pool, so the async
    /// runtime never waits on the disk.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves SQLite itself consistent
            // (the transaction rolls back on drop), so the poison is ignored.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    pub(super) fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// The steps of [`release_build`] in order, so a test can stop the process
/// between any two of them and find the transaction left nothing behind.
#[cfg(test)]
pub(super) const RELEASE_BUILD_STEPS: [&str; 4] = [
    "create_slug",
    "complete_upload",
    "add_default_config",
    "deploy_slug",
];

/// In tests, `CORRAL_TEST_ABORT_AFTER` names a step of [`release_build`]
/// after which the process aborts, as a SIGKILL or power loss would.
#[cfg(test)]
fn crash_point(step: &str) {
    if std::env::var("CORRAL_TEST_ABORT_AFTER").as_deref() == Ok(step) {
        std::process::abort();
    }
}

#[cfg(not(test))]
fn crash_point(_step: &str) {}

/// A build's slug, default config vars and release in one transaction: a
/// crash at any point leaves either no trace of the release or all of it.
pub(super) fn release_build(
    conn: &mut Connection,
    app: &AppRef,
    built: &BuiltSlug,
    user: &Account,
) -> Result<BuildRelease, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (slug, _) = slugs::create_slug_in(&tx, app, &built.slug)?;
    crash_point("create_slug");
    let slug = slugs::complete_upload_in(&tx, slug.id, built.digest, built.size)?;
    crash_point("complete_upload");
    builds::add_default_config_in(&tx, app, &built.default_config)?;
    crash_point("add_default_config");
    let release = slugs::deploy_slug_in(&tx, app, slug.id, None, user)?;
    crash_point("deploy_slug");
    tx.commit()?;
    Ok(BuildRelease { slug, release })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    #[cfg(test)]
    async fn create_token(
        &self,
        name: String,
        email: Option<String>,
    ) -> Result<NewToken, StoreError> {
        self.call(move |c| super::create_token(c, &name, email.as_deref()))
            .await
    }

    async fn config_account(&self) -> Result<Account, StoreError> {
        self.call(super::config_account).await
    }

    async fn authenticate(&self, secret: String) -> Result<Option<Account>, StoreError> {
        self.call(move |c| super::authenticate(c, &secret)).await
    }

    async fn schema_version(&self) -> Result<u32, StoreError> {
        self.call(|c| migrations::current_version(c)).await
    }

    async fn get_app(&self, app: AppRef) -> Result<App, StoreError> {
        self.call(move |c| super::get_app(c, &app)).await
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.call(super::list_apps).await
    }

    async fn create_app(
        &self,
        name: AppName,
        owner: Account,
    ) -> Result<(App, Release), StoreError> {
        self.call(move |c| super::create_app(c, &name, &owner))
            .await
    }

    async fn update_app(
        &self,
        app: AppRef,
        new_name: Option<AppName>,
        maintenance: Option<bool>,
    ) -> Result<App, StoreError> {
        self.call(move |c| super::update_app(c, &app, new_name.as_ref(), maintenance))
            .await
    }

    async fn update_app_settings(
        &self,
        app: AppRef,
        patch: serde_json::Value,
    ) -> Result<App, StoreError> {
        self.call(move |c| super::update_app_settings(c, &app, &patch))
            .await
    }

    async fn delete_app(&self, app: AppRef) -> Result<App, StoreError> {
        self.call(move |c| super::delete_app(c, &app)).await
    }

    async fn get_config(&self, app: AppRef) -> Result<ConfigVars, StoreError> {
        self.call(move |c| super::get_config(c, &app)).await
    }

    async fn patch_config(
        &self,
        app: AppRef,
        patch: ConfigPatch,
        user: Account,
    ) -> Result<(ConfigVars, Option<Release>), StoreError> {
        self.call(move |c| super::patch_config(c, &app, &patch, &user))
            .await
    }

    async fn get_release(&self, app: AppRef, release: ReleaseRef) -> Result<Release, StoreError> {
        self.call(move |c| super::get_release(c, &app, release))
            .await
    }

    async fn list_releases(&self, app: AppRef) -> Result<Vec<Release>, StoreError> {
        self.call(move |c| super::list_releases(c, &app)).await
    }

    async fn rollback(
        &self,
        app: AppRef,
        target: ReleaseRef,
        user: Account,
    ) -> Result<Release, StoreError> {
        self.call(move |c| slugs::rollback(c, &app, target, &user))
            .await
    }

    async fn pending_releases(&self) -> Result<Vec<Release>, StoreError> {
        self.call(builds::pending_releases).await
    }

    async fn release_with_slug(
        &self,
        app: AppRef,
        release: ReleaseRef,
    ) -> Result<ReleaseWithSlug, StoreError> {
        self.call(move |c| {
            // One read transaction: the release and its slug as of one moment.
            let tx = c.transaction()?;
            let found = super::find_app(&tx, &app)?;
            let release = super::find_release(&tx, &found, release)?;
            let slug = slugs::release_slug_digest(&tx, &release)?;
            Ok(ReleaseWithSlug {
                app: found,
                release,
                slug,
            })
        })
        .await
    }

    async fn settle_release(
        &self,
        app: AppRef,
        version: ReleaseVersion,
        status: ReleaseStatus,
    ) -> Result<Release, StoreError> {
        self.call(move |c| builds::settle_release(c, &app, version, status))
            .await
    }

    async fn list_formation(&self, app: AppRef) -> Result<Vec<FormationEntry>, StoreError> {
        self.call(move |c| super::list_formation(c, &app)).await
    }

    async fn get_formation(
        &self,
        app: AppRef,
        process_type: ProcessType,
    ) -> Result<FormationEntry, StoreError> {
        self.call(move |c| super::get_formation(c, &app, &process_type))
            .await
    }

    async fn update_formation(
        &self,
        app: AppRef,
        updates: Vec<FormationUpdate>,
    ) -> Result<Vec<FormationEntry>, StoreError> {
        self.call(move |c| super::update_formation(c, &app, &updates))
            .await
    }

    async fn create_slug(&self, app: AppRef, new: NewSlug) -> Result<(Slug, String), StoreError> {
        self.call(move |c| slugs::create_slug(c, &app, &new)).await
    }

    async fn get_slug(&self, app: AppRef, id: Uuid) -> Result<Slug, StoreError> {
        self.call(move |c| slugs::get_slug(c, &app, id)).await
    }

    async fn slug_for_upload(&self, id: Uuid, secret: String) -> Result<Slug, StoreError> {
        self.call(move |c| slugs::slug_for_upload(c, id, &secret))
            .await
    }

    async fn complete_upload(
        &self,
        id: Uuid,
        digest: SlugDigest,
        size: u64,
    ) -> Result<Slug, StoreError> {
        self.call(move |c| slugs::complete_upload(c, id, digest, size))
            .await
    }

    async fn deploy_slug(
        &self,
        app: AppRef,
        slug: Uuid,
        description: Option<String>,
        user: Account,
    ) -> Result<Release, StoreError> {
        self.call(move |c| slugs::deploy_slug(c, &app, slug, description.as_deref(), &user))
            .await
    }

    async fn live_slug_digests(
        &self,
        retain: u32,
        fresh: chrono::Duration,
    ) -> Result<HashSet<SlugDigest>, StoreError> {
        self.call(move |c| slugs::live_slug_digests(c, retain, fresh))
            .await
    }

    async fn get_buildpacks(&self, app: AppRef) -> Result<Vec<String>, StoreError> {
        self.call(move |c| builds::get_buildpacks(c, &app)).await
    }

    async fn set_buildpacks(
        &self,
        app: AppRef,
        buildpacks: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        self.call(move |c| builds::set_buildpacks(c, &app, &buildpacks))
            .await
    }

    async fn build_inputs(&self, app: AppRef) -> Result<(Vec<String>, ConfigVars), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            Ok((
                builds::get_buildpacks(&tx, &app)?,
                super::get_config(&tx, &app)?,
            ))
        })
        .await
    }

    async fn create_build(
        &self,
        app: AppRef,
        source_version: String,
        user: Account,
    ) -> Result<Build, StoreError> {
        self.call(move |c| builds::create_build(c, &app, &source_version, &user))
            .await
    }

    async fn release_build(
        &self,
        app: AppRef,
        built: BuiltSlug,
        user: Account,
    ) -> Result<BuildRelease, StoreError> {
        self.call(move |c| release_build(c, &app, &built, &user))
            .await
    }

    async fn finish_build(
        &self,
        id: Uuid,
        status: BuildStatus,
        buildpacks: Vec<String>,
        slug: Option<Uuid>,
        release: Option<ReleaseVersion>,
    ) -> Result<(), StoreError> {
        self.call(move |c| builds::finish_build(c, id, status, &buildpacks, slug, release))
            .await
    }

    async fn fail_pending_builds(&self) -> Result<usize, StoreError> {
        self.call(builds::fail_pending_builds).await
    }

    async fn get_build(&self, app: AppRef, id: Uuid) -> Result<Build, StoreError> {
        self.call(move |c| builds::get_build(c, &app, id)).await
    }

    async fn list_builds(&self, app: AppRef) -> Result<Vec<Build>, StoreError> {
        self.call(move |c| builds::list_builds(c, &app)).await
    }

    async fn list_domains(&self, app: AppRef) -> Result<(App, Vec<Domain>), StoreError> {
        self.call(move |c| domains::list_domains(c, &app)).await
    }

    async fn get_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
    ) -> Result<(App, Option<Domain>), StoreError> {
        self.call(move |c| domains::get_domain(c, &app, &domain))
            .await
    }

    async fn add_domain(
        &self,
        app: AppRef,
        hostname: Hostname,
    ) -> Result<(App, Domain), StoreError> {
        self.call(move |c| domains::add_domain(c, &app, &hostname))
            .await
    }

    async fn remove_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
    ) -> Result<(App, Option<Domain>), StoreError> {
        self.call(move |c| domains::remove_domain(c, &app, &domain))
            .await
    }

    async fn route_apps(&self) -> Result<Vec<RouteApp>, StoreError> {
        self.call(domains::route_apps).await
    }

    async fn list_sni_endpoints(
        &self,
        app: AppRef,
    ) -> Result<SniView<Vec<SniEndpoint>>, StoreError> {
        self.call(move |c| sni::list_sni_endpoints(c, &app)).await
    }

    async fn get_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
    ) -> Result<SniView<SniEndpoint>, StoreError> {
        self.call(move |c| sni::get_sni_endpoint(c, &app, &which))
            .await
    }

    async fn add_sni_endpoint(
        &self,
        app: AppRef,
        pem: PemPair,
    ) -> Result<SniView<SniEndpoint>, StoreError> {
        self.call(move |c| sni::add_sni_endpoint(c, &app, &pem))
            .await
    }

    async fn update_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
        pem: PemPair,
    ) -> Result<SniView<SniEndpoint>, StoreError> {
        self.call(move |c| sni::update_sni_endpoint(c, &app, &which, &pem))
            .await
    }

    async fn remove_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
    ) -> Result<SniView<SniEndpoint>, StoreError> {
        self.call(move |c| sni::remove_sni_endpoint(c, &app, &which))
            .await
    }

    async fn list_drains(&self, app: AppRef) -> Result<Vec<LogDrain>, StoreError> {
        self.call(move |c| drains::list_drains(c, &app)).await
    }

    async fn get_drain(&self, app: AppRef, drain: DrainRef) -> Result<LogDrain, StoreError> {
        self.call(move |c| drains::get_drain(c, &app, &drain)).await
    }

    async fn add_drain(&self, app: AppRef, url: String) -> Result<LogDrain, StoreError> {
        self.call(move |c| drains::add_drain(c, &app, &url)).await
    }

    async fn remove_drain(&self, app: AppRef, drain: DrainRef) -> Result<LogDrain, StoreError> {
        self.call(move |c| drains::remove_drain(c, &app, &drain))
            .await
    }

    async fn all_drains(&self) -> Result<Vec<LogDrain>, StoreError> {
        self.call(drains::all_drains).await
    }

    async fn save_drain_cursor(&self, id: Uuid, cursor: String) -> Result<(), StoreError> {
        self.call(move |c| drains::save_drain_cursor(c, id, &cursor))
            .await
    }

    async fn desired_apps(&self) -> Result<Vec<DesiredApp>, StoreError> {
        self.call(dynos::desired_apps).await
    }

    async fn desired_app(&self, app_id: Uuid) -> Result<Option<DesiredApp>, StoreError> {
        // The same query as for every app keeps one definition of "what an
        // app should run"; there are few apps per host.
        self.call(move |c| {
            Ok(dynos::desired_apps(c)?
                .into_iter()
                .find(|d| d.app_id == app_id))
        })
        .await
    }

    async fn dyno_records(&self) -> Result<Vec<DynoRecord>, StoreError> {
        self.call(|c| dynos::dyno_records(c, None)).await
    }

    async fn dyno_record(&self, unit: String) -> Result<Option<DynoRecord>, StoreError> {
        self.call(move |c| {
            Ok(dynos::dyno_records(c, None)?
                .into_iter()
                .find(|r| r.unit == unit))
        })
        .await
    }

    async fn app_dynos(&self, app: AppRef) -> Result<(App, Vec<DynoRecord>), StoreError> {
        self.call(move |c| dynos::app_dynos(c, &app)).await
    }

    async fn record_dyno(&self, record: DynoRecord) -> Result<(), StoreError> {
        self.call(move |c| dynos::record_dyno(c, &record)).await
    }

    async fn forget_dyno(&self, unit: String) -> Result<(), StoreError> {
        self.call(move |c| dynos::forget_dyno(c, &unit)).await
    }

    async fn recorded_ports(&self) -> Result<HashSet<u16>, StoreError> {
        self.call(dynos::recorded_ports).await
    }

    async fn dyno_crashes(&self) -> Result<Vec<CrashRecord>, StoreError> {
        self.call(crashes::dyno_crashes).await
    }

    async fn record_crash(&self, crash: CrashRecord) -> Result<(), StoreError> {
        self.call(move |c| crashes::record_crash(c, &crash)).await
    }

    async fn forget_crashes(&self, slots: Vec<(AppName, DynoName)>) -> Result<(), StoreError> {
        self.call(move |c| crashes::forget_crashes(c, &slots)).await
    }
}
