//! `/apps/{app}/builds`, `/apps/{app}/build-cache` and `/build-output/{id}`: what git pushes built, and their output.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use uuid::Uuid;

use super::buildpacks::buildpack_name;
use super::error::ApiError;
use super::git::GitBody;
use super::range::{RangeFields, SortKey};
use super::request::Call;
use super::respond::{json, list, ApiResponse};
use super::{types, Api, STACK_NAME};
use crate::state::{self, AppRef};

impl Api {
    pub(super) async fn list_builds(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let builds = self.store.list_builds(app).await.map_err(call.store())?;
        let base = call.base_url();
        let builds: Vec<types::Build> = builds.iter().map(|b| build_json(b, &base)).collect();
        // Oldest first by default, in the order they started.
        const FIELDS: RangeFields<types::Build> = &[
            ("created_at", |b| SortKey::Str(b.created_at.to_rfc3339())),
            ("id", |b| SortKey::Str(b.id.to_string())),
        ];
        list(builds, call.range(), FIELDS)
    }

    pub(super) async fn get_build(
        &self,
        app: AppRef,
        id: Uuid,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let build = self.store.get_build(app, id).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &build_json(&build, &call.base_url())))
    }

    pub(super) async fn purge_build_cache(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let found = self.store.get_app(app).await.map_err(call.store())?;
        if let Some(builds) = &self.builds {
            builds
                .purge_cache(found.id)
                .await
                .map_err(|e| ApiError::Conflict(e.to_string()))?;
        }
        Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
    }

    /// Streams a build's output as it is written. Public like Heroku's
    /// `output_stream_url`: the build's random id is the credential, and
    /// only API users learn it.
    pub(super) async fn build_output(&self, id: &str) -> Response<GitBody> {
        if let (Ok(id), Some(builds)) = (Uuid::parse_str(id), &self.builds) {
            if let Some(stream) = builds.follow_output(id).await {
                let body = StreamBody::new(futures_util::StreamExt::map(stream, |chunk| {
                    Ok::<_, Infallible>(Frame::data(chunk))
                }));
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
        response
    }
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
