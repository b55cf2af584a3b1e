//! Answers in exactly one shape: JSON bodies, Heroku's ranged lists, and errors as Heroku's `{id, message}`.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::error::ApiError;
use super::range::{paginate, RangeFields};

pub(crate) type ApiResponse = Response<Full<Bytes>>;

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> ApiResponse {
    // Serializing our own plain structs cannot fail; if it somehow did, an
    // empty object is a better answer than a panic in the server.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A list, one page of it when the client sent a `Range`.
pub(super) fn list<T: Serialize>(
    items: Vec<T>,
    range: Option<&str>,
    fields: RangeFields<T>,
) -> Result<ApiResponse, ApiError> {
    let page = paginate(items, range, fields)?;
    let status = if page.next_range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = json(status, &page.items);
    for (name, value) in [
        ("next-range", page.next_range),
        ("content-range", page.content_range),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}

pub(super) fn error_response(e: &ApiError) -> ApiResponse {
    let (status, _) = e.status_and_id();
    let mut response = json(status, &e.body());
    // RFC 9110 asks a 405 to say what is allowed; the methods lead the
    // text, before any hint.
    if let ApiError::MethodNotAllowed { allowed, .. } = e {
        let methods = allowed.split(" (").next().unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(methods) {
            response.headers_mut().insert(ALLOW, v);
        }
    }
    response
}
