//! The proxy's request rules: ambiguous framing, line limits, request ids, hop-by-hop headers, upgrades, Via, HTTPS redirects.

use super::*;

fn req(headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder().uri("/x?y=1");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).expect("request")
}

#[test]
fn ambiguous_framing_is_refused() {
    assert!(refusal(&req(&[("content-length", "5")])).is_none());
    assert!(refusal(&req(&[("transfer-encoding", "chunked")])).is_none());
    assert_eq!(
        refusal(&req(&[
            ("content-length", "5"),
            ("transfer-encoding", "chunked")
        ]))
        .map(|r| r.0),
        Some(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        refusal(&req(&[("content-length", "5"), ("content-length", "5")])).map(|r| r.0),
        Some(StatusCode::BAD_REQUEST)
    );
    assert_eq!(
        refusal(&req(&[("transfer-encoding", "gzip, chunked")])).map(|r| r.0),
        Some(StatusCode::NOT_IMPLEMENTED)
    );
    let long = "a".repeat(MAX_LINE_BYTES);
    assert_eq!(
        refusal(&req(&[("x-big", &long)])).map(|r| r.0),
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );
}

#[test]
fn lines_of_8_kb_pass_and_longer_ones_are_refused() {
    // A header line is the name, ": " and the value.
    let value = |line: usize| "v".repeat(line - "x-big: ".len());
    assert!(refusal(&req(&[("x-big", &value(MAX_LINE_BYTES))])).is_none());
    assert_eq!(
        refusal(&req(&[("x-big", &value(MAX_LINE_BYTES + 1))])).map(|r| r.0),
        Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );
    let target = |len: usize| {
        Request::builder()
            .uri(format!("/{}", "t".repeat(len - 1)))
            .body(())
            .expect("request")
    };
    assert!(refusal(&target(MAX_LINE_BYTES)).is_none());
    assert_eq!(
        refusal(&target(MAX_LINE_BYTES + 1)).map(|r| r.0),
        Some(StatusCode::URI_TOO_LONG)
    );
}

#[test]
fn request_ids_are_kept_when_valid() {
    let good = "a".repeat(20);
    assert_eq!(request_id(&req(&[("x-request-id", &good)])), good);
    let short = request_id(&req(&[("x-request-id", "short")]));
    assert_ne!(short, "short");
    assert_eq!(short.len(), 36, "a generated uuid");
    assert_ne!(
        request_id(&req(&[("x-request-id", &format!("{good} x"))])),
        good
    );
}

/// The header names left after [`strip_hop_by_hop`] of `pairs`.
fn left_after_stripping(pairs: &[(&'static str, &'static str)]) -> Vec<String> {
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        headers.append(*k, HeaderValue::from_static(v));
    }
    strip_hop_by_hop(&mut headers);
    headers.keys().map(|k| k.as_str().to_owned()).collect()
}

#[test]
fn hop_by_hop_headers_go() {
    let left = left_after_stripping(&[
        ("connection", "keep-alive, x-secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("transfer-encoding", "chunked"),
        ("x-kept", "1"),
    ]);
    assert_eq!(left, ["x-kept"]);

    // Without Connection, the others are still found and removed.
    let left = left_after_stripping(&[
        ("host", "a"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
    ]);
    assert_eq!(left, ["host"]);
}

#[test]
fn upgrades_pass_but_h2c_does_not() {
    let ws = req(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    assert_eq!(
        upgrade_protocol(&ws).as_ref().map(|v| v.as_bytes()),
        Some(&b"websocket"[..])
    );
    let h2c = req(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
    ]);
    assert!(upgrade_protocol(&h2c).is_none());
    assert!(upgrade_protocol(&req(&[("upgrade", "websocket")])).is_none());
}

#[test]
fn plain_requests_are_redirected_with_the_method_kept() {
    use http::Method;
    assert_eq!(redirect_status(&Method::GET), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        redirect_status(&Method::HEAD),
        StatusCode::MOVED_PERMANENTLY
    );
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert_eq!(redirect_status(&method), StatusCode::PERMANENT_REDIRECT);
    }
    assert_eq!(
        https_location("Shop.Example.com:80", 443, "/cart?x=1"),
        "https://shop.example.com/cart?x=1"
    );
    assert_eq!(
        https_location("shop.example.com", 8443, "/"),
        "https://shop.example.com:8443/"
    );
}

#[test]
fn via_is_appended() {
    let mut headers = HeaderMap::new();
    append_via(&mut headers, Version::HTTP_11);
    append_via(&mut headers, Version::HTTP_2);
    assert_eq!(headers[header::VIA], "1.1 corral, 2 corral");
}
