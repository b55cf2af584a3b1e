//! `/apps/{app}/releases`: list and show releases, their config snapshots; deploy a slug or roll back.

use http::StatusCode;
use uuid::Uuid;

use super::config_vars::config_json;
use super::error::ApiError;
use super::range::{RangeFields, SortKey};
use super::request::Call;
use super::respond::{json, list, ApiResponse};
use super::{types, Api};
use crate::state::{self, AppRef, ReleaseRef};

impl Api {
    pub(super) async fn list_releases(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let releases = self.store.list_releases(app).await.map_err(call.store())?;
        let releases: Vec<types::Release> = releases.iter().map(release_json).collect();
        const FIELDS: RangeFields<types::Release> = &[
            ("version", |r| SortKey::Int(i64::from(r.version))),
            ("id", |r| SortKey::Str(r.id.to_string())),
        ];
        list(releases, call.range(), FIELDS)
    }

    pub(super) async fn get_release(
        &self,
        app: AppRef,
        release: ReleaseRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let release = self
            .store
            .get_release(app, release)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &release_json(&release)))
    }

    /// The config a release was made with.
    pub(super) async fn get_release_config_vars(
        &self,
        app: AppRef,
        release: ReleaseRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let release = self
            .store
            .get_release(app, release)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &config_json(&release.config)))
    }

    /// Deploys a slug (`slug`) or rolls back (`release`).
    pub(super) async fn create_release(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let user = call.user()?;
        let req: types::ReleaseCreate = call.json()?;
        let release = match (req.slug, req.release) {
            (Some(slug), None) => {
                let slug = Uuid::parse_str(&slug)
                    .map_err(|_| ApiError::NotFound("Couldn't find that slug.".to_owned()))?;
                let description = req.description;
                self.store
                    .deploy_slug(app, slug, description, user)
                    .await
                    .map_err(call.store())?
            }
            (None, Some(target)) => {
                let target = ReleaseRef::parse(&target)
                    .map_err(|_| ApiError::NotFound("Couldn't find that release.".to_owned()))?;
                let retain = self.config.gc.retain_releases;
                let found = self
                    .store
                    .release_with_slug(app.clone(), target)
                    .await
                    .map_err(call.store())?;
                // A slug past retention may be collected already: say so
                // instead of making a release that cannot run.
                if let Some(digest) = found.slug {
                    let slugs = self.slugs.clone();
                    let present = tokio::task::spawn_blocking(move || slugs.contains(&digest))
                        .await
                        .unwrap_or(false);
                    if !present {
                        return Err(call.store()(state::StoreError::Conflict(format!(
                            "The code of {} is gone: only the slugs of the last {retain} releases are kept.",
                            found.release.version
                        ))));
                    }
                }
                self.store
                    .rollback(app, target, user)
                    .await
                    .map_err(call.store())?
            }
            _ => {
                return Err(ApiError::Invalid(
                    "Send either \"slug\" (a slug id, to deploy it) or \"release\" (a release id or version, to roll back to it).".to_owned(),
                ))
            }
        };
        Ok(json(StatusCode::CREATED, &release_json(&release)))
    }
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
