//! What a handler knows about its request once it is routed: the caller, the body, the headers it may use.

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use super::types;
use crate::state::{Account, StoreError};

/// The largest request body the API reads; config vars are capped at 32 kB,
/// so this leaves room without letting a client make corrald buffer much.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A routed request, as handlers see it.
#[derive(Debug)]
pub(super) struct Call {
    /// This request's id, in logs and in 500s.
    pub(super) rid: String,
    /// The authenticated caller; `None` only on public routes.
    pub(super) user: Option<Account>,
    /// The `Host` the client reached this API by.
    pub(super) host: Option<String>,
    /// Heroku's `Range` header for lists.
    pub(super) range: Option<String>,
    pub(super) body: Bytes,
}

impl Call {
    /// The caller; a public route asking for one is a bug, answered 401.
    pub(super) fn user(&self) -> Result<Account, ApiError> {
        self.user.clone().ok_or(ApiError::Unauthorized)
    }

    /// Maps a store error with this request's id.
    pub(super) fn store(&self) -> impl Fn(StoreError) -> ApiError + '_ {
        |e| ApiError::from_store(e, &self.rid)
    }

    /// The body as the route's JSON request type.
    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        decode(&self.body)
    }

    /// Like [`Call::json`], with an empty body meaning all defaults.
    pub(super) fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            decode(&self.body)
        }
    }

    pub(super) fn range(&self) -> Option<&str> {
        self.range.as_deref()
    }

    pub(super) fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// `http://HOST` as this client reached the API.
    pub(super) fn base_url(&self) -> String {
        base_url(self.host())
    }
}

/// `http://HOST` of this API as the client reached it (its `Host`), for
/// URLs the client is to call next; a client on the Unix socket uses just
/// their path and query.
pub(crate) fn base_url(host: Option<&str>) -> String {
    let host = host
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Accepts Heroku's compatibility fields only with the one value Corral has.
pub(crate) fn check_compat(field: &str, given: Option<&str>, ours: &str) -> Result<(), ApiError> {
    match given {
        Some(v) if v != ours => Err(ApiError::Invalid(format!(
            "This Corral host has only the {field} {ours:?}; leave {field} out or set it to {ours:?}."
        ))),
        _ => Ok(()),
    }
}

/// Keeps a client's `Request-Id` when it is sane, so logs on both sides
/// correlate; otherwise makes one. Heroku's CLI sends a comma-separated
/// history of ids, newest first: the first one is this request's.
pub(super) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| {
            (1..=200).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

/// Refuses only an explicit request for another Heroku API version; plain
/// JSON clients (curl, scripts) need not send Heroku's media type.
pub(super) fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if !accept.contains("application/vnd.heroku+json") {
        return Ok(());
    }
    let version = accept
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("version="))
        .next();
    // Heroku's CLI asks for `version=3.sdk` on some calls: a variant of 3.
    match version {
        None => Ok(()),
        Some(v) if v == "3" || v.starts_with("3.") => Ok(()),
        Some(other) => Err(ApiError::NotAcceptable(format!(
            "This server speaks version 3 of the Platform API, not {other:?}; send Accept: {}.",
            types::HEROKU_ACCEPT
        ))),
    }
}

/// The token from `Authorization: Bearer T`, or from Basic auth with the
/// token as password (what git and `curl -u :T` send).
pub(super) fn bearer_secret(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        return (!token.is_empty()).then(|| token.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (_, password) = decoded.split_once(':')?;
        return (!password.is_empty()).then(|| password.to_owned());
    }
    None
}

/// Reads a JSON body, refusing one over [`MAX_BODY_BYTES`].
pub(super) async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(e) => Err(ApiError::BadRequest(format!(
            "The request body could not be read: {e}"
        ))),
    }
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "The request body is not valid JSON for this endpoint: {e}."
        ))
    })
}
