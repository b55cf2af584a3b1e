//! The route table: method and path in, a typed route out, for every request the API listener takes.
//!
//! Handlers never see a raw path. [`TABLE`] lists each path pattern with
//! the methods it answers; identifiers are parsed here into the model's
//! newtypes, so a malformed one is refused before any handler runs. Git's
//! smart HTTP (`/<app>.git/...`) is recognised first, by the git module's
//! own parser. What a successful call changes elsewhere (the dyno manager,
//! the drain supervisor) is declared per route by [`Route::effects`].

use http::Method;

use super::error::ApiError;
use uuid::Uuid;

use crate::builds::git::GitRequest;
use crate::model::{DynoName, ProcessType};
use crate::state::{AppRef, DomainRef, DrainRef, ReleaseRef, SniEndpointRef};

/// Every endpoint the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /health`, the only endpoint without authentication.
    Health,
    /// `GET /account`.
    Account,
    /// `GET /apps`.
    ListApps,
    /// `POST /apps`.
    CreateApp,
    /// `GET /apps/{app}`.
    GetApp(AppRef),
    /// `PATCH /apps/{app}`.
    UpdateApp(AppRef),
    /// `GET /apps/{app}/settings` (Corral's own: per-app timeouts).
    GetAppSettings(AppRef),
    /// `PATCH /apps/{app}/settings`: a JSON merge patch.
    UpdateAppSettings(AppRef),
    /// `GET /apps/{app}/metrics?minutes=N` (Corral's own): the router's
    /// figures over the last N minutes (1 to 60, default 10).
    AppMetrics {
        /// The app.
        app: AppRef,
        /// The window.
        minutes: u32,
    },
    /// `DELETE /apps/{app}`.
    DeleteApp(AppRef),
    /// `GET /apps/{app}/config-vars`.
    GetConfigVars(AppRef),
    /// `PATCH /apps/{app}/config-vars`.
    UpdateConfigVars(AppRef),
    /// `GET /apps/{app}/releases`.
    ListReleases(AppRef),
    /// `GET /apps/{app}/releases/{id_or_version}`.
    GetRelease(AppRef, ReleaseRef),
    /// `GET /apps/{app}/releases/{id_or_version}/config-vars`: the config
    /// snapshot a release was made with.
    GetReleaseConfigVars(AppRef, ReleaseRef),
    /// `POST /apps/{app}/releases`: deploy a slug or roll back.
    CreateRelease(AppRef),
    /// `POST /apps/{app}/slugs`.
    CreateSlug(AppRef),
    /// `GET /apps/{app}/slugs/{id}`.
    GetSlug(AppRef, Uuid),
    /// `PUT /blobs/slugs/{id}?signature=...`: the upload target of a slug.
    /// Public: the URL is the credential, like a presigned S3 URL.
    UploadSlugBlob {
        /// The slug's id.
        slug: Uuid,
        /// The one-time upload secret.
        signature: String,
    },
    /// `GET /apps/{app}/formation`.
    ListFormation(AppRef),
    /// `PATCH /apps/{app}/formation`.
    UpdateFormationBatch(AppRef),
    /// `GET /apps/{app}/formation/{type}`.
    GetFormation(AppRef, ProcessType),
    /// `PATCH /apps/{app}/formation/{type}`.
    UpdateFormation(AppRef, ProcessType),
    /// `GET /apps/{app}/dynos`.
    ListDynos(AppRef),
    /// `DELETE /apps/{app}/dynos[/{dyno-or-type}]`: restart all dynos,
    /// one, or those of one process type.
    RestartDynos(AppRef, DynoSelector),
    /// `POST /apps/{app}/dynos/{dyno-or-type}/actions/stop` (and
    /// `/apps/{app}/formations/{type}/actions/stop`; restart also answers
    /// `DELETE /apps/{app}/formations/{type}`).
    StopDynos(AppRef, DynoSelector),
    /// `POST /apps/{app}/dynos`: start a one-off dyno.
    CreateDyno(AppRef),
    /// `GET /apps/{app}/dynos/{dyno}/attach?secret=...` with `Upgrade:
    /// corral-attach`: connect to a one-off dyno created with `attach`.
    /// Public: the one-time URL is the credential.
    AttachDyno {
        /// The app.
        app: AppRef,
        /// The one-off dyno.
        dyno: DynoName,
        /// The URL's secret.
        secret: String,
    },
    /// `POST /apps/{app}/log-sessions`: a URL streaming the app's logs.
    CreateLogSession(AppRef),
    /// `GET /apps/{app}/builds`.
    ListBuilds(AppRef),
    /// `GET /apps/{app}/builds/{id}`.
    GetBuild(AppRef, Uuid),
    /// `DELETE /apps/{app}/build-cache`.
    PurgeBuildCache(AppRef),
    /// `GET /apps/{app}/buildpack-installations`.
    ListBuildpacks(AppRef),
    /// `PUT /apps/{app}/buildpack-installations`: replace the list.
    SetBuildpacks(AppRef),
    /// `GET /apps/{app}/domains`: the app's default domain, then its
    /// custom ones.
    ListDomains(AppRef),
    /// `POST /apps/{app}/domains`: add a custom domain.
    CreateDomain(AppRef),
    /// `GET /apps/{app}/domains/{id_or_hostname}`.
    GetDomain(AppRef, DomainRef),
    /// `DELETE /apps/{app}/domains/{id_or_hostname}`: remove a custom domain.
    DeleteDomain(AppRef, DomainRef),
    /// `GET /apps/{app}/log-drains`.
    ListLogDrains(AppRef),
    /// `POST /apps/{app}/log-drains`: add a drain.
    CreateLogDrain(AppRef),
    /// `GET /apps/{app}/log-drains/{id_or_url_or_token}`.
    GetLogDrain(AppRef, DrainRef),
    /// `DELETE /apps/{app}/log-drains/{id_or_url_or_token}`.
    DeleteLogDrain(AppRef, DrainRef),
    /// `GET /apps/{app}/sni-endpoints`.
    ListSniEndpoints(AppRef),
    /// `POST /apps/{app}/sni-endpoints`: add a certificate and key.
    CreateSniEndpoint(AppRef),
    /// `GET /apps/{app}/sni-endpoints/{id_or_name}`.
    GetSniEndpoint(AppRef, SniEndpointRef),
    /// `PATCH /apps/{app}/sni-endpoints/{id_or_name}`: replace the
    /// certificate and key.
    UpdateSniEndpoint(AppRef, SniEndpointRef),
    /// `DELETE /apps/{app}/sni-endpoints/{id_or_name}`.
    DeleteSniEndpoint(AppRef, SniEndpointRef),
    /// `GET /apps/{app}/{collection}` for collections Heroku's CLI reads
    /// but Corral does not have yet (add-ons, collaborators, ...): an
    /// empty list for an existing app, so `apps:info` works. (Pipeline
    /// couplings are deliberately absent: Heroku answers 404 for an app
    /// without one, and its CLI relies on that.)
    EmptyCollection(AppRef),
    /// Git's smart HTTP under `/<app>.git/`, authenticated by git's
    /// Basic auth in the git module.
    Git(GitRequest),
    /// `GET /log-sessions/{id}`: a log session's stream. Public like
    /// Heroku's `logplex_url`: the random id is the credential.
    LogStream(String),
    /// `GET /build-output/{id}`: a build's output as it is written.
    /// Public like Heroku's `output_stream_url`.
    BuildOutput(String),
}

/// Which dynos a restart or stop is about: Heroku's paths take a dyno
/// name (`web.1`) or a process type (`web`) in the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DynoSelector {
    /// Every dyno of the app.
    All,
    /// The dynos of one process type.
    Type(ProcessType),
    /// One dyno.
    Dyno(DynoName),
}

impl DynoSelector {
    /// Whether `dyno` is selected.
    pub(crate) fn matches(&self, dyno: &DynoName) -> bool {
        match self {
            Self::All => true,
            Self::Type(t) => dyno.process_type() == t,
            Self::Dyno(d) => d == dyno,
        }
    }
}

/// What a successful call changes beyond its own answer, so the API wakes
/// the loops that act on it instead of guessing from the HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Effects {
    /// The dyno manager reconciles, refreshes the routers' table and runs
    /// any pending release phase.
    pub dynos: bool,
    /// The drain supervisor starts and stops drains.
    pub drains: bool,
}

impl Effects {
    /// Nothing outside the store changes.
    pub(crate) const NONE: Self = Self {
        dynos: false,
        drains: false,
    };
    /// What runs, or how it is routed, may change.
    pub(crate) const DYNOS: Self = Self {
        dynos: true,
        drains: false,
    };
    /// The set of log drains changes.
    pub(crate) const DRAINS: Self = Self {
        dynos: false,
        drains: true,
    };
}

impl Route {
    /// Whether the route may be called without a token.
    pub(crate) fn is_public(&self) -> bool {
        matches!(
            self,
            Route::Health
                | Route::UploadSlugBlob { .. }
                | Route::AttachDyno { .. }
                | Route::Git(_)
                | Route::LogStream(_)
                | Route::BuildOutput(_)
        )
    }

    /// What a successful call of this route changes. Exhaustive on
    /// purpose: a new route must say what it touches.
    pub(crate) fn effects(&self) -> Effects {
        use Route::*;
        match self {
            Health
            | Account
            | ListApps
            | GetApp(_)
            | GetAppSettings(_)
            | AppMetrics { .. }
            | GetConfigVars(_)
            | ListReleases(_)
            | GetRelease(..)
            | GetReleaseConfigVars(..)
            | GetSlug(..)
            | ListFormation(_)
            | GetFormation(..)
            | ListDynos(_)
            | AttachDyno { .. }
            | ListBuilds(_)
            | GetBuild(..)
            | ListBuildpacks(_)
            | ListDomains(_)
            | GetDomain(..)
            | ListLogDrains(_)
            | GetLogDrain(..)
            | ListSniEndpoints(_)
            | GetSniEndpoint(..)
            | EmptyCollection(_)
            | LogStream(_)
            | BuildOutput(_) => Effects::NONE,
            // A slug runs only once a release names it; a build's release
            // wakes the manager itself; buildpacks and the cache matter
            // only to the next build; a log session only reads.
            CreateSlug(_)
            | UploadSlugBlob { .. }
            | PurgeBuildCache(_)
            | SetBuildpacks(_)
            | CreateLogSession(_)
            | Git(_) => Effects::NONE,
            // Apps and their settings are in the routers' table; config
            // and releases restart dynos; domains and certificates route.
            CreateApp
            | UpdateApp(_)
            | UpdateAppSettings(_)
            | DeleteApp(_)
            | UpdateConfigVars(_)
            | CreateRelease(_)
            | UpdateFormationBatch(_)
            | UpdateFormation(..)
            | RestartDynos(..)
            | StopDynos(..)
            | CreateDyno(_)
            | CreateDomain(_)
            | DeleteDomain(..)
            | CreateSniEndpoint(_)
            | UpdateSniEndpoint(..)
            | DeleteSniEndpoint(..) => Effects::DYNOS,
            CreateLogDrain(_) | DeleteLogDrain(..) => Effects::DRAINS,
        }
    }

    /// Finds the route for a request, or says why there is none: 404 for
    /// a path no entry matches or an identifier that cannot exist, 405
    /// (naming the allowed methods) for a known path with another method.
    pub(crate) fn parse(
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Result<Route, ApiError> {
        if let Some(git) = crate::builds::git::parse_request(method, path, query) {
            return Ok(Route::Git(git));
        }
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let entry = TABLE
            .iter()
            .find_map(|e| Some((e, e.captures(&segments)?)))
            .ok_or_else(|| ApiError::NotFound("Not found.".to_owned()));
        let (entry, captures) = entry?;
        let params = Params { captures, query };
        let build = Verb::of(method)
            .and_then(|verb| entry.methods.iter().find(|(v, _)| *v == verb))
            .map(|(_, build)| build)
            .ok_or_else(|| ApiError::MethodNotAllowed {
                method: method.to_string(),
                allowed: entry.allowed(),
            })?;
        build(&params)
    }
}

/// The HTTP methods the table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    fn of(method: &Method) -> Option<Self> {
        Some(match *method {
            Method::GET => Self::Get,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::PATCH => Self::Patch,
            Method::DELETE => Self::Delete,
            _ => return None,
        })
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
        }
    }
}

/// Builds a route from a matched path's parameters.
type Build = fn(&Params<'_>) -> Result<Route, ApiError>;

/// One path pattern (`{name}` segments capture) and what each of its
/// methods means.
pub(crate) struct Entry {
    pub(crate) pattern: &'static str,
    pub(crate) methods: &'static [(Verb, Build)],
    /// Said after the allowed methods in a 405.
    note: &'static str,
}

impl Entry {
    const fn new(pattern: &'static str, methods: &'static [(Verb, Build)]) -> Self {
        Self {
            pattern,
            methods,
            note: "",
        }
    }

    const fn note(self, note: &'static str) -> Self {
        Self { note, ..self }
    }

    /// The `{name}` segments' values, if `segments` match the pattern.
    fn captures<'a>(&self, segments: &[&'a str]) -> Option<Vec<(&'static str, &'a str)>> {
        let pattern = self.pattern.trim_start_matches('/').split('/');
        if pattern.clone().count() != segments.len() {
            return None;
        }
        let mut captures = Vec::new();
        for (want, got) in pattern.zip(segments) {
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) => captures.push((name, *got)),
                None if want == *got => {}
                None => return None,
            }
        }
        Some(captures)
    }

    fn allowed(&self) -> String {
        let verbs: Vec<String> = self
            .methods
            .iter()
            .map(|(v, _)| v.method().to_string())
            .collect();
        format!("{}{}", verbs.join(", "), self.note)
    }
}

/// A matched path's captured segments and the request's query.
pub(crate) struct Params<'a> {
    captures: Vec<(&'static str, &'a str)>,
    query: Option<&'a str>,
}

impl Params<'_> {
    fn get(&self, name: &str) -> &str {
        // The table's builders only ask for names their pattern has; the
        // table test calls every builder, so a typo fails there.
        self.captures
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| *v)
    }

    fn missing(what: &str) -> ApiError {
        ApiError::NotFound(format!("Couldn't find that {what}."))
    }

    fn app(&self) -> Result<AppRef, ApiError> {
        AppRef::parse(self.get("app")).map_err(|_| Self::missing("app"))
    }

    fn release(&self) -> Result<ReleaseRef, ApiError> {
        ReleaseRef::parse(self.get("release")).map_err(|_| Self::missing("release"))
    }

    fn process_type(&self) -> Result<ProcessType, ApiError> {
        ProcessType::parse(self.get("type")).map_err(|_| Self::missing("process type"))
    }

    fn dyno(&self) -> Result<DynoName, ApiError> {
        DynoName::parse(self.get("dyno")).map_err(|_| Self::missing("dyno"))
    }

    fn uuid(&self, name: &str, what: &str) -> Result<Uuid, ApiError> {
        Uuid::parse_str(self.get(name)).map_err(|_| Self::missing(what))
    }

    fn domain(&self) -> Result<DomainRef, ApiError> {
        // A wildcard's `*` may arrive percent-encoded; it is the one
        // character of a hostname that clients encode.
        let raw = self.get("domain").replace("%2A", "*").replace("%2a", "*");
        DomainRef::parse(&raw).map_err(|_| Self::missing("domain"))
    }

    fn drain(&self) -> Result<DrainRef, ApiError> {
        // A URL arrives percent-encoded (its slashes must be).
        crate::logs::drain::url::percent_decode(self.get("drain"))
            .map(|d| DrainRef::parse(&d))
            .map_err(|_| Self::missing("log drain"))
    }

    fn sni(&self) -> Result<SniEndpointRef, ApiError> {
        SniEndpointRef::parse(self.get("endpoint")).map_err(|_| Self::missing("SNI endpoint"))
    }

    /// A dyno name (`web.1`) or a process type (`web`), which Heroku's
    /// paths take in the same place.
    fn dynos(&self) -> Result<DynoSelector, ApiError> {
        let s = self.get("dyno");
        if let Ok(dyno) = DynoName::parse(s) {
            return Ok(DynoSelector::Dyno(dyno));
        }
        ProcessType::parse(s)
            .map(DynoSelector::Type)
            .map_err(|_| Self::missing("dyno"))
    }

    fn of_type(&self) -> Result<DynoSelector, ApiError> {
        self.process_type().map(DynoSelector::Type)
    }

    /// A query parameter that must be present and non-empty: a URL's
    /// one-time secret. Without it the URL names nothing.
    fn secret(&self, key: &str) -> Result<String, ApiError> {
        self.query_value(key)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::NotFound("Not found.".to_owned()))
    }

    fn query_value(&self, key: &str) -> Option<&str> {
        self.query?
            .split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// The `minutes` of a metrics query: 1 to 60, default 10.
    fn minutes(&self) -> Result<u32, ApiError> {
        let Some(value) = self.query_value("minutes") else {
            return Ok(10);
        };
        value
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=crate::router::metrics::RETAIN_MINUTES).contains(m))
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "minutes must be a whole number from 1 to {}, not {value:?}",
                    crate::router::metrics::RETAIN_MINUTES
                ))
            })
    }
}

use Verb::{Delete as DELETE, Get as GET, Patch as PATCH, Post as POST, Put as PUT};

/// Every path the API answers, in Heroku's Platform API shapes where
/// Heroku has them. Patterns do not overlap (a test checks), so order
/// does not matter.
pub(crate) static TABLE: &[Entry] = &[
    Entry::new("/health", &[(GET, |_| Ok(Route::Health))]),
    Entry::new("/account", &[(GET, |_| Ok(Route::Account))]),
    // Heroku's CLI lists apps through the user's collection; a Corral
    // host has one tenant, so it is the same list.
    Entry::new("/users/~/apps", &[(GET, |_| Ok(Route::ListApps))]),
    Entry::new(
        "/apps",
        &[
            (GET, |_| Ok(Route::ListApps)),
            (POST, |_| Ok(Route::CreateApp)),
        ],
    ),
    Entry::new(
        "/apps/{app}",
        &[
            (GET, |p| Ok(Route::GetApp(p.app()?))),
            (PATCH, |p| Ok(Route::UpdateApp(p.app()?))),
            (DELETE, |p| Ok(Route::DeleteApp(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/settings",
        &[
            (GET, |p| Ok(Route::GetAppSettings(p.app()?))),
            (PATCH, |p| Ok(Route::UpdateAppSettings(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/metrics",
        &[(GET, |p| {
            Ok(Route::AppMetrics {
                app: p.app()?,
                minutes: p.minutes()?,
            })
        })],
    ),
    Entry::new(
        "/apps/{app}/config-vars",
        &[
            (GET, |p| Ok(Route::GetConfigVars(p.app()?))),
            (PATCH, |p| Ok(Route::UpdateConfigVars(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/releases",
        &[
            (GET, |p| Ok(Route::ListReleases(p.app()?))),
            (POST, |p| Ok(Route::CreateRelease(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/releases/{release}",
        &[(GET, |p| Ok(Route::GetRelease(p.app()?, p.release()?)))],
    ),
    Entry::new(
        "/apps/{app}/releases/{release}/config-vars",
        &[(GET, |p| {
            Ok(Route::GetReleaseConfigVars(p.app()?, p.release()?))
        })],
    ),
    Entry::new(
        "/apps/{app}/slugs",
        &[(POST, |p| Ok(Route::CreateSlug(p.app()?)))],
    ),
    Entry::new(
        "/apps/{app}/slugs/{slug}",
        &[(GET, |p| {
            Ok(Route::GetSlug(p.app()?, p.uuid("slug", "slug")?))
        })],
    ),
    Entry::new(
        "/blobs/slugs/{slug}",
        &[(PUT, |p| {
            Ok(Route::UploadSlugBlob {
                slug: Uuid::parse_str(p.get("slug"))
                    .map_err(|_| ApiError::NotFound("Not found.".to_owned()))?,
                signature: p.secret("signature")?,
            })
        })],
    ),
    Entry::new(
        "/apps/{app}/formation",
        &[
            (GET, |p| Ok(Route::ListFormation(p.app()?))),
            (PATCH, |p| Ok(Route::UpdateFormationBatch(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/formation/{type}",
        &[
            (GET, |p| {
                Ok(Route::GetFormation(p.app()?, p.process_type()?))
            }),
            (PATCH, |p| {
                Ok(Route::UpdateFormation(p.app()?, p.process_type()?))
            }),
        ],
    ),
    Entry::new(
        "/apps/{app}/dynos",
        &[
            (GET, |p| Ok(Route::ListDynos(p.app()?))),
            (POST, |p| Ok(Route::CreateDyno(p.app()?))),
            (DELETE, |p| {
                Ok(Route::RestartDynos(p.app()?, DynoSelector::All))
            }),
        ],
    ),
    Entry::new(
        "/apps/{app}/dynos/{dyno}",
        &[(DELETE, |p| Ok(Route::RestartDynos(p.app()?, p.dynos()?)))],
    ),
    Entry::new(
        "/apps/{app}/dynos/{dyno}/actions/stop",
        &[(POST, |p| Ok(Route::StopDynos(p.app()?, p.dynos()?)))],
    ),
    Entry::new(
        "/apps/{app}/dynos/{dyno}/attach",
        &[(GET, |p| {
            let secret = p.secret("secret")?;
            Ok(Route::AttachDyno {
                app: p.app()?,
                dyno: p.dyno()?,
                secret,
            })
        })],
    ),
    // Heroku's per-type forms (the CLI's `--process-type`).
    Entry::new(
        "/apps/{app}/formations/{type}",
        &[(DELETE, |p| Ok(Route::RestartDynos(p.app()?, p.of_type()?)))],
    ),
    Entry::new(
        "/apps/{app}/formations/{type}/actions/stop",
        &[(POST, |p| Ok(Route::StopDynos(p.app()?, p.of_type()?)))],
    ),
    Entry::new(
        "/apps/{app}/log-sessions",
        &[(POST, |p| Ok(Route::CreateLogSession(p.app()?)))],
    ),
    Entry::new(
        "/log-sessions/{session}",
        &[(GET, |p| Ok(Route::LogStream(p.get("session").to_owned())))],
    ),
    Entry::new(
        "/apps/{app}/builds",
        &[(GET, |p| Ok(Route::ListBuilds(p.app()?)))],
    )
    .note(" (builds start with git push)"),
    Entry::new(
        "/apps/{app}/builds/{build}",
        &[(GET, |p| {
            Ok(Route::GetBuild(p.app()?, p.uuid("build", "build")?))
        })],
    ),
    Entry::new(
        "/build-output/{build}",
        &[(GET, |p| Ok(Route::BuildOutput(p.get("build").to_owned())))],
    ),
    Entry::new(
        "/apps/{app}/build-cache",
        &[(DELETE, |p| Ok(Route::PurgeBuildCache(p.app()?)))],
    ),
    Entry::new(
        "/apps/{app}/buildpack-installations",
        &[
            (GET, |p| Ok(Route::ListBuildpacks(p.app()?))),
            (PUT, |p| Ok(Route::SetBuildpacks(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/domains",
        &[
            (GET, |p| Ok(Route::ListDomains(p.app()?))),
            (POST, |p| Ok(Route::CreateDomain(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/domains/{domain}",
        &[
            (GET, |p| Ok(Route::GetDomain(p.app()?, p.domain()?))),
            (DELETE, |p| Ok(Route::DeleteDomain(p.app()?, p.domain()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/sni-endpoints",
        &[
            (GET, |p| Ok(Route::ListSniEndpoints(p.app()?))),
            (POST, |p| Ok(Route::CreateSniEndpoint(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/sni-endpoints/{endpoint}",
        &[
            (GET, |p| Ok(Route::GetSniEndpoint(p.app()?, p.sni()?))),
            (PATCH, |p| Ok(Route::UpdateSniEndpoint(p.app()?, p.sni()?))),
            (DELETE, |p| Ok(Route::DeleteSniEndpoint(p.app()?, p.sni()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/log-drains",
        &[
            (GET, |p| Ok(Route::ListLogDrains(p.app()?))),
            (POST, |p| Ok(Route::CreateLogDrain(p.app()?))),
        ],
    ),
    Entry::new(
        "/apps/{app}/log-drains/{drain}",
        &[
            (GET, |p| Ok(Route::GetLogDrain(p.app()?, p.drain()?))),
            (DELETE, |p| Ok(Route::DeleteLogDrain(p.app()?, p.drain()?))),
        ],
    ),
    // Collections Heroku's CLI reads for `apps:info` that Corral does not
    // have yet.
    Entry::new(
        "/apps/{app}/addons",
        &[(GET, |p| Ok(Route::EmptyCollection(p.app()?)))],
    ),
    Entry::new(
        "/apps/{app}/collaborators",
        &[(GET, |p| Ok(Route::EmptyCollection(p.app()?)))],
    ),
];

#[cfg(test)]
mod tests;
