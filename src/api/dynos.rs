//! `GET /apps/{app}/dynos` and restarts: systemd's view of an app's dynos.

use http::StatusCode;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::routes::DynoSelector;
use super::{json, types, Api, ApiResponse};
use crate::state::{self, AppRef};

/// A stable id per unit, so clients can tell dynos apart.
fn dyno_id(unit: &str) -> uuid::Uuid {
    let hash = Sha256::digest(unit.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

impl Api {
    pub(super) async fn list_dynos(&self, app: AppRef, rid: &str) -> Result<ApiResponse, ApiError> {
        let (found, records) = self
            .store
            .call(move |c| state::app_dynos(c, &app))
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let mut dynos = Vec::with_capacity(records.len());
        for record in records {
            let state = match self.systemd.unit_status(&record.unit).await {
                Ok(Some(status)) => match status.active_state.as_str() {
                    "active" => "up",
                    "activating" => "starting",
                    "deactivating" => "down",
                    _ => "crashed",
                },
                Ok(None) => "crashed",
                Err(_) => "unknown",
            };
            dynos.push(types::Dyno {
                attach_url: None,
                command: record.command.clone(),
                created_at: record.started_at,
                id: dyno_id(&record.unit),
                name: record.name.to_string(),
                release: types::ReleaseRef {
                    id: None,
                    version: record.release.0,
                },
                app: types::NamedRef {
                    id: found.id,
                    name: found.name.to_string(),
                },
                size: record.size.to_string(),
                state: state.to_owned(),
                process_type: record.name.process_type().to_string(),
                updated_at: record.started_at,
            });
        }
        Ok(json(StatusCode::OK, &dynos))
    }

    /// Stops the selected dynos and forgets them. The manager (woken by
    /// the caller) starts fresh ones for those the formation still has,
    /// which makes a restart that is not counted as a crash; that is also
    /// what Heroku does after `ps:stop` of a formation dyno. `verb` is the
    /// platform's log word: "Restarting" or "Stopping".
    pub(super) async fn stop_dynos(
        &self,
        app: AppRef,
        which: DynoSelector,
        verb: &str,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let (found, records) = self
            .store
            .call(move |c| state::app_dynos(c, &app))
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let chosen: Vec<_> = records
            .into_iter()
            .filter(|r| which.matches(&r.name))
            .collect();
        if which != DynoSelector::All && chosen.is_empty() {
            return Err(ApiError::NotFound("Couldn't find that dyno.".to_owned()));
        }
        for record in chosen {
            let unit = record.unit.as_str();
            tracing::info!(target: "corral::platform", app = %found.name, dyno = %record.name, "{verb}");
            self.systemd
                .stop_unit(unit)
                .await
                .and(self.systemd.reset_failed(unit).await)
                .map_err(|e| {
                    tracing::error!(request_id = rid, error = %e, "restart failed");
                    ApiError::Internal {
                        request_id: rid.to_owned(),
                    }
                })?;
            let name = record.unit.clone();
            self.store
                .call(move |c| state::forget_dyno(c, &name))
                .await
                .map_err(|e| ApiError::from_store(e, rid))?;
        }
        Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
    }
}
