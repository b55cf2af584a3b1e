//! `GET /account`: the caller, in Heroku's account shape.

use http::StatusCode;

use super::error::ApiError;
use super::request::Call;
use super::respond::{json, ApiResponse};
use super::types;
use crate::state::Account;

pub(super) fn get_account(call: &Call) -> Result<ApiResponse, ApiError> {
    Ok(json(StatusCode::OK, &account_json(&call.user()?)))
}

fn account_json(user: &Account) -> types::Account {
    types::Account {
        allow_tracking: false,
        beta: false,
        created_at: user.created_at,
        email: user.email.clone(),
        federated: false,
        id: user.id,
        last_login: None,
        name: Some(user.name.clone()),
        two_factor_authentication: false,
        updated_at: user.created_at,
        verified: true,
    }
}
