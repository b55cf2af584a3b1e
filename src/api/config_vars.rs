//! `/apps/{app}/config-vars`: read and patch an app's config; a patch makes a release.

use std::collections::BTreeMap;

use http::StatusCode;

use super::error::ApiError;
use super::request::Call;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::model::{ConfigVarName, ConfigVars};
use crate::state::AppRef;

impl Api {
    pub(super) async fn get_config_vars(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let vars = self.store.get_config(app).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &config_json(&vars)))
    }

    /// Heroku's merge: a `null` value unsets a var.
    pub(super) async fn update_config_vars(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let user = call.user()?;
        let req: types::ConfigVarsPatch = call.json()?;
        let mut patch = BTreeMap::new();
        for (name, value) in req {
            patch.insert(ConfigVarName::parse(&name)?, value);
        }
        let (vars, _) = self
            .store
            .patch_config(app, patch, user)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &config_json(&vars)))
    }
}

pub(super) fn config_json(vars: &ConfigVars) -> types::ConfigVars {
    vars.as_map()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}
