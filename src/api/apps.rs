//! `/apps` and `/apps/{app}`: create, list, show, rename, maintenance, settings, destroy.

use http::StatusCode;
use uuid::Uuid;

use super::error::ApiError;
use super::range::{RangeFields, SortKey};
use super::request::{check_compat, Call};
use super::respond::{json, list, ApiResponse};
use super::{types, Api, STACK_ID, STACK_NAME};
use crate::model::AppName;
use crate::state::{self, AppRef};

/// The one region a Corral host is.
pub(super) const REGION_NAME: &str = "local";
const REGION_ID: Uuid = Uuid::from_u128(0x2d4e_6f80_1a3b_4c5d_8e7f_9a0b_1c2d_3e02);

impl Api {
    pub(super) async fn list_apps(&self, call: &Call) -> Result<ApiResponse, ApiError> {
        let apps = self.store.list_apps().await.map_err(call.store())?;
        let apps: Vec<types::App> = apps.iter().map(|a| self.app_json(a)).collect();
        const FIELDS: RangeFields<types::App> = &[
            ("id", |a| SortKey::Str(a.id.to_string())),
            ("name", |a| SortKey::Str(a.name.clone())),
        ];
        list(apps, call.range(), FIELDS)
    }

    pub(super) async fn create_app(&self, call: &Call) -> Result<ApiResponse, ApiError> {
        let user = call.user()?;
        let req: types::AppCreate = call.json_or_default()?;
        check_compat("region", req.region.as_deref(), REGION_NAME)?;
        check_compat("stack", req.stack.as_deref(), STACK_NAME)?;
        let name = match req.name.as_deref() {
            Some(n) => AppName::parse(n)?,
            None => AppName::random(),
        };
        let (app, _) = self
            .store
            .create_app(name, user)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::CREATED, &self.app_json(&app)))
    }

    pub(super) async fn get_app(&self, app: AppRef, call: &Call) -> Result<ApiResponse, ApiError> {
        let app = self.store.get_app(app).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &self.app_json(&app)))
    }

    pub(super) async fn update_app(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let req: types::AppUpdate = call.json()?;
        check_compat("build_stack", req.build_stack.as_deref(), STACK_NAME)?;
        let name = req.name.as_deref().map(AppName::parse).transpose()?;
        let app = self
            .store
            .update_app(app, name, req.maintenance)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &self.app_json(&app)))
    }

    pub(super) async fn delete_app(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let app = self.store.delete_app(app).await.map_err(call.store())?;
        if let Some(builds) = &self.builds {
            builds.forget_app(app.id).await;
        }
        Ok(json(StatusCode::OK, &self.app_json(&app)))
    }

    pub(super) async fn get_app_settings(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let app = self.store.get_app(app).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &app.settings))
    }

    pub(super) async fn update_app_settings(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let patch: serde_json::Value = call.json()?;
        let app = self
            .store
            .update_app_settings(app, patch)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &app.settings))
    }

    /// `GET /apps/{app}/{collection}` for what Corral does not have yet.
    pub(super) async fn empty_collection(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        self.store.get_app(app).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &Vec::<serde_json::Value>::new()))
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
