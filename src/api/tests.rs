//! The API's request and answer rules without a server: ids, versions, tokens, error bodies, log session limits.

use http::header::{HeaderValue, ACCEPT, ALLOW, AUTHORIZATION};
use http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::log_sessions::log_session_spec;
use super::request::{base_url, bearer_secret, check_accept, check_compat, request_id};
use super::respond::error_response;
use super::types;

fn headers(pairs: &[(http::header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name.clone(), HeaderValue::from_str(value).expect("header"));
    }
    map
}

#[test]
fn request_ids_keep_the_clients_newest_and_replace_insane_ones() {
    let rid = |v: &str| request_id(&headers(&[("request-id".parse().expect("name"), v)]));
    // Heroku's CLI sends a history, newest first.
    assert_eq!(rid("abc-123, older-1, older-2"), "abc-123");
    for insane in ["", "a b", "x;y", &"a".repeat(201)] {
        let made = rid(insane);
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{insane:?} -> {made}");
    }
    assert!(uuid::Uuid::parse_str(&request_id(&HeaderMap::new())).is_ok());
}

#[test]
fn only_an_explicit_other_api_version_is_refused() {
    let accept = |v: &str| check_accept(&headers(&[(ACCEPT, v)]));
    assert!(check_accept(&HeaderMap::new()).is_ok());
    assert!(accept("application/json").is_ok());
    assert!(accept(types::HEROKU_ACCEPT).is_ok());
    assert!(accept("application/vnd.heroku+json; version=3.sdk").is_ok());
    let Err(ApiError::NotAcceptable(message)) = accept("application/vnd.heroku+json; version=2")
    else {
        panic!("version 2 must be refused");
    };
    assert!(message.contains(types::HEROKU_ACCEPT), "{message}");
}

#[test]
fn tokens_come_from_bearer_or_basic_auth_passwords() {
    let auth = |v: &str| bearer_secret(&headers(&[(AUTHORIZATION, v)]));
    assert_eq!(auth("Bearer  tok-1 ").as_deref(), Some("tok-1"));
    assert_eq!(auth("bearer tok-1").as_deref(), Some("tok-1"));
    // `git` and `curl -u :T` send the token as the password.
    assert_eq!(auth("Basic OnRvay0y").as_deref(), Some("tok-2"));
    assert_eq!(auth("Basic dXNlcjp0b2stMw==").as_deref(), Some("tok-3"));
    for refused in ["Bearer ", "Basic dXNlcjo=", "Basic !!!", "Token tok", "tok"] {
        assert_eq!(auth(refused), None, "{refused}");
    }
    assert_eq!(bearer_secret(&HeaderMap::new()), None);
}

#[test]
fn next_urls_use_a_sane_host_or_localhost() {
    assert_eq!(
        base_url(Some("api.example.com:5000")),
        "http://api.example.com:5000"
    );
    assert_eq!(base_url(Some("[::1]:80")), "http://[::1]:80");
    assert_eq!(base_url(Some("evil.com/x?")), "http://localhost");
    assert_eq!(base_url(None), "http://localhost");
}

#[test]
fn compatibility_fields_take_only_corrals_one_value() {
    assert!(check_compat("stack", None, "heroku-24").is_ok());
    assert!(check_compat("stack", Some("heroku-24"), "heroku-24").is_ok());
    let Err(ApiError::Invalid(message)) = check_compat("stack", Some("cedar"), "heroku-24") else {
        panic!("another stack must be refused");
    };
    assert!(message.contains("leave stack out"), "{message}");
}

#[test]
fn a_405_says_what_is_allowed_in_the_header_and_the_body() {
    let e = ApiError::MethodNotAllowed {
        method: "POST".to_owned(),
        allowed: "GET (builds start with git push)".to_owned(),
    };
    let response = error_response(&e);
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers().get(ALLOW).expect("Allow"), "GET");
    let body = e.body();
    assert_eq!(body.id, "method_not_allowed");
    assert!(body.message.contains("git push"), "{}", body.message);
}

#[test]
fn log_sessions_hold_herokus_limits_and_sane_filters() {
    let spec = |req: types::LogSessionCreate| log_session_spec(&req);
    let default = spec(types::LogSessionCreate::default()).expect("defaults");
    assert_eq!(default.lines, crate::logs::sessions::DEFAULT_LINES);
    assert!(!default.tail);
    let too_many = types::LogSessionCreate {
        lines: Some(crate::logs::sessions::MAX_LINES as u32 + 1),
        ..Default::default()
    };
    assert!(matches!(spec(too_many), Err(ApiError::Invalid(m)) if m.contains("log drain")));
    let by_type = types::LogSessionCreate {
        process_type: Some("web".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        spec(by_type).expect("type").filter.dyno.as_deref(),
        Some("web")
    );
    for bad in ["", "web 1", "../x", &"a".repeat(65)] {
        let req = types::LogSessionCreate {
            dyno: Some(bad.to_owned()),
            ..Default::default()
        };
        assert!(spec(req).is_err(), "{bad:?}");
    }
}
