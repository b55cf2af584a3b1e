//! The store's interface: every operation the rest of Corral needs from its state, each one transaction.
//!
//! Callers hold a [`SharedStore`] and never see SQL, a connection or a
//! transaction: the SQLite implementation ([`super::SqliteStore`]) is one
//! implementation of this trait, and a PostgreSQL one is meant to be a
//! second without touching any caller. So arguments are owned model values
//! (an implementation may move them to another thread or task), results
//! are the plain records of [`super::records`], and errors are
//! [`StoreError`]s whose kinds (not found, conflict, invalid) the API maps
//! to HTTP.
//!
//! An operation that changes several things, such as a config change and
//! the release it makes, or a build's slug, default config vars and
//! release, does so in one transaction: after a crash either all of it is
//! there or none of it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

#[cfg(test)]
use super::NewToken;
use super::{
    Account, App, AppRef, Build, BuildStatus, CrashRecord, DesiredApp, Domain, DomainRef, DrainRef,
    DynoRecord, FormationEntry, FormationUpdate, LogDrain, NewSlug, Release, ReleaseRef,
    ReleaseStatus, RouteApp, Slug, SniEndpoint, SniEndpointRef, SniView, StoreError,
};
use crate::model::{
    AppName, ConfigVarName, ConfigVars, DynoName, Hostname, ProcessType, ReleaseVersion, SlugDigest,
};
use crate::tls::PemPair;

/// The store as the rest of Corral holds it: cheap to clone, shared by tasks.
pub(crate) type SharedStore = Arc<dyn Store>;

/// A change to config vars: a name set to a value, or removed (`None`).
pub(crate) type ConfigPatch = BTreeMap<ConfigVarName, Option<String>>;

/// A build's slug as the build service made it, ready to be released.
#[derive(Debug, Clone)]
pub(crate) struct BuiltSlug {
    /// What the buildpacks produced: process types, commit.
    pub slug: NewSlug,
    /// The digest of the packed slug in the slug store.
    pub digest: SlugDigest,
    /// The packed slug's size in bytes.
    pub size: u64,
    /// Config vars `bin/release` asks for, set only where the app has none.
    pub default_config: BTreeMap<ConfigVarName, String>,
}

/// What releasing a build made.
#[derive(Debug, Clone)]
pub(crate) struct BuildRelease {
    /// The slug, uploaded.
    pub slug: Slug,
    /// The new release (pending when the app has a release phase).
    pub release: Release,
}

/// A release with its app and the digest of its slug, read together.
#[derive(Debug, Clone)]
pub(crate) struct ReleaseWithSlug {
    /// The app.
    pub app: App,
    /// The release.
    pub release: Release,
    /// The digest of its slug, if it has one.
    pub slug: Option<SlugDigest>,
}

/// Every operation on Corral's state. Each call is one transaction.
#[async_trait::async_trait]
pub(crate) trait Store: Send + Sync + std::fmt::Debug {
    // --- accounts ---------------------------------------------------------

    /// Creates an account with a fresh bearer token (shown once).
    #[cfg(test)]
    async fn create_token(
        &self,
        name: String,
        email: Option<String>,
    ) -> Result<NewToken, StoreError>;
    /// The account corrald itself acts as (declared apps, the release phase).
    async fn config_account(&self) -> Result<Account, StoreError>;
    /// The account a bearer token belongs to, if any.
    async fn authenticate(&self, secret: String) -> Result<Option<Account>, StoreError>;
    /// The schema version on disk.
    async fn schema_version(&self) -> Result<u32, StoreError>;

    // --- apps -------------------------------------------------------------

    /// One app.
    async fn get_app(&self, app: AppRef) -> Result<App, StoreError>;
    /// Every app, by name.
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    /// Creates an app with its v1 "Initial release".
    async fn create_app(&self, name: AppName, owner: Account)
        -> Result<(App, Release), StoreError>;
    /// Renames an app and/or turns maintenance mode on or off.
    async fn update_app(
        &self,
        app: AppRef,
        new_name: Option<AppName>,
        maintenance: Option<bool>,
    ) -> Result<App, StoreError>;
    /// Merges a JSON patch into the app's settings.
    async fn update_app_settings(
        &self,
        app: AppRef,
        patch: serde_json::Value,
    ) -> Result<App, StoreError>;
    /// Deletes an app and everything it owns.
    async fn delete_app(&self, app: AppRef) -> Result<App, StoreError>;

    // --- config vars and releases -----------------------------------------

    /// An app's current config vars.
    async fn get_config(&self, app: AppRef) -> Result<ConfigVars, StoreError>;
    /// Applies a patch; a patch that changes something makes a release.
    async fn patch_config(
        &self,
        app: AppRef,
        patch: ConfigPatch,
        user: Account,
    ) -> Result<(ConfigVars, Option<Release>), StoreError>;
    /// One release.
    async fn get_release(&self, app: AppRef, release: ReleaseRef) -> Result<Release, StoreError>;
    /// Every release of an app, oldest first.
    async fn list_releases(&self, app: AppRef) -> Result<Vec<Release>, StoreError>;
    /// A new release with the slug and config vars of `target`.
    async fn rollback(
        &self,
        app: AppRef,
        target: ReleaseRef,
        user: Account,
    ) -> Result<Release, StoreError>;
    /// Releases whose release phase has not run yet, oldest first.
    async fn pending_releases(&self) -> Result<Vec<Release>, StoreError>;
    /// A release with its app and its slug's digest (what a release phase
    /// runs, what a rollback needs to find in the slug store).
    async fn release_with_slug(
        &self,
        app: AppRef,
        release: ReleaseRef,
    ) -> Result<ReleaseWithSlug, StoreError>;
    /// Settles a pending release as succeeded or failed.
    async fn settle_release(
        &self,
        app: AppRef,
        version: ReleaseVersion,
        status: ReleaseStatus,
    ) -> Result<Release, StoreError>;

    // --- formation --------------------------------------------------------

    /// An app's formation, one entry per process type.
    async fn list_formation(&self, app: AppRef) -> Result<Vec<FormationEntry>, StoreError>;
    /// One process type's formation entry.
    async fn get_formation(
        &self,
        app: AppRef,
        process_type: ProcessType,
    ) -> Result<FormationEntry, StoreError>;
    /// Applies every update or none.
    async fn update_formation(
        &self,
        app: AppRef,
        updates: Vec<FormationUpdate>,
    ) -> Result<Vec<FormationEntry>, StoreError>;

    // --- slugs ------------------------------------------------------------

    /// Records a slug waiting for its upload, with its one-time upload secret.
    async fn create_slug(&self, app: AppRef, new: NewSlug) -> Result<(Slug, String), StoreError>;
    /// One slug of an app.
    async fn get_slug(&self, app: AppRef, id: Uuid) -> Result<Slug, StoreError>;
    /// The slug an upload URL names, if the secret matches and it is not uploaded.
    async fn slug_for_upload(&self, id: Uuid, secret: String) -> Result<Slug, StoreError>;
    /// Marks a slug uploaded with the digest and size the slug store computed.
    async fn complete_upload(
        &self,
        id: Uuid,
        digest: SlugDigest,
        size: u64,
    ) -> Result<Slug, StoreError>;
    /// Releases an uploaded slug with the app's current config vars.
    async fn deploy_slug(
        &self,
        app: AppRef,
        slug: Uuid,
        description: Option<String>,
        user: Account,
    ) -> Result<Release, StoreError>;
    /// The slugs garbage collection must keep.
    async fn live_slug_digests(
        &self,
        retain: u32,
        fresh: chrono::Duration,
    ) -> Result<HashSet<SlugDigest>, StoreError>;

    // --- builds -----------------------------------------------------------

    /// An app's buildpacks, in order.
    async fn get_buildpacks(&self, app: AppRef) -> Result<Vec<String>, StoreError>;
    /// Replaces an app's buildpacks.
    async fn set_buildpacks(
        &self,
        app: AppRef,
        buildpacks: Vec<String>,
    ) -> Result<Vec<String>, StoreError>;
    /// What a build starts from: the app's buildpacks and config vars, read together.
    async fn build_inputs(&self, app: AppRef) -> Result<(Vec<String>, ConfigVars), StoreError>;
    /// Records a build that is starting.
    async fn create_build(
        &self,
        app: AppRef,
        source_version: String,
        user: Account,
    ) -> Result<Build, StoreError>;
    /// Records a build's slug, its default config vars and its release.
    async fn release_build(
        &self,
        app: AppRef,
        built: BuiltSlug,
        user: Account,
    ) -> Result<BuildRelease, StoreError>;
    /// Records how a build ended.
    async fn finish_build(
        &self,
        id: Uuid,
        status: BuildStatus,
        buildpacks: Vec<String>,
        slug: Option<Uuid>,
        release: Option<ReleaseVersion>,
    ) -> Result<(), StoreError>;
    /// Marks builds a previous corrald left running as failed.
    async fn fail_pending_builds(&self) -> Result<usize, StoreError>;
    /// One build.
    async fn get_build(&self, app: AppRef, id: Uuid) -> Result<Build, StoreError>;
    /// Every build of an app.
    async fn list_builds(&self, app: AppRef) -> Result<Vec<Build>, StoreError>;

    // --- domains ----------------------------------------------------------

    /// An app and its custom domains.
    async fn list_domains(&self, app: AppRef) -> Result<(App, Vec<Domain>), StoreError>;
    /// One domain (or the app's default one, which is `None`).
    async fn get_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
    ) -> Result<(App, Option<Domain>), StoreError>;
    /// Adds a custom domain.
    async fn add_domain(
        &self,
        app: AppRef,
        hostname: Hostname,
    ) -> Result<(App, Domain), StoreError>;
    /// Removes a custom domain.
    async fn remove_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
    ) -> Result<(App, Option<Domain>), StoreError>;
    /// Apps with their domains and settings, from one snapshot, for the router.
    async fn route_apps(&self) -> Result<Vec<RouteApp>, StoreError>;

    // --- SNI endpoints ----------------------------------------------------

    /// An app's SNI endpoints, with the app and its domains.
    async fn list_sni_endpoints(
        &self,
        app: AppRef,
    ) -> Result<SniView<Vec<SniEndpoint>>, StoreError>;
    /// One SNI endpoint.
    async fn get_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
    ) -> Result<SniView<SniEndpoint>, StoreError>;
    /// Adds an SNI endpoint (checked by the caller).
    async fn add_sni_endpoint(
        &self,
        app: AppRef,
        pem: PemPair,
    ) -> Result<SniView<SniEndpoint>, StoreError>;
    /// Replaces an SNI endpoint's chain and key.
    async fn update_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
        pem: PemPair,
    ) -> Result<SniView<SniEndpoint>, StoreError>;
    /// Removes an SNI endpoint.
    async fn remove_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
    ) -> Result<SniView<SniEndpoint>, StoreError>;

    // --- log drains -------------------------------------------------------

    /// An app's log drains.
    async fn list_drains(&self, app: AppRef) -> Result<Vec<LogDrain>, StoreError>;
    /// One log drain.
    async fn get_drain(&self, app: AppRef, drain: DrainRef) -> Result<LogDrain, StoreError>;
    /// Adds a log drain.
    async fn add_drain(&self, app: AppRef, url: String) -> Result<LogDrain, StoreError>;
    /// Removes a log drain.
    async fn remove_drain(&self, app: AppRef, drain: DrainRef) -> Result<LogDrain, StoreError>;
    /// Every app's log drains, for the drain supervisor.
    async fn all_drains(&self) -> Result<Vec<LogDrain>, StoreError>;
    /// Where a drain has delivered up to in the journal.
    async fn save_drain_cursor(&self, id: Uuid, cursor: String) -> Result<(), StoreError>;

    // --- dynos ------------------------------------------------------------

    /// Every app with a release that can run, with its formation.
    async fn desired_apps(&self) -> Result<Vec<DesiredApp>, StoreError>;
    /// One app's desired state, if it has a release that can run.
    async fn desired_app(&self, app_id: Uuid) -> Result<Option<DesiredApp>, StoreError>;
    /// Every dyno corrald has started and not yet forgotten.
    async fn dyno_records(&self) -> Result<Vec<DynoRecord>, StoreError>;
    /// The record of the dyno running as `unit`, if any.
    async fn dyno_record(&self, unit: String) -> Result<Option<DynoRecord>, StoreError>;
    /// An app and its dyno records.
    async fn app_dynos(&self, app: AppRef) -> Result<(App, Vec<DynoRecord>), StoreError>;
    /// Records a dyno about to start (replacing one of the same unit).
    async fn record_dyno(&self, record: DynoRecord) -> Result<(), StoreError>;
    /// Forgets the dyno of `unit`.
    async fn forget_dyno(&self, unit: String) -> Result<(), StoreError>;
    /// The web ports recorded dynos hold.
    async fn recorded_ports(&self) -> Result<HashSet<u16>, StoreError>;
    /// Every formation dyno's crash run.
    async fn dyno_crashes(&self) -> Result<Vec<CrashRecord>, StoreError>;
    /// Records (or replaces) one dyno's crash run.
    async fn record_crash(&self, crash: CrashRecord) -> Result<(), StoreError>;
    /// Ends the crash runs of these dyno slots.
    async fn forget_crashes(&self, slots: Vec<(AppName, DynoName)>) -> Result<(), StoreError>;
}
