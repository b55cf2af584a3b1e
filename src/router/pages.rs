//! Heroku's router errors: their codes, descriptions and the pages users
//! see.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::RouterBody;

/// A router error, as Heroku numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// App crashed: no web dyno up and the last ones crashed (or every
    /// dyno refused the connection).
    H10,
    /// Backlog too deep: the app's queue is full, or a request waited too
    /// long for a dyno slot.
    H11,
    /// Request timeout: no response headers in time.
    H12,
    /// Connection closed without response.
    H13,
    /// No web dynos running.
    H14,
    /// Idle connection: no data for the idle timeout after the first byte.
    H15,
    /// Server request interrupted: the dyno closed the socket mid-response.
    H18,
    /// App boot timeout: no web dyno came up while the request waited.
    H20,
    /// Client request interrupted (logged, no page).
    H27,
    /// Maintenance mode.
    H80,
}

impl Code {
    /// Heroku's `desc=` text.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Code::H10 => "App crashed",
            Code::H11 => "Backlog too deep",
            Code::H12 => "Request timeout",
            Code::H13 => "Connection closed without response",
            Code::H14 => "No web processes running",
            Code::H15 => "Idle connection",
            Code::H18 => "Server Request Interrupted",
            Code::H20 => "App boot timeout",
            Code::H27 => "Client Request Interrupted",
            Code::H80 => "Maintenance mode",
        }
    }

    /// Whether the router log line says `at=error` (H27 and H80 are info
    /// on Heroku).
    pub(crate) fn is_error(self) -> bool {
        !matches!(self, Code::H27 | Code::H80)
    }

    /// The status the client gets (H27's 499 is only logged).
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Code::H27 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn html(status: StatusCode, title: &str, message: &str) -> Response<RouterBody> {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 4em auto\">\n\
         <h1>{title}</h1>\n<p>{message}</p>\n</body></html>\n"
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    response
}

/// The page for a router error.
pub(crate) fn error_page(code: Code) -> Response<RouterBody> {
    match code {
        Code::H80 => html(
            code.status(),
            "Offline for Maintenance",
            "This app is in maintenance mode and will be back shortly.",
        ),
        _ => html(
            code.status(),
            "Application Error",
            "An error occurred in the application and your page could not be served. \
             If you are the application owner, check your logs for details \
             (<code>corral logs --tail</code>).",
        ),
    }
}

/// The page for a host no app serves; it names no app.
pub(crate) fn no_such_app() -> Response<RouterBody> {
    html(
        StatusCode::NOT_FOUND,
        "No such app",
        "There is no app at this address.",
    )
}

/// A plain answer to a request the router refuses to forward.
pub(crate) fn bad_request(status: StatusCode, why: &str) -> Response<RouterBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("{why}\n")))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_say_what_heroku_says() {
        assert_eq!(Code::H12.description(), "Request timeout");
        assert_eq!(Code::H12.to_string(), "H12");
        assert_eq!(
            error_page(Code::H10).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(Code::H27.status().as_u16(), 499);
        assert!(!Code::H80.is_error() && Code::H13.is_error());
        assert_eq!(no_such_app().status(), StatusCode::NOT_FOUND);
    }
}
