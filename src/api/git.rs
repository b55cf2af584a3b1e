//! `https://HOST/<app>.git`: git's smart HTTP on the API listener, authenticated like Heroku's (any user, an API token as password).

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use super::Api;
use crate::builds::git::{self, GitRequest, GitService};
use crate::model::AppName;
use crate::state::AppRef;

/// A response body: whole, or streamed from git.
pub(super) type GitBody = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, message: &str) -> Response<GitBody> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn no_cache(response: &mut Response<GitBody>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl Api {
    /// Serves a git request; `request` was parsed from the path by
    /// [`git::parse_request`].
    pub(super) async fn serve_git<B>(
        &self,
        request: GitRequest,
        req: Request<B>,
    ) -> Response<GitBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display + Send,
    {
        let (app, service, rpc) = match request {
            GitRequest::Unsupported { reason } => return text(StatusCode::FORBIDDEN, &reason),
            GitRequest::InfoRefs { app, service } => (app, service, false),
            GitRequest::Rpc { app, service } => (app, service, true),
        };
        let Some(builds) = self.builds.clone() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "This corrald does not serve git.",
            );
        };
        let unauthorized = || {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "Authenticate with any user name and your Corral API token as the password \
                 (corral git:remote -a APP sets this up).",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Corral\""),
            );
            r
        };
        let user = match self.authenticate(req.headers(), "git").await {
            Ok(user) => user,
            Err(_) => return unauthorized(),
        };
        let Ok(name) = AppName::parse(&app) else {
            return text(StatusCode::NOT_FOUND, "No such app.");
        };
        let app_ref = AppRef::Name(name);
        let found = match self.store.get_app(app_ref).await {
            Ok(found) => found,
            Err(_) => return text(StatusCode::NOT_FOUND, "No such app."),
        };
        let repo = match builds.repos().ensure(found.id).await {
            Ok(repo) => repo,
            Err(e) => {
                tracing::error!(app = %found.name, error = %e, "cannot prepare the app's repository");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The app's repository cannot be prepared; see corrald's log.",
                );
            }
        };
        if !rpc {
            return match git::info_refs(service, &repo).await {
                Ok(body) => {
                    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(service.advertisement_type()),
                    );
                    no_cache(&mut r);
                    r
                }
                Err(e) => {
                    tracing::error!(app = %found.name, error = %e, "git advertisement failed");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "git failed; see corrald's log.",
                    )
                }
            };
        }
        let gzip = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        // A push carries its pusher to the hook; a fetch needs nothing.
        let guard = (service == GitService::ReceivePack)
            .then(|| builds.register_push(found.id, user, repo.clone()));
        let env = guard.as_ref().map(|g| g.env()).unwrap_or_default();
        let started = git::rpc(
            service,
            &repo,
            env,
            req.into_body(),
            gzip,
            self.config.builds.max_push_mb,
        );
        let (rx, work) = match started {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(app = %found.name, error = %e, "cannot run git");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "git failed; see corrald's log.",
                );
            }
        };
        self.tasks.spawn(async move {
            work.await;
            // The push (and its build) is over once git has exited.
            drop(guard);
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
        });
        let mut r = Response::new(StreamBody::new(stream).boxed());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(service.result_type()),
        );
        no_cache(&mut r);
        r
    }
}
