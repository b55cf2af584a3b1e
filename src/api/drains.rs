//! Log drain endpoints: Heroku's `/apps/{app}/log-drains`.

use http::StatusCode;

use super::error::ApiError;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::state::{self, AppRef, DrainRef};

fn drain_json(d: &state::LogDrain) -> types::LogDrain {
    types::LogDrain {
        addon: None,
        created_at: d.created_at,
        id: d.id,
        token: d.token.clone(),
        updated_at: d.updated_at,
        url: d.url.clone(),
    }
}

impl Api {
    pub(super) async fn list_log_drains(
        &self,
        app: AppRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let drains = self
            .store
            .list_drains(app)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(
            StatusCode::OK,
            &drains.iter().map(drain_json).collect::<Vec<_>>(),
        ))
    }

    pub(super) async fn create_log_drain(
        &self,
        app: AppRef,
        req: types::LogDrainCreate,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        // Syntax and the SSRF rule, before anything is stored; the drain
        // checks the addresses again at every connect.
        let url = crate::logs::drain::check_new(&req.url, &self.config.logs)
            .await
            .map_err(|e| ApiError::Invalid(e.0))?;
        let drain = self
            .store
            .add_drain(app, url)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(StatusCode::CREATED, &drain_json(&drain)))
    }

    pub(super) async fn get_log_drain(
        &self,
        app: AppRef,
        drain: DrainRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let drain = self
            .store
            .get_drain(app, drain)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(StatusCode::OK, &drain_json(&drain)))
    }

    pub(super) async fn delete_log_drain(
        &self,
        app: AppRef,
        drain: DrainRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let drain = self
            .store
            .remove_drain(app, drain)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(StatusCode::OK, &drain_json(&drain)))
    }
}
