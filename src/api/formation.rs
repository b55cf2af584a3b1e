//! `/apps/{app}/formation`: how many dynos of each process type run, at which size.

use http::StatusCode;

use super::error::ApiError;
use super::range::{RangeFields, SortKey};
use super::request::Call;
use super::respond::{json, list, ApiResponse};
use super::{types, Api};
use crate::model::{ProcessType, Quantity, QuantityChange, SizeTable};
use crate::state::{self, AppRef, FormationUpdate};

impl Api {
    pub(super) async fn list_formation(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let entries = self.store.list_formation(app).await.map_err(call.store())?;
        let entries: Vec<types::Formation> = entries.iter().map(formation_json).collect();
        const FIELDS: RangeFields<types::Formation> = &[
            ("type", |f| SortKey::Str(f.process_type.clone())),
            ("id", |f| SortKey::Str(f.id.to_string())),
        ];
        list(entries, call.range(), FIELDS)
    }

    pub(super) async fn get_formation(
        &self,
        app: AppRef,
        process_type: ProcessType,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let entry = self
            .store
            .get_formation(app, process_type)
            .await
            .map_err(call.store())?;
        Ok(json(StatusCode::OK, &formation_json(&entry)))
    }

    pub(super) async fn update_formation(
        &self,
        app: AppRef,
        process_type: ProcessType,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let req: types::FormationUpdate = call.json()?;
        let sizes = self.sizes();
        let update = formation_update(process_type, req.quantity, req.size.as_deref(), &sizes)?;
        let entries = self
            .store
            .update_formation(app, vec![update])
            .await
            .map_err(call.store())?;
        let entry = entries.first().ok_or_else(|| ApiError::Internal {
            request_id: call.rid.clone(),
        })?;
        Ok(json(StatusCode::OK, &formation_json(entry)))
    }

    /// Several process types in one change, as `ps:scale web=2 worker=1`.
    pub(super) async fn update_formation_batch(
        &self,
        app: AppRef,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let req: types::FormationBatch = call.json()?;
        let sizes = self.sizes();
        let mut updates = Vec::with_capacity(req.updates.len());
        for item in req.updates {
            let process_type = ProcessType::parse(&item.process_type)?;
            if updates
                .iter()
                .any(|u: &FormationUpdate| u.process_type == process_type)
            {
                return Err(ApiError::Invalid(format!(
                    "Process type {process_type} appears twice in one update; list each type once."
                )));
            }
            updates.push(formation_update(
                process_type,
                item.quantity,
                item.size.as_deref(),
                &sizes,
            )?);
        }
        let entries = self
            .store
            .update_formation(app, updates)
            .await
            .map_err(call.store())?;
        let entries: Vec<types::Formation> = entries.iter().map(formation_json).collect();
        Ok(json(StatusCode::OK, &entries))
    }
}

fn formation_json(f: &state::FormationEntry) -> types::Formation {
    types::Formation {
        app: types::NamedRef {
            id: f.app_id,
            name: f.app_name.to_string(),
        },
        command: f.command.clone().unwrap_or_default(),
        created_at: f.created_at,
        id: f.id,
        quantity: f.quantity.get(),
        size: f.size.to_string(),
        process_type: f.process_type.to_string(),
        updated_at: f.updated_at,
    }
}

fn formation_update(
    process_type: ProcessType,
    quantity: Option<types::QuantityInput>,
    size: Option<&str>,
    sizes: &SizeTable,
) -> Result<FormationUpdate, ApiError> {
    let quantity = match quantity {
        None => None,
        Some(types::QuantityInput::Number(n)) => Some(QuantityChange::Set(Quantity::new(n)?)),
        Some(types::QuantityInput::Text(t)) => Some(QuantityChange::parse(&t)?),
    };
    Ok(FormationUpdate {
        process_type,
        quantity,
        size: size.map(|s| sizes.parse(s)).transpose()?,
    })
}
