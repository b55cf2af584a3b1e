//! The Platform API: Heroku's v3 resources over HTTP/1.1 (hyper), one file per resource.
//!
//! A request flows: [`routes::Route::parse`] turns method and path into a
//! typed route (git's smart HTTP and the public streams included);
//! authentication; the body is read with a size limit into a
//! [`request::Call`]; the resource's handler calls the store; the result,
//! or an [`error::ApiError`], becomes JSON in one place ([`respond`]);
//! a success then wakes what the route declares it changed.

mod account;
mod apps;
mod buildpacks;
mod builds;
mod config_vars;
mod domains;
mod drains;
mod dynos;
pub(crate) mod error;
mod formation;
mod git;
mod health;
mod log_sessions;
mod metrics;
pub(crate) mod range;
mod releases;
mod request;
mod respond;
pub(crate) mod routes;
pub(crate) mod server;
mod slugs;
mod sni;
pub(crate) mod types;

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;

use tokio_util::task::TaskTracker;

use crate::builds::Builds;
use crate::config::Config;
use crate::dynos::{DynoWaker, OneOffs, RuntimeMetrics};
use crate::logs::sessions::LogSessions;
use crate::router::RouteHub;
use crate::slug::SlugStore;
use crate::state::{Account, SharedStore};
use crate::systemd::Systemd;
use error::ApiError;
use request::{check_accept, read_body, request_id, Call};
use respond::ApiResponse;
use routes::{Effects, Route};

/// The stack every app reports: runtimes come from the host.
pub(crate) use crate::model::{STACK_ID, STACK_NAME};

/// The API's shared state: what every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct Api {
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

impl Api {
    /// Builds the API over its dependencies.
    pub(crate) fn new(
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
    pub(crate) fn with_runtime_metrics(mut self, sampler: Arc<RuntimeMetrics>) -> Self {
        self.runtime = Some(sampler);
        self
    }

    /// Serves git pushes and fetches through `builds`, with their
    /// subprocesses on `tasks`.
    pub(crate) fn with_builds(mut self, builds: Arc<Builds>, tasks: TaskTracker) -> Self {
        self.builds = Some(builds);
        self.tasks = tasks;
        self
    }

    /// Starts and stops drains through `waker` when they change.
    pub(crate) fn with_drains(mut self, waker: crate::logs::drain::DrainWaker) -> Self {
        self.drains = Some(waker);
        self
    }

    /// Serves log sessions from `logs`.
    pub(crate) fn with_logs(mut self, logs: LogSessions) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Answers `GET /apps/{app}/metrics` from the counters of the router
    /// inside corrald and of any split router following `hub`.
    pub(crate) fn with_router_metrics(mut self, hub: Arc<RouteHub>) -> Self {
        self.routes = Some(hub);
        self
    }

    /// Serves any request on the API listener: git's smart HTTP under
    /// `/<app>.git/`, the public log and build-output streams, and the
    /// Platform API.
    pub(crate) async fn serve<B>(&self, req: Request<B>) -> Response<git::GitBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display + Send,
    {
        match Route::parse(req.method(), req.uri().path(), req.uri().query()) {
            Ok(Route::Git(request)) => self.serve_git(request, req).await,
            Ok(Route::LogStream(id)) => self.stream_logs(&id, req.headers()),
            Ok(Route::BuildOutput(id)) => self.build_output(&id).await,
            route => self
                .handle(route, req)
                .await
                .map(|b| b.map_err(|e| match e {}).boxed()),
        }
    }

    /// Serves one Platform API request; never fails, errors become
    /// Heroku-shaped JSON.
    async fn handle<B>(&self, route: Result<Route, ApiError>, req: Request<B>) -> ApiResponse
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = request_id(req.headers());
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let started = std::time::Instant::now();
        let effects = route.as_ref().map_or(Effects::NONE, Route::effects);
        let mut response = match self.dispatch(route, req, &request_id).await {
            Ok(response) => response,
            Err(e) => respond::error_response(&e),
        };
        if response.status().is_success() {
            self.apply(effects);
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

    fn apply(&self, effects: Effects) {
        if effects.dynos {
            self.dynos.wake();
        }
        if effects.drains {
            if let Some(waker) = &self.drains {
                waker.changed();
            }
        }
    }

    async fn dispatch<B>(
        &self,
        route: Result<Route, ApiError>,
        req: Request<B>,
        rid: &str,
    ) -> Result<ApiResponse, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        check_accept(req.headers())?;
        let route = route?;
        match route {
            // Slugs are streamed to disk, not read into memory like JSON.
            Route::UploadSlugBlob { slug, signature } => {
                return self
                    .upload_slug(slug, signature, req.into_body(), rid)
                    .await
            }
            // The connection becomes the dyno's terminal: no body to read.
            Route::AttachDyno { app, dyno, secret } => {
                return self.attach_dyno(app, dyno, &secret, req, rid).await
            }
            _ => {}
        }
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (host, range) = (header(http::header::HOST), header(http::header::RANGE));
        let user = if route.is_public() {
            None
        } else {
            Some(self.authenticate(req.headers(), rid).await?)
        };
        let call = Call {
            rid: rid.to_owned(),
            user,
            host,
            range,
            body: read_body(req.into_body()).await?,
        };
        let c = &call;
        use Route as R;
        match route {
            R::Health => Ok(self.health().await),
            R::Account => account::get_account(c),
            R::ListApps => self.list_apps(c).await,
            R::CreateApp => self.create_app(c).await,
            R::GetApp(app) => self.get_app(app, c).await,
            R::UpdateApp(app) => self.update_app(app, c).await,
            R::DeleteApp(app) => self.delete_app(app, c).await,
            R::GetAppSettings(app) => self.get_app_settings(app, c).await,
            R::UpdateAppSettings(app) => self.update_app_settings(app, c).await,
            R::AppMetrics { app, minutes } => self.app_metrics(app, minutes, c).await,
            R::EmptyCollection(app) => self.empty_collection(app, c).await,
            R::GetConfigVars(app) => self.get_config_vars(app, c).await,
            R::UpdateConfigVars(app) => self.update_config_vars(app, c).await,
            R::ListReleases(app) => self.list_releases(app, c).await,
            R::GetRelease(app, r) => self.get_release(app, r, c).await,
            R::GetReleaseConfigVars(app, r) => self.get_release_config_vars(app, r, c).await,
            R::CreateRelease(app) => self.create_release(app, c).await,
            R::CreateSlug(app) => self.create_slug(app, c.json()?, c.host(), rid).await,
            R::GetSlug(app, id) => self.get_slug(app, id, rid).await,
            R::ListFormation(app) => self.list_formation(app, c).await,
            R::GetFormation(app, t) => self.get_formation(app, t, c).await,
            R::UpdateFormation(app, t) => self.update_formation(app, t, c).await,
            R::UpdateFormationBatch(app) => self.update_formation_batch(app, c).await,
            R::ListDynos(app) => self.list_dynos(app, rid).await,
            R::RestartDynos(app, which) => self.stop_dynos(app, which, "Restarting", rid).await,
            R::StopDynos(app, which) => self.stop_dynos(app, which, "Stopping", rid).await,
            R::CreateDyno(app) => self.create_dyno(app, c.json()?, c.host(), rid).await,
            R::CreateLogSession(app) => self.create_log_session(app, c).await,
            R::ListBuilds(app) => self.list_builds(app, c).await,
            R::GetBuild(app, id) => self.get_build(app, id, c).await,
            R::PurgeBuildCache(app) => self.purge_build_cache(app, c).await,
            R::ListBuildpacks(app) => self.list_buildpacks(app, c).await,
            R::SetBuildpacks(app) => self.set_buildpacks(app, c).await,
            R::ListDomains(app) => self.list_domains(app, c.range(), rid).await,
            R::CreateDomain(app) => self.create_domain(app, c.json()?, rid).await,
            R::GetDomain(app, domain) => self.get_domain(app, domain, rid).await,
            R::DeleteDomain(app, domain) => self.delete_domain(app, domain, rid).await,
            R::ListLogDrains(app) => self.list_log_drains(app, rid).await,
            R::CreateLogDrain(app) => self.create_log_drain(app, c.json()?, rid).await,
            R::GetLogDrain(app, drain) => self.get_log_drain(app, drain, rid).await,
            R::DeleteLogDrain(app, drain) => self.delete_log_drain(app, drain, rid).await,
            R::ListSniEndpoints(app) => self.list_sni_endpoints(app, rid).await,
            R::CreateSniEndpoint(app) => self.create_sni_endpoint(app, c.json()?, rid).await,
            R::GetSniEndpoint(app, e) => self.get_sni_endpoint(app, e, rid).await,
            R::UpdateSniEndpoint(app, e) => self.update_sni_endpoint(app, e, c.json()?, rid).await,
            R::DeleteSniEndpoint(app, e) => self.delete_sni_endpoint(app, e, rid).await,
            // Served before this point, by `serve` and above; reaching
            // here means a caller skipped that.
            R::UploadSlugBlob { .. }
            | R::AttachDyno { .. }
            | R::Git(_)
            | R::LogStream(_)
            | R::BuildOutput(_) => Err(ApiError::NotFound("Not found.".to_owned())),
        }
    }

    /// The host's dyno sizes, from its configuration.
    fn sizes(&self) -> crate::model::SizeTable {
        self.config.dynos.size_table()
    }

    async fn authenticate(&self, headers: &HeaderMap, rid: &str) -> Result<Account, ApiError> {
        let secret = request::bearer_secret(headers).ok_or(ApiError::Unauthorized)?;
        self.store
            .authenticate(secret)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests;
