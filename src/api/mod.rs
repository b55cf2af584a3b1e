//! The Platform API: Heroku's v3 resources over HTTP/1.1 (hyper).
//!
//! A request flows: [`routes::Route::parse`] turns method and path into a
//! typed route; authentication; the body is read with a size limit and
//! decoded into the route's request type; a handler calls the store; the
//! result, or an [`error::ApiError`], becomes JSON in exactly one place.

mod domains;
mod drains;
mod dynos;
pub mod error;
mod git;
pub mod range;
pub mod routes;
pub mod server;
mod slugs;
mod sni;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use tokio_util::task::TaskTracker;

use crate::builds::Builds;
use crate::config::Config;
use crate::dynos::{DynoWaker, OneOffs, RuntimeMetrics};
use crate::logs::sessions::{Framing, LogSessions, SessionSpec};
use crate::model::{AppName, ConfigVarName, DynoSize, ProcessType, Quantity, QuantityChange};
use crate::router::RouteHub;
use crate::slug::SlugStore;
use crate::state::{self, Account, FormationUpdate, SharedStore};
use crate::systemd::Systemd;
use error::ApiError;
use range::{paginate, RangeFields, SortKey};
use routes::Route;

/// The answer of `GET /apps/{app}/metrics` for a router window.
fn metrics_json(
    app: types::NamedRef,
    minutes: u32,
    window: &crate::router::metrics::Window,
) -> types::AppMetrics {
    let [informational, success, redirect, client_error, server_error] = window.requests;
    let percentiles = |p: crate::router::metrics::Percentiles| types::Percentiles {
        p50: p.p50,
        p95: p.p95,
        p99: p.p99,
    };
    types::AppMetrics {
        app,
        minutes,
        requests: types::StatusCounts {
            informational,
            success,
            redirect,
            client_error,
            server_error,
        },
        service_ms: percentiles(window.service_ms()),
        queue_ms: percentiles(window.queue_ms()),
    }
}

/// The largest request body the API reads; config vars are capped at 32 kB,
/// so this leaves room without letting a client make corrald buffer much.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The stack every app reports: runtimes come from the host.
pub(crate) use crate::model::{STACK_ID, STACK_NAME};
/// The one region a Corral host is.
const REGION_NAME: &str = "local";
const REGION_ID: Uuid = Uuid::from_u128(0x2d4e_6f80_1a3b_4c5d_8e7f_9a0b_1c2d_3e02);

/// The API's shared state: what every handler can reach.
#[derive(Debug, Clone)]
pub struct Api {
    store: SharedStore,
    slugs: Arc<SlugStore>,
    systemd: Arc<Systemd>,
    config: Arc<Config>,
    dynos: DynoWaker,
    oneoffs: Arc<OneOffs>,
    builds: Option<Arc<Builds>>,
    /// Log sessions over the journal follower's hub.
    logs: Option<LogSessions>,
    /// The runtime metrics sampler, for each dyno's load in `ps`.
    runtime: Option<Arc<RuntimeMetrics>>,
    /// The router(s) whose counters `GET /apps/{app}/metrics` reports.
    routes: Option<Arc<RouteHub>>,
    /// Wakes the drain supervisor after drains change.
    drains: Option<crate::logs::drain::DrainWaker>,
    /// Where git requests run their subprocesses (awaited at shutdown).
    tasks: TaskTracker,
}

pub(crate) type ApiResponse = Response<Full<Bytes>>;

impl Api {
    /// Builds the API over its dependencies.
    pub fn new(
        store: SharedStore,
        slugs: Arc<SlugStore>,
        systemd: Arc<Systemd>,
        config: Arc<Config>,
        dynos: DynoWaker,
        oneoffs: Arc<OneOffs>,
    ) -> Self {
        Self {
            store,
            slugs,
            systemd,
            config,
            dynos,
            oneoffs,
            builds: None,
            logs: None,
            runtime: None,
            routes: None,
            drains: None,
            tasks: TaskTracker::new(),
        }
    }

    /// Reports each dyno's load from `sampler` in `GET /apps/{app}/dynos`.
    pub fn with_runtime_metrics(mut self, sampler: Arc<RuntimeMetrics>) -> Self {
        self.runtime = Some(sampler);
        self
    }

    /// Serves git pushes and fetches through `builds`, with their
    /// subprocesses on `tasks`.
    pub fn with_builds(mut self, builds: Arc<Builds>, tasks: TaskTracker) -> Self {
        self.builds = Some(builds);
        self.tasks = tasks;
        self
    }

    /// Starts and stops drains through `waker` when they change.
    pub fn with_drains(mut self, waker: crate::logs::drain::DrainWaker) -> Self {
        self.drains = Some(waker);
        self
    }

    /// Serves log sessions from `logs`.
    pub fn with_logs(mut self, logs: LogSessions) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Answers `GET /apps/{app}/metrics` from the counters of the router
    /// inside corrald and of any split router following `hub`.
    pub fn with_router_metrics(mut self, hub: Arc<RouteHub>) -> Self {
        self.routes = Some(hub);
        self
    }

    /// Serves any request on the API listener: git's smart HTTP under
    /// `/<app>.git/`, the Platform API otherwise.
    pub async fn serve<B>(&self, req: Request<B>) -> Response<git::GitBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display + Send,
    {
        if let Some(request) =
            crate::builds::git::parse_request(req.method(), req.uri().path(), req.uri().query())
        {
            return self.serve_git(request, req).await;
        }
        if let Some(id) = req.uri().path().strip_prefix("/log-sessions/") {
            return self.stream_logs(id, req.headers());
        }
        if let Some(id) = req.uri().path().strip_prefix("/build-output/") {
            // Public like Heroku's output_stream_url: the build's random id
            // is the credential, and only API users learn it.
            if let (Ok(id), Some(builds)) = (Uuid::parse_str(id), &self.builds) {
                if let Some(stream) = builds.follow_output(id).await {
                    let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(
                        stream,
                        |chunk| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk)),
                    ));
                    let mut response = Response::new(body.boxed());
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    return response;
                }
            }
            let mut response = Response::new(
                Full::new(Bytes::from_static(b"No such build output.\n"))
                    .map_err(|e| match e {})
                    .boxed(),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
        self.handle(req)
            .await
            .map(|b| b.map_err(|e| match e {}).boxed())
    }

    /// Streams a log session's lines. Public like Heroku's `logplex_url`:
    /// the session's random id is the credential, and only API users
    /// learn it.
    fn stream_logs(&self, id: &str, headers: &HeaderMap) -> Response<git::GitBody> {
        let session = Uuid::parse_str(id)
            .ok()
            .and_then(|id| Some((self.logs.as_ref()?, id)))
            .and_then(|(logs, id)| Some((logs, logs.get(id)?)));
        let Some((logs, spec)) = session else {
            let mut response = Response::new(
                Full::new(Bytes::from_static(
                    b"No such log session; it may have expired (they last 5 minutes). Ask for a new one.\n",
                ))
                .map_err(|e| match e {})
                .boxed(),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        };
        let sse = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        let framing = if sse {
            Framing::EventStream
        } else {
            Framing::Text
        };
        let chunks = tokio_stream_from(logs.stream(spec, framing));
        let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(chunks, |chunk| {
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk))
        }));
        let mut response = Response::new(body.boxed());
        let content_type = if sse {
            "text/event-stream; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
            .headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-cache"));
        response
    }

    /// Serves one request; never fails, errors become Heroku-shaped JSON.
    pub async fn handle<B>(&self, req: Request<B>) -> ApiResponse
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = request_id(req.headers());
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let started = std::time::Instant::now();
        // Any successful change may alter what runs or how it is routed.
        let changes = method != http::Method::GET && method != http::Method::HEAD;
        let mut response = match self.dispatch(req, &request_id).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        };
        if changes && response.status().is_success() {
            self.dynos.wake();
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("request-id", v);
        }
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            request_id,
            ms = started.elapsed().as_millis() as u64,
            "api request"
        );
        response
    }

    async fn dispatch<B>(&self, req: Request<B>, rid: &str) -> Result<ApiResponse, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        check_accept(req.headers())?;
        let route = Route::parse(req.method(), req.uri().path(), req.uri().query())?;
        if let Route::UploadSlugBlob { slug, signature } = route {
            // Slugs are streamed to disk, not read into memory like JSON.
            return self
                .upload_slug(slug, signature, req.into_body(), rid)
                .await;
        }
        if let Route::AttachDyno { app, dyno, secret } = route {
            // The connection becomes the dyno's terminal: no body to read.
            return self.attach_dyno(app, dyno, &secret, req, rid).await;
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let user = if route.is_public() {
            None
        } else {
            Some(self.authenticate(req.headers(), rid).await?)
        };
        let range = req
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(req.into_body()).await?;
        let store = |e| ApiError::from_store(e, rid);
        match route {
            Route::Health => Ok(json(StatusCode::OK, &self.health().await)),
            Route::Account => {
                let user = user.ok_or(ApiError::Unauthorized)?;
                Ok(json(StatusCode::OK, &account_json(&user)))
            }
            Route::ListApps => {
                let apps = self.store.list_apps().await.map_err(store)?;
                let apps: Vec<types::App> = apps.iter().map(|a| self.app_json(a)).collect();
                const FIELDS: RangeFields<types::App> = &[
                    ("id", |a| SortKey::Str(a.id.to_string())),
                    ("name", |a| SortKey::Str(a.name.clone())),
                ];
                list(apps, range.as_deref(), FIELDS)
            }
            Route::CreateApp => {
                let user = user.ok_or(ApiError::Unauthorized)?;
                let req: types::AppCreate = decode_or_default(&body)?;
                check_compat("region", req.region.as_deref(), REGION_NAME)?;
                check_compat("stack", req.stack.as_deref(), STACK_NAME)?;
                let name = match req.name.as_deref() {
                    Some(n) => AppName::parse(n)?,
                    None => AppName::random(),
                };
                let (app, _) = self.store.create_app(name, user).await.map_err(store)?;
                Ok(json(StatusCode::CREATED, &self.app_json(&app)))
            }
            Route::GetApp(app) => {
                let app = self.store.get_app(app).await.map_err(store)?;
                Ok(json(StatusCode::OK, &self.app_json(&app)))
            }
            Route::UpdateApp(app) => {
                let req: types::AppUpdate = decode(&body)?;
                check_compat("build_stack", req.build_stack.as_deref(), STACK_NAME)?;
                let name = req.name.as_deref().map(AppName::parse).transpose()?;
                let app = self
                    .store
                    .update_app(app, name, req.maintenance)
                    .await
                    .map_err(store)?;
                Ok(json(StatusCode::OK, &self.app_json(&app)))
            }
            Route::AppMetrics { app, minutes } => {
                let app = self.store.get_app(app).await.map_err(store)?;
                let window = match &self.routes {
                    Some(hub) => hub.metrics(&app.name, minutes).await,
                    None => crate::router::metrics::Window::default(),
                };
                let app = types::NamedRef {
                    id: app.id,
                    name: app.name.to_string(),
                };
                Ok(json(StatusCode::OK, &metrics_json(app, minutes, &window)))
            }
            Route::GetAppSettings(app) => {
                let app = self.store.get_app(app).await.map_err(store)?;
                Ok(json(StatusCode::OK, &app.settings))
            }
            Route::UpdateAppSettings(app) => {
                let patch: serde_json::Value = decode(&body)?;
                let app = self
                    .store
                    .update_app_settings(app, patch)
                    .await
                    .map_err(store)?;
                Ok(json(StatusCode::OK, &app.settings))
            }
            Route::DeleteApp(app) => {
                let app = self.store.delete_app(app).await.map_err(store)?;
                if let Some(builds) = &self.builds {
                    builds.forget_app(app.id).await;
                }
                Ok(json(StatusCode::OK, &self.app_json(&app)))
            }
            Route::GetConfigVars(app) => {
                let vars = self.store.get_config(app).await.map_err(store)?;
                Ok(json(StatusCode::OK, &config_json(&vars)))
            }
            Route::UpdateConfigVars(app) => {
                let user = user.ok_or(ApiError::Unauthorized)?;
                let req: types::ConfigVarsPatch = decode(&body)?;
                let mut patch = BTreeMap::new();
                for (name, value) in req {
                    patch.insert(ConfigVarName::parse(&name)?, value);
                }
                let (vars, _) = self
                    .store
                    .patch_config(app, patch, user)
                    .await
                    .map_err(store)?;
                Ok(json(StatusCode::OK, &config_json(&vars)))
            }
            Route::ListReleases(app) => {
                let releases = self.store.list_releases(app).await.map_err(store)?;
                let releases: Vec<types::Release> = releases.iter().map(release_json).collect();
                const FIELDS: RangeFields<types::Release> = &[
                    ("version", |r| SortKey::Int(i64::from(r.version))),
                    ("id", |r| SortKey::Str(r.id.to_string())),
                ];
                list(releases, range.as_deref(), FIELDS)
            }
            Route::GetRelease(app, release) => {
                let release = self.store.get_release(app, release).await.map_err(store)?;
                Ok(json(StatusCode::OK, &release_json(&release)))
            }
            Route::GetReleaseConfigVars(app, release) => {
                let release = self.store.get_release(app, release).await.map_err(store)?;
                Ok(json(StatusCode::OK, &config_json(&release.config)))
            }
            Route::CreateSlug(app) => {
                let req: types::SlugCreate = decode(&body)?;
                self.create_slug(app, req, host.as_deref(), rid).await
            }
            Route::GetSlug(app, id) => self.get_slug(app, id, rid).await,
            Route::CreateRelease(app) => {
                let user = user.ok_or(ApiError::Unauthorized)?;
                let req: types::ReleaseCreate = decode(&body)?;
                self.create_release(app, req, user, rid).await
            }
            // Handled before authentication, above.
            Route::UploadSlugBlob { .. } => Err(ApiError::NotFound("Not found.".to_owned())),
            Route::ListFormation(app) => {
                let entries = self.store.list_formation(app).await.map_err(store)?;
                let entries: Vec<types::Formation> = entries.iter().map(formation_json).collect();
                const FIELDS: RangeFields<types::Formation> = &[
                    ("type", |f| SortKey::Str(f.process_type.clone())),
                    ("id", |f| SortKey::Str(f.id.to_string())),
                ];
                list(entries, range.as_deref(), FIELDS)
            }
            Route::GetFormation(app, process_type) => {
                let entry = self
                    .store
                    .get_formation(app, process_type)
                    .await
                    .map_err(store)?;
                Ok(json(StatusCode::OK, &formation_json(&entry)))
            }
            Route::UpdateFormation(app, process_type) => {
                let req: types::FormationUpdate = decode(&body)?;
                let update = formation_update(process_type, req.quantity, req.size.as_deref())?;
                let entries = self
                    .store
                    .update_formation(app, vec![update])
                    .await
                    .map_err(store)?;
                let entry = entries.first().ok_or_else(|| ApiError::Internal {
                    request_id: rid.to_owned(),
                })?;
                Ok(json(StatusCode::OK, &formation_json(entry)))
            }
            Route::UpdateFormationBatch(app) => {
                let req: types::FormationBatch = decode(&body)?;
                let mut updates = Vec::with_capacity(req.updates.len());
                for item in req.updates {
                    let process_type = ProcessType::parse(&item.process_type)?;
                    if updates
                        .iter()
                        .any(|u: &FormationUpdate| u.process_type == process_type)
                    {
                        return Err(ApiError::Invalid(format!(
                            "Process type {process_type} appears twice in one update; list each type once."
                        )));
                    }
                    updates.push(formation_update(
                        process_type,
                        item.quantity,
                        item.size.as_deref(),
                    )?);
                }
                let entries = self
                    .store
                    .update_formation(app, updates)
                    .await
                    .map_err(store)?;
                let entries: Vec<types::Formation> = entries.iter().map(formation_json).collect();
                Ok(json(StatusCode::OK, &entries))
            }
            Route::ListDynos(app) => self.list_dynos(app, rid).await,
            Route::RestartDynos(app, which) => self.stop_dynos(app, which, "Restarting", rid).await,
            Route::StopDynos(app, which) => self.stop_dynos(app, which, "Stopping", rid).await,
            Route::CreateDyno(app) => {
                let req: types::DynoCreate = decode(&body)?;
                self.create_dyno(app, req, host.as_deref(), rid).await
            }
            // Handled before authentication, above.
            Route::AttachDyno { .. } => Err(ApiError::NotFound("Not found.".to_owned())),
            Route::CreateLogSession(app) => {
                let req: types::LogSessionCreate = decode_or_default(&body)?;
                let spec = log_session_spec(&req)?;
                let found = self.store.get_app(app).await.map_err(store)?;
                let logs = self.logs.as_ref().ok_or_else(|| {
                    ApiError::Conflict(
                        "This corrald does not read the journal (logs.enabled = false), so it has no log stream."
                            .to_owned(),
                    )
                })?;
                let id = logs.create(SessionSpec {
                    app: found.name.to_string(),
                    ..spec
                });
                let now = chrono::Utc::now();
                Ok(json(
                    StatusCode::CREATED,
                    &types::LogSession {
                        created_at: now,
                        id,
                        logplex_url: format!("{}/log-sessions/{id}", base_url(host.as_deref())),
                        updated_at: now,
                    },
                ))
            }
            Route::ListBuilds(app) => {
                let builds = self.store.list_builds(app).await.map_err(store)?;
                let base = base_url(host.as_deref());
                let builds: Vec<types::Build> =
                    builds.iter().map(|b| build_json(b, &base)).collect();
                // Oldest first by default, in the order they started.
                const FIELDS: RangeFields<types::Build> = &[
                    ("created_at", |b| SortKey::Str(b.created_at.to_rfc3339())),
                    ("id", |b| SortKey::Str(b.id.to_string())),
                ];
                list(builds, range.as_deref(), FIELDS)
            }
            Route::GetBuild(app, id) => {
                let build = self.store.get_build(app, id).await.map_err(store)?;
                Ok(json(
                    StatusCode::OK,
                    &build_json(&build, &base_url(host.as_deref())),
                ))
            }
            Route::PurgeBuildCache(app) => {
                let found = self.store.get_app(app).await.map_err(store)?;
                if let Some(builds) = &self.builds {
                    builds
                        .purge_cache(found.id)
                        .await
                        .map_err(|e| ApiError::Conflict(e.to_string()))?;
                }
                Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
            }
            Route::ListBuildpacks(app) => {
                let list = self.store.get_buildpacks(app).await.map_err(store)?;
                Ok(json(StatusCode::OK, &buildpack_installations(&list)))
            }
            Route::SetBuildpacks(app) => {
                let req: types::BuildpackInstallationsUpdate = decode(&body)?;
                let mut list = Vec::with_capacity(req.updates.len());
                for update in req.updates {
                    crate::builds::buildpacks::BuildpackRef::parse(&update.buildpack)
                        .map_err(|e| ApiError::Invalid(e.0))?;
                    list.push(update.buildpack.trim().to_owned());
                }
                let list = self.store.set_buildpacks(app, list).await.map_err(store)?;
                Ok(json(StatusCode::OK, &buildpack_installations(&list)))
            }
            Route::ListDomains(app) => self.list_domains(app, range.as_deref(), rid).await,
            Route::CreateDomain(app) => {
                let req: types::DomainCreate = decode(&body)?;
                self.create_domain(app, req, rid).await
            }
            Route::GetDomain(app, domain) => self.get_domain(app, domain, rid).await,
            Route::DeleteDomain(app, domain) => self.delete_domain(app, domain, rid).await,
            Route::ListLogDrains(app) => self.list_log_drains(app, rid).await,
            Route::CreateLogDrain(app) => {
                let req: types::LogDrainCreate = decode(&body)?;
                self.create_log_drain(app, req, rid).await
            }
            Route::GetLogDrain(app, drain) => self.get_log_drain(app, drain, rid).await,
            Route::DeleteLogDrain(app, drain) => self.delete_log_drain(app, drain, rid).await,
            Route::ListSniEndpoints(app) => self.list_sni_endpoints(app, rid).await,
            Route::CreateSniEndpoint(app) => {
                let req: types::SniEndpointCreate = decode(&body)?;
                self.create_sni_endpoint(app, req, rid).await
            }
            Route::GetSniEndpoint(app, which) => self.get_sni_endpoint(app, which, rid).await,
            Route::UpdateSniEndpoint(app, which) => {
                let req: types::SniEndpointCreate = decode(&body)?;
                self.update_sni_endpoint(app, which, req, rid).await
            }
            Route::DeleteSniEndpoint(app, which) => self.delete_sni_endpoint(app, which, rid).await,
            Route::EmptyCollection(app) => {
                self.store.get_app(app).await.map_err(store)?;
                Ok(json(StatusCode::OK, &Vec::<serde_json::Value>::new()))
            }
        }
    }

    async fn authenticate(&self, headers: &HeaderMap, rid: &str) -> Result<Account, ApiError> {
        let secret = bearer_secret(headers).ok_or(ApiError::Unauthorized)?;
        self.store
            .authenticate(secret)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?
            .ok_or(ApiError::Unauthorized)
    }

    async fn health(&self) -> types::Health {
        let schema_version = self.store.schema_version().await.unwrap_or(0);
        let systemd = match self.systemd.version().await {
            Ok(version) => types::SystemdHealth {
                reachable: true,
                version: Some(version),
                error: None,
            },
            Err(e) => types::SystemdHealth {
                reachable: false,
                version: None,
                error: Some(e.to_string()),
            },
        };
        types::Health {
            status: "ok".to_owned(),
            api_version: types::API_VERSION,
            corral_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_version,
            systemd,
        }
    }

    fn app_json(&self, app: &state::App) -> types::App {
        let domain = &self.config.router.base_domain;
        let stack = types::NamedRef {
            id: STACK_ID,
            name: STACK_NAME.to_owned(),
        };
        types::App {
            acm: false,
            archived_at: None,
            buildpack_provided_description: None,
            build_stack: stack.clone(),
            created_at: app.created_at,
            create_status: "complete".to_owned(),
            git_url: format!("http://git.{domain}/{}.git", app.name),
            id: app.id,
            internal_routing: None,
            maintenance: app.maintenance,
            name: app.name.to_string(),
            owner: types::UserRef {
                email: app.owner.email.clone(),
                id: app.owner.id,
            },
            organization: None,
            team: None,
            region: types::NamedRef {
                id: REGION_ID,
                name: REGION_NAME.to_owned(),
            },
            released_at: app.released_at,
            repo_size: None,
            slug_size: None,
            space: None,
            stack,
            updated_at: app.updated_at,
            web_url: format!("http://{}.{domain}/", app.name),
        }
    }
}

fn account_json(user: &Account) -> types::Account {
    types::Account {
        allow_tracking: false,
        beta: false,
        created_at: user.created_at,
        email: user.email.clone(),
        federated: false,
        id: user.id,
        last_login: None,
        name: Some(user.name.clone()),
        two_factor_authentication: false,
        updated_at: user.created_at,
        verified: true,
    }
}

fn config_json(vars: &crate::model::ConfigVars) -> types::ConfigVars {
    vars.as_map()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub(crate) fn release_json(r: &state::Release) -> types::Release {
    types::Release {
        addon_plan_names: Vec::new(),
        artifacts: Vec::new(),
        app: types::NamedRef {
            id: r.app_id,
            name: r.app_name.to_string(),
        },
        created_at: r.created_at,
        description: r.description.clone(),
        status: r.status.as_str().to_owned(),
        id: r.id,
        slug: r.slug_id.map(|id| types::IdRef { id }),
        updated_at: r.updated_at,
        user: types::UserRef {
            email: r.user_email.clone(),
            id: r.user_id,
        },
        version: r.version.0,
        current: r.current,
        output_stream_url: None,
        eligible_for_rollback: r.status == state::ReleaseStatus::Succeeded
            && r.slug_id.is_some()
            && !r.current,
    }
}

fn formation_json(f: &state::FormationEntry) -> types::Formation {
    types::Formation {
        app: types::NamedRef {
            id: f.app_id,
            name: f.app_name.to_string(),
        },
        command: f.command.clone().unwrap_or_default(),
        created_at: f.created_at,
        id: f.id,
        quantity: f.quantity.get(),
        size: f.size.to_string(),
        process_type: f.process_type.to_string(),
        updated_at: f.updated_at,
    }
}

fn formation_update(
    process_type: ProcessType,
    quantity: Option<types::QuantityInput>,
    size: Option<&str>,
) -> Result<FormationUpdate, ApiError> {
    let quantity = match quantity {
        None => None,
        Some(types::QuantityInput::Number(n)) => Some(QuantityChange::Set(Quantity::new(n)?)),
        Some(types::QuantityInput::Text(t)) => Some(QuantityChange::parse(&t)?),
    };
    Ok(FormationUpdate {
        process_type,
        quantity,
        size: size.map(DynoSize::parse).transpose()?,
    })
}

/// `http://HOST` of this API as the client reached it (its `Host`), for
/// URLs the client is to call next; a client on the Unix socket uses just
/// their path and query.
pub(crate) fn base_url(host: Option<&str>) -> String {
    let host = host
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Accepts Heroku's compatibility fields only with the one value Corral has.
pub(crate) fn check_compat(field: &str, given: Option<&str>, ours: &str) -> Result<(), ApiError> {
    match given {
        Some(v) if v != ours => Err(ApiError::Invalid(format!(
            "This Corral host has only the {field} {ours:?}; leave {field} out or set it to {ours:?}."
        ))),
        _ => Ok(()),
    }
}

fn list<T: Serialize>(
    items: Vec<T>,
    range: Option<&str>,
    fields: RangeFields<T>,
) -> Result<ApiResponse, ApiError> {
    let page = paginate(items, range, fields)?;
    let status = if page.next_range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = json(status, &page.items);
    for (name, value) in [
        ("next-range", page.next_range),
        ("content-range", page.content_range),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> ApiResponse {
    // Serializing our own plain structs cannot fail; if it somehow did, an
    // empty object is a better answer than a panic in the server.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_response(e: &ApiError) -> ApiResponse {
    let (status, _) = e.status_and_id();
    json(status, &e.body())
}

/// Keeps a client's `Request-Id` when it is sane, so logs on both sides
/// correlate; otherwise makes one. Heroku's CLI sends a comma-separated
/// history of ids, newest first: the first one is this request's.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| {
            (1..=200).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// Refuses only an explicit request for another Heroku API version; plain
/// JSON clients (curl, scripts) need not send Heroku's media type.
fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if !accept.contains("application/vnd.heroku+json") {
        return Ok(());
    }
    let version = accept
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("version="))
        .next();
    // Heroku's CLI asks for `version=3.sdk` on some calls: a variant of 3.
    match version {
        None => Ok(()),
        Some(v) if v == "3" || v.starts_with("3.") => Ok(()),
        Some(other) => Err(ApiError::NotAcceptable(format!(
            "This server speaks version 3 of the Platform API, not {other:?}; send Accept: {}.",
            types::HEROKU_ACCEPT
        ))),
    }
}

/// The token from `Authorization: Bearer T`, or from Basic auth with the
/// token as password (what git and `curl -u :T` send).
fn buildpack_name(url: &str) -> String {
    match crate::builds::buildpacks::BuildpackRef::parse(url) {
        Ok(crate::builds::buildpacks::BuildpackRef::Shipped(name)) => format!("corral/{name}"),
        _ => url.to_owned(),
    }
}

fn buildpack_installations(list: &[String]) -> Vec<types::BuildpackInstallation> {
    list.iter()
        .enumerate()
        .map(|(ordinal, url)| types::BuildpackInstallation {
            ordinal,
            buildpack: types::BuildpackRef {
                url: url.clone(),
                name: buildpack_name(url),
            },
        })
        .collect()
}

fn build_json(b: &state::Build, base: &str) -> types::Build {
    types::Build {
        app: types::NamedRef {
            id: b.app_id,
            name: b.app_name.to_string(),
        },
        buildpacks: b
            .buildpacks
            .iter()
            .map(|url| types::BuildpackRef {
                url: url.clone(),
                name: buildpack_name(url),
            })
            .collect(),
        created_at: b.created_at,
        id: b.id,
        output_stream_url: Some(format!("{base}/build-output/{}", b.id)),
        release: b.release_id.map(|id| types::IdRef { id }),
        slug: b.slug_id.map(|id| types::IdRef { id }),
        source_blob: types::SourceBlob {
            checksum: None,
            url: None,
            version: Some(b.source_version.clone()),
        },
        stack: STACK_NAME.to_owned(),
        status: b.status.as_str().to_owned(),
        updated_at: b.updated_at,
        user: types::UserRef {
            email: b.user_email.clone(),
            id: b.user_id,
        },
    }
}

fn bearer_secret(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        return (!token.is_empty()).then(|| token.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (_, password) = decoded.split_once(':')?;
        return (!password.is_empty()).then(|| password.to_owned());
    }
    None
}

async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(e) => Err(ApiError::BadRequest(format!(
            "The request body could not be read: {e}"
        ))),
    }
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "The request body is not valid JSON for this endpoint: {e}."
        ))
    })
}

fn decode_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        decode(body)
    }
}

#[cfg(test)]
mod tests;

/// A receiver as a stream of chunks.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Checks a log session request: Heroku's limits and filter values that
/// can only ever match something.
fn log_session_spec(req: &types::LogSessionCreate) -> Result<SessionSpec, ApiError> {
    use crate::logs::sessions::{DEFAULT_LINES, MAX_LINES};
    let lines = req.lines.map_or(DEFAULT_LINES, |n| n as usize);
    if lines > MAX_LINES {
        return Err(ApiError::Invalid(format!(
            "lines must be at most {MAX_LINES}; for more, add a log drain."
        )));
    }
    let dyno = req.dyno.clone().or_else(|| req.process_type.clone());
    for (what, value) in [("dyno", &dyno), ("source", &req.source)] {
        if let Some(v) = value {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(ApiError::Invalid(format!(
                    "{what} must be a name like web.1, web, router, app or corral, not {v:?}."
                )));
            }
        }
    }
    Ok(SessionSpec {
        app: String::new(),
        filter: crate::logs::LineFilter {
            dyno,
            source: req.source.clone(),
        },
        lines,
        tail: req.tail.unwrap_or(false),
    })
}
