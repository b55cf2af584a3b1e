//! `POST /apps/{app}/log-sessions` and `GET /log-sessions/{id}`: a one-time URL streaming an app's log lines.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use uuid::Uuid;

use super::error::ApiError;
use super::git::GitBody;
use super::request::Call;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::logs::sessions::{Framing, SessionSpec, DEFAULT_LINES, MAX_LINES};
use crate::state::AppRef;

impl Api {
    pub(super) async fn create_log_session(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let req: types::LogSessionCreate = call.json_or_default()?;
        let spec = log_session_spec(&req)?;
        let found = self.store.get_app(app).await.map_err(call.store())?;
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
                logplex_url: format!("{}/log-sessions/{id}", call.base_url()),
                updated_at: now,
            },
        ))
    }

    /// Streams a log session's lines. Public like Heroku's `logplex_url`:
    /// the session's random id is the credential, and only API users
    /// learn it.
    pub(super) fn stream_logs(&self, id: &str, headers: &HeaderMap) -> Response<GitBody> {
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
        let mut rx = logs.stream(spec, framing);
        let chunks = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let body = StreamBody::new(futures_util::StreamExt::map(chunks, |chunk| {
            Ok::<_, Infallible>(Frame::data(chunk))
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
}

/// Checks a log session request: Heroku's limits and filter values that
/// can only ever match something.
pub(super) fn log_session_spec(req: &types::LogSessionCreate) -> Result<SessionSpec, ApiError> {
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
