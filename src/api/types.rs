//! Request and response bodies of the Platform API, shared with the CLI.
//!
//! Field names and shapes follow Heroku's Platform API v3 so that Heroku's
//! own CLI and client libraries can read them; fields Corral has no use for
//! yet are present with Heroku's "empty" values rather than missing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The media type Heroku's clients send in `Accept`.
pub(crate) const HEROKU_ACCEPT: &str = "application/vnd.heroku+json; version=3";

/// The API version this server speaks.
pub(crate) const API_VERSION: u32 = 3;

/// `{id, name}`: how one resource points at another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NamedRef {
    /// The target's id.
    pub id: Uuid,
    /// The target's name.
    pub name: String,
}

/// `{id}`: a reference by id only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdRef {
    /// The target's id.
    pub id: Uuid,
}

/// `{email, id}`: a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserRef {
    /// Their address.
    pub email: String,
    /// Their id.
    pub id: Uuid,
}

/// An error, as Heroku shapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    /// Machine-readable error id, e.g. `not_found`.
    pub id: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// `GET /account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Account {
    /// Always false: Corral does not track.
    pub allow_tracking: bool,
    /// Always false.
    pub beta: bool,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// The account's address.
    pub email: String,
    /// Always false.
    pub federated: bool,
    /// Stable id.
    pub id: Uuid,
    /// Never recorded.
    pub last_login: Option<DateTime<Utc>>,
    /// The token's name.
    pub name: Option<String>,
    /// Always false.
    pub two_factor_authentication: bool,
    /// Same as `created_at`: accounts do not change yet.
    pub updated_at: DateTime<Utc>,
    /// Always true.
    pub verified: bool,
}

/// `GET /apps/{app}` and the element of `GET /apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct App {
    /// Automated certificate management; not offered yet.
    pub acm: bool,
    /// Never archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// Set by the build service once buildpacks land.
    pub buildpack_provided_description: Option<String>,
    /// The stack new builds use.
    pub build_stack: NamedRef,
    /// When the app was created.
    pub created_at: DateTime<Utc>,
    /// Always `complete`: creation is one transaction.
    pub create_status: String,
    /// Where to `git push`.
    pub git_url: String,
    /// Stable id.
    pub id: Uuid,
    /// Not applicable.
    pub internal_routing: Option<bool>,
    /// Whether the router serves the maintenance page.
    pub maintenance: bool,
    /// The app's name.
    pub name: String,
    /// Who created it.
    pub owner: UserRef,
    /// Corral has no organizations.
    pub organization: Option<NamedRef>,
    /// Corral has no teams.
    pub team: Option<NamedRef>,
    /// The one region a Corral host is.
    pub region: NamedRef,
    /// When the newest release was made.
    pub released_at: Option<DateTime<Utc>>,
    /// Unknown until git lands.
    pub repo_size: Option<u64>,
    /// Unknown until slugs land.
    pub slug_size: Option<u64>,
    /// Corral has no private spaces.
    pub space: Option<NamedRef>,
    /// The stack the current release runs on.
    pub stack: NamedRef,
    /// When anything about the app last changed.
    pub updated_at: DateTime<Utc>,
    /// Where the router serves it.
    pub web_url: String,
}

/// `POST /apps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppCreate {
    /// The name; a random one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Accepted for compatibility; must be the host's region if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Accepted for compatibility; must be the host's stack if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// `PATCH /apps/{app}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppUpdate {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Maintenance mode on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    /// Accepted for compatibility; must be the host's stack if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_stack: Option<String>,
}

/// `GET /apps/{app}/config-vars`: name to value.
pub(crate) type ConfigVars = BTreeMap<String, String>;

/// `PATCH /apps/{app}/config-vars`: `null` removes a var.
pub(crate) type ConfigVarsPatch = BTreeMap<String, Option<String>>;

/// `GET /apps/{app}/releases/{id_or_version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Release {
    /// Add-ons at the time of the release; none yet.
    pub addon_plan_names: Vec<String>,
    /// Build artifacts; none yet.
    pub artifacts: Vec<serde_json::Value>,
    /// The app.
    pub app: NamedRef,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// What changed.
    pub description: String,
    /// `succeeded`, `failed` or `pending`.
    pub status: String,
    /// Stable id.
    pub id: Uuid,
    /// The slug it runs, once code is deployed.
    pub slug: Option<IdRef>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// Who made it.
    pub user: UserRef,
    /// The version number.
    pub version: u32,
    /// Whether the app runs this release.
    pub current: bool,
    /// Release phase output; not yet.
    pub output_stream_url: Option<String>,
    /// Whether a rollback to it is possible.
    pub eligible_for_rollback: bool,
}

/// `POST /apps/{app}/slugs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlugCreate {
    /// Commands by process type, as a Procfile gives them.
    pub process_types: BTreeMap<String, String>,
    /// `SHA256:<hex>` of the tarball; the upload must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The commit the slug was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// That commit's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_description: Option<String>,
    /// Accepted for compatibility; must be the host's stack if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Accepted for compatibility; shown as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_provided_description: Option<String>,
}

/// Where to send (or fetch) a slug's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Blob {
    /// The HTTP method: `PUT` for the upload.
    pub method: String,
    /// The URL; it carries its own one-time credential.
    pub url: String,
}

/// `GET /apps/{app}/slugs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Slug {
    /// The upload target; only in the answer to `POST`, which is the only
    /// time its credential exists.
    pub blob: Option<Blob>,
    /// What the buildpack called the app.
    pub buildpack_provided_description: Option<String>,
    /// `SHA256:<hex>` once uploaded (or as announced before).
    pub checksum: Option<String>,
    /// The commit it was built from.
    pub commit: Option<String>,
    /// That commit's message.
    pub commit_description: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Stable id.
    pub id: Uuid,
    /// Commands by process type.
    pub process_types: BTreeMap<String, String>,
    /// Bytes, once uploaded.
    pub size: Option<u64>,
    /// The stack it runs on.
    pub stack: NamedRef,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /apps/{app}/releases`: deploy a slug, or roll back to a release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseCreate {
    /// The slug to deploy (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// The release to roll back to (its id or version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// A description instead of "Deploy `<commit>`".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /apps/{app}/formation/{type}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Formation {
    /// The app.
    pub app: NamedRef,
    /// The command, from the current release; empty before any deploy.
    pub command: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Stable id.
    pub id: Uuid,
    /// How many dynos.
    pub quantity: u32,
    /// Dyno size name, e.g. `standard-1X`.
    pub size: String,
    /// The process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A quantity as clients send it: Heroku's CLI sends strings, including
/// relative changes like `"+2"` and `"-1"`; other clients send numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum QuantityInput {
    /// An absolute number.
    Number(i64),
    /// `"3"`, `"+2"` or `"-1"`.
    Text(String),
}

/// `PATCH /apps/{app}/formation/{type}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormationUpdate {
    /// New quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<QuantityInput>,
    /// New size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// One element of a batch formation update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormationBatchItem {
    /// The process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// New quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<QuantityInput>,
    /// New size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormationBatch {
    /// The changes, applied together or not at all.
    pub updates: Vec<FormationBatchItem>,
}

/// `POST /apps/{app}/dynos`: run a command in a one-off dyno (`run.N`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DynoCreate {
    /// The shell command, e.g. `bash` or `python manage.py migrate`.
    pub command: String,
    /// Connect the caller to it through the answer's `attach_url`; else it
    /// logs to the app's log stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// Variables on top of the config vars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Attached without a terminal (stdin and output as plain pipes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_no_tty: Option<bool>,
    /// Dyno size; default: the app's web size, else `standard-1X`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Accepted for compatibility; must be `run` if given.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// Seconds until the dyno is stopped; default and at most 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u64>,
}

/// `GET /apps/{app}/dynos`: one running dyno.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Dyno {
    /// For a one-off dyno created with `attach`: the one-time URL to
    /// connect to with `Upgrade: corral-attach` (see [`crate::attach`]).
    pub attach_url: Option<String>,
    /// The command it runs.
    pub command: String,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// Stable for the life of the unit.
    pub id: Uuid,
    /// `web.1`.
    pub name: String,
    /// The release it runs.
    pub release: ReleaseRef,
    /// The app.
    pub app: NamedRef,
    /// Its size.
    pub size: String,
    /// `starting`, `up`, `down` or `crashed`.
    pub state: String,
    /// Its process type.
    #[serde(rename = "type")]
    pub process_type: String,
    /// When its state last changed (here: when it was started).
    pub updated_at: DateTime<Utc>,
    /// Corral's own: bytes of memory its cgroup is charged now (systemd's
    /// `MemoryCurrent`); `null` when not running or unknown.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Corral's own: its memory quota in bytes (the dyno size).
    #[serde(default)]
    pub memory_quota_bytes: Option<u64>,
    /// Corral's own: CPU seconds used since it started (`CPUUsageNSec`).
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Corral's own: CPU cores kept busy, decayed over a minute (the
    /// runtime metrics' `load_avg_1m`); `null` until it was sampled.
    #[serde(default)]
    pub load_avg_1m: Option<f64>,
}

/// `{id, version}`: how a dyno names its release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReleaseRef {
    /// The release id, when known.
    pub id: Option<Uuid>,
    /// The version.
    pub version: u32,
}

/// `GET /apps/{app}/domains/{id_or_hostname}` and the element of
/// `GET /apps/{app}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Domain {
    /// Certificate management; not offered yet.
    pub acm_status: Option<String>,
    /// Why `acm_status` is what it is; not offered yet.
    pub acm_status_reason: Option<String>,
    /// The app it routes to.
    pub app: NamedRef,
    /// For a custom domain: the DNS target to point a CNAME (or, at a
    /// zone's apex, an ALIAS) at, the app's default hostname. `None` for
    /// the default domain itself.
    pub cname: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// The hostname, lowercase.
    pub hostname: String,
    /// `http://<hostname>`.
    pub href: String,
    /// Stable id.
    pub id: Uuid,
    /// `heroku` for the app's default domain, `custom` for added ones.
    pub kind: String,
    /// Always `succeeded`: a domain routes as soon as it is added.
    pub status: String,
    /// The SNI endpoint whose certificate covers it (the oldest one, if
    /// several do); certificates are picked by name, not by this link.
    pub sni_endpoint: Option<NamedRef>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// `POST /apps/{app}/domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainCreate {
    /// The hostname, such as `www.example.com` or `*.example.com`.
    pub hostname: String,
    /// Accepted for compatibility (Heroku's CLI sends it): null, or the
    /// name or id of one of the app's SNI endpoints. The router picks the
    /// certificate by name anyway.
    #[serde(default)]
    pub sni_endpoint: Option<String>,
}

/// A log drain (Heroku's log-drain object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogDrain {
    /// The add-on that made it: always null (Corral has no add-ons).
    pub addon: Option<NamedRef>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Stable id.
    pub id: Uuid,
    /// `d.<uuid>`, the HOSTNAME of every message it sends.
    pub token: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The receiver: `syslog://`, `syslog+tls://` or `https://`.
    pub url: String,
}

/// `POST /apps/{app}/log-drains`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogDrainCreate {
    /// The receiver's URL.
    pub url: String,
}

/// `GET /apps/{app}/sni-endpoints/{id_or_name}` and the element of the
/// list: a TLS certificate the router serves for the app's domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SniEndpoint {
    /// The app.
    pub app: NamedRef,
    /// The certificate chain, PEM, as uploaded (never the key).
    pub certificate_chain: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Not used by Corral: null.
    pub display_name: Option<String>,
    /// Ids of the app's custom domains that the certificate covers.
    pub domains: Vec<Uuid>,
    /// Stable id.
    pub id: Uuid,
    /// Its name, like `quiet-river-4821`.
    pub name: String,
    /// What the certificate says.
    pub ssl_cert: SslCert,
    /// When its certificate was last replaced.
    pub updated_at: DateTime<Utc>,
}

/// The certificate of an [`SniEndpoint`], as Heroku describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SslCert {
    /// Always false: no automated certificate management (ACME) yet.
    pub acm: bool,
    /// Whether another certificate issued it. Corral checks no trust
    /// store: this only means "not self-signed".
    #[serde(rename = "ca_signed?")]
    pub ca_signed: bool,
    /// The DNS names it covers.
    pub cert_domains: Vec<String>,
    /// `notAfter`.
    pub expires_at: DateTime<Utc>,
    /// The issuer, as `/C=US/O=Example CA/CN=...`.
    pub issuer: String,
    /// Whether it issued itself.
    #[serde(rename = "self_signed?")]
    pub self_signed: bool,
    /// `notBefore`.
    pub starts_at: DateTime<Utc>,
    /// The subject, as `/CN=www.example.com`.
    pub subject: String,
}

/// `POST /apps/{app}/sni-endpoints` and `PATCH .../{id_or_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SniEndpointCreate {
    /// The server certificate, then its intermediates, PEM.
    pub certificate_chain: String,
    /// The server certificate's private key, PEM, unencrypted.
    pub private_key: String,
}

/// `GET /health`: unauthenticated, for probes and `corral sandbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Health {
    /// `ok` when the API can serve; systemd is reported separately.
    pub status: String,
    /// The Platform API version (3).
    pub api_version: u32,
    /// The version of this corrald.
    pub corral_version: String,
    /// The state database's schema version.
    pub schema_version: u32,
    /// Whether systemd answers on D-Bus.
    pub systemd: SystemdHealth,
}

/// The systemd part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SystemdHealth {
    /// Whether `Manager.Version` answered.
    pub reachable: bool,
    /// systemd's version string, when reachable.
    pub version: Option<String>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

/// A build, as Heroku's Platform API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Build {
    /// The app.
    pub app: NamedRef,
    /// The buildpacks that ran.
    pub buildpacks: Vec<BuildpackRef>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Stable id.
    pub id: Uuid,
    /// Live output; pushes stream theirs over git instead.
    pub output_stream_url: Option<String>,
    /// The release it made.
    pub release: Option<IdRef>,
    /// The slug it made.
    pub slug: Option<IdRef>,
    /// What was built.
    pub source_blob: SourceBlob,
    /// The stack.
    pub stack: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who pushed.
    pub user: UserRef,
}

/// What a build built: here always a pushed commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceBlob {
    /// Checksum of a source tarball; none for pushes.
    pub checksum: Option<String>,
    /// Where a source tarball came from; none for pushes.
    pub url: Option<String>,
    /// The commit.
    pub version: Option<String>,
}

/// `{url, name}`: a buildpack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildpackRef {
    /// The URL or name it was set by.
    pub url: String,
    /// Its name.
    pub name: String,
}

/// One of an app's buildpacks, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildpackInstallation {
    /// Position, from 0.
    pub ordinal: usize,
    /// The buildpack.
    pub buildpack: BuildpackRef,
}

/// `PUT /apps/{app}/buildpack-installations`: the new list, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildpackInstallationsUpdate {
    /// The buildpacks; empty clears them (back to detection).
    pub updates: Vec<BuildpackUpdate>,
}

/// One entry of [`BuildpackInstallationsUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildpackUpdate {
    /// A shipped buildpack's name, an absolute path on the host, or a git URL.
    pub buildpack: String,
}

/// `POST /apps/{app}/log-sessions`, as Heroku's CLI sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogSessionCreate {
    /// Only this dyno (`web.1`), process type (`web`) or `router`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno: Option<String>,
    /// Only `app` lines, or the platform's (`corral`/`heroku`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// History lines first: default 100, at most 1500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    /// Keep streaming new lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<bool>,
    /// Heroku's CLI sends it for Fir apps; the same as `dyno` here.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
}

/// A log session: its `logplex_url` streams the lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogSession {
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its id (also the secret in the URL).
    pub id: Uuid,
    /// Where to `GET` the lines: text, or Server-Sent Events with
    /// `Accept: text/event-stream`.
    pub logplex_url: String,
    /// Same as `created_at`.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Requests by status class (Corral's own, in [`AppMetrics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusCounts {
    /// Informational answers (mostly `101` upgrades).
    #[serde(rename = "1xx", default)]
    pub informational: u64,
    /// Successes.
    #[serde(rename = "2xx", default)]
    pub success: u64,
    /// Redirects.
    #[serde(rename = "3xx", default)]
    pub redirect: u64,
    /// Client errors (H27, a client that went away, counts as 499).
    #[serde(rename = "4xx", default)]
    pub client_error: u64,
    /// Server errors, the router's H-codes included.
    #[serde(rename = "5xx", default)]
    pub server_error: u64,
}

/// p50, p95 and p99 in milliseconds; `null` without requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// `GET /apps/{app}/metrics` (Corral's own): the router's figures for an
/// app over the last minutes, from its own counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppMetrics {
    /// The app.
    pub app: NamedRef,
    /// The window: the current minute so far and the minutes before it.
    pub minutes: u32,
    /// Requests by status class.
    pub requests: StatusCounts,
    /// Time from sending a request to a dyno to the end of its response
    /// (the router log's `service=`).
    pub service_ms: Percentiles,
    /// Time spent waiting for a dyno (the router log's `queue=`).
    pub queue_ms: Percentiles,
}
