//! `/apps/{app}/buildpack-installations`: the buildpacks an app's next build runs, in order.

use http::StatusCode;

use super::error::ApiError;
use super::request::Call;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::builds::buildpacks::BuildpackRef;
use crate::state::AppRef;

impl Api {
    pub(super) async fn list_buildpacks(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let list = self.store.get_buildpacks(app).await.map_err(call.store())?;
        Ok(json(StatusCode::OK, &buildpack_installations(&list)))
    }

    /// Replaces the whole list, as Heroku's `PUT` does.
    pub(super) async fn set_buildpacks(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let req: types::BuildpackInstallationsUpdate = call.json()?;
        let mut list = Vec::with_capacity(req.updates.len());
        for update in req.updates {
            BuildpackRef::parse(&update.buildpack).map_err(|e| ApiError::Invalid(e.0))?;
            list.push(update.buildpack.trim().to_owned());
        }
        let list = self
            .store
            .set_buildpacks(app, list)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &buildpack_installations(&list)))
    }
}

/// How a buildpack is named to users: `corral/python` for a shipped one,
/// its URL otherwise.
pub(super) fn buildpack_name(url: &str) -> String {
    match BuildpackRef::parse(url) {
        Ok(BuildpackRef::Shipped(name)) => format!("corral/{name}"),
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
