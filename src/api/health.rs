//! `GET /health`: whether corrald, its store and systemd answer; public, for load balancers and `corral status`.

use http::StatusCode;

use super::respond::{json, ApiResponse};
use super::{types, Api};

impl Api {
    pub(super) async fn health(&self) -> ApiResponse {
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
        json(
            StatusCode::OK,
            &types::Health {
                status: "ok".to_owned(),
                api_version: types::API_VERSION,
                corral_version: env!("CARGO_PKG_VERSION").to_owned(),
                schema_version,
                systemd,
            },
        )
    }
}
