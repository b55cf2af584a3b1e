//! API errors and their one mapping to HTTP status and Heroku's error body.

use http::StatusCode;

use super::types::ErrorBody;
use crate::dynos::OneOffError;
use crate::model::InvalidValue;
use crate::state::StoreError;

/// Everything a request can fail with, as the client should see it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No credentials, or wrong ones. Says nothing else on purpose.
    #[error("Invalid credentials provided.")]
    Unauthorized,
    /// The path names nothing, or the thing it names is gone.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("The {method} method is not allowed here; allowed: {allowed}.")]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// The methods the path supports.
        allowed: String,
    },
    /// The body is not the JSON this endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// The request asks for an API version other than 3.
    #[error("{0}")]
    NotAcceptable(String),
    /// The body is too large.
    #[error("The request body is larger than {limit} bytes.")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A `Range` header this list cannot serve.
    #[error("{0}")]
    BadRange(String),
    /// Well-formed, but breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// Clashes with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The URL speaks another protocol, reached by an HTTP upgrade.
    #[error("This URL needs Connection: Upgrade and Upgrade: {0}.")]
    UpgradeRequired(&'static str),
    /// Something broke inside corrald; details go to the log, not the client.
    #[error(
        "Internal server error. The details are in corrald's log under request id {request_id}."
    )]
    Internal {
        /// Correlates the answer with the log line.
        request_id: String,
    },
}

impl ApiError {
    /// Heroku's status and error id for this error.
    pub(crate) fn status_and_id(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "not_acceptable"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "request_entity_too_large"),
            Self::BadRange(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "requested_range_not_satisfiable",
            ),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_params"),
            Self::Conflict(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_params"),
            Self::UpgradeRequired(_) => (StatusCode::UPGRADE_REQUIRED, "upgrade_required"),
            Self::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error"),
        }
    }

    /// The JSON body for this error.
    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            id: self.status_and_id().1.to_owned(),
            message: self.to_string(),
        }
    }

    /// Maps a store error; internal failures are logged with the request id
    /// and reported without their details.
    pub(crate) fn from_store(e: StoreError, request_id: &str) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("Couldn't find that {what}.")),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Invalid(v) => Self::Invalid(v.message),
            other => {
                tracing::error!(request_id, error = %other, "store failure");
                Self::Internal {
                    request_id: request_id.to_owned(),
                }
            }
        }
    }
}

impl ApiError {
    /// Maps a one-off dyno error like [`ApiError::from_store`]; systemd and
    /// file system failures are logged and reported as internal.
    pub(crate) fn from_oneoff(e: OneOffError, request_id: &str) -> Self {
        match e {
            OneOffError::Store(e) => Self::from_store(e, request_id),
            OneOffError::Invalid(m) => Self::Invalid(m),
            e @ (OneOffError::NoCode(_) | OneOffError::Disabled) => Self::Invalid(e.to_string()),
            e @ (OneOffError::AttachRefused | OneOffError::NoSuchDyno) => {
                Self::NotFound(e.to_string())
            }
            other => {
                tracing::error!(request_id, error = %other, "one-off dyno failure");
                Self::Internal {
                    request_id: request_id.to_owned(),
                }
            }
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(v: InvalidValue) -> Self {
        Self::Invalid(v.message)
    }
}
