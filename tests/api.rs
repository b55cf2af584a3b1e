//! The Platform API and the corral CLI against an in-process corrald.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{http, ok, TestDaemon};

#[test]
fn health_needs_no_token_and_reports_versions() {
    let d = TestDaemon::start();
    let r = http(d.addr, "GET", "/health", &[], None);
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["api_version"], 3);
    assert_eq!(body["schema_version"], corral::state::SCHEMA_VERSION);
    assert!(body["systemd"]["reachable"].is_boolean());
}

#[test]
fn missing_or_wrong_tokens_get_401_and_nothing_else() {
    let d = TestDaemon::start();
    d.request("POST", "/apps", Some(r#"{"name":"secret-app"}"#));
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Basic Og==")],
        vec![("Authorization", "Bearer")],
    ] {
        for path in ["/apps", "/apps/secret-app", "/apps/no-such-app", "/account"] {
            let r = http(d.addr, "GET", path, &headers, None);
            assert_eq!(r.status, 401, "{path} {headers:?}");
            assert_eq!(r.json()["id"], "unauthorized");
            assert!(!r.body.contains("secret-app"));
        }
    }
    // Basic auth with the token as password works, as git will use it.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{}", d.token));
    let r = http(
        d.addr,
        "GET",
        "/account",
        &[("Authorization", &format!("Basic {basic}"))],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["email"], "tester@example.com");
}

#[test]
fn app_lifecycle_through_the_cli() {
    let d = TestDaemon::start();
    let (out, err) = ok(&d.corral(&["apps:create", "demo"]));
    assert!(err.contains("Creating ⬢ demo... done"), "{err}");
    assert!(out.contains("http://demo.localhost/"), "{out}");

    let (_, err) = ok(&d.corral(&["config:set", "-a", "demo", "A=1", "WEIRD=%n $HOME `x`"]));
    assert!(err.contains("done, v2"), "{err}");
    let (out, _) = ok(&d.corral(&["config:get", "-a", "demo", "WEIRD"]));
    assert_eq!(out, "%n $HOME `x`\n");
    let (out, _) = ok(&d.corral(&["config", "-a", "demo"]));
    assert!(out.contains("=== demo Config Vars"), "{out}");
    assert!(out.contains("A:     1"), "{out}");

    let (_, err) = ok(&d.corral(&["config:unset", "-a", "demo", "A"]));
    assert!(err.contains("done, v3"), "{err}");

    let (out, _) = ok(&d.corral(&["releases", "-a", "demo"]));
    assert!(out.contains("=== demo Releases - Current: v3"), "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('v')).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("v3  Remove A config vars"), "{out}");
    assert!(
        lines[1].starts_with("v2  Set A, WEIRD config vars"),
        "{out}"
    );
    assert!(lines[2].starts_with("v1  Initial release"), "{out}");
    assert!(lines[2].contains("tester@example.com"), "{out}");

    let (out, _) = ok(&d.corral(&["releases", "-a", "demo", "--json", "-n", "2"]));
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let versions: Vec<u64> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(versions, vec![3, 2]);

    let (_, err) = ok(&d.corral(&["ps:scale", "-a", "demo", "web=2", "worker=1:2x"]));
    assert!(
        err.contains("now running web at 2:Standard-1X, worker at 1:Standard-2X"),
        "{err}"
    );
    let (out, _) = ok(&d.corral(&["apps:info", "-a", "demo"]));
    assert!(out.contains("Dynos:       web: 2, worker: 1"), "{out}");
    assert!(out.contains("Owner:       tester@example.com"), "{out}");

    let (out, _) = ok(&d.corral(&["apps"]));
    assert_eq!(out, "=== tester@example.com Apps\n\ndemo\n");

    let refused = d.corral(&["apps:destroy", "-a", "demo"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--confirm demo"));
    let refused = d.corral(&["apps:destroy", "-a", "demo", "--confirm", "other"]);
    assert!(!refused.status.success());
    let (_, err) = ok(&d.corral(&["apps:destroy", "demo", "--confirm", "demo"]));
    assert!(
        err.contains("Destroying ⬢ demo (including all add-ons)... done"),
        "{err}"
    );
    let gone = d.corral(&["apps:info", "-a", "demo"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("Couldn't find that app."));
}

#[test]
fn an_unnamed_app_gets_a_heroku_style_name() {
    let d = TestDaemon::start();
    let (out, err) = ok(&d.corral(&["apps:create", "--json"]));
    let app: serde_json::Value = serde_json::from_str(&out).expect("json");
    let name = app["name"].as_str().expect("name");
    let parts: Vec<&str> = name.split('-').collect();
    assert_eq!(parts.len(), 3, "{name}");
    assert!(
        parts[2].len() == 4 && parts[2].parse::<u32>().is_ok(),
        "{name}"
    );
    assert!(err.contains("Creating app... done"), "{err}");
}

#[test]
fn bad_input_is_refused_with_422_and_writes_nothing() {
    let d = TestDaemon::start();
    assert_eq!(
        d.request("POST", "/apps", Some(r#"{"name":"demo"}"#))
            .status,
        201
    );

    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "POST",
            "/apps",
            r#"{"name":"Bad_Name"}"#,
            "lowercase letters",
        ),
        (
            "POST",
            "/apps",
            r#"{"name":"demo"}"#,
            "Name is already taken",
        ),
        ("POST", "/apps", r#"{"name":"x","region":"eu"}"#, "region"),
        (
            "PATCH",
            "/apps/demo/config-vars",
            r#"{"1BAD":"x"}"#,
            "letters, digits and underscores",
        ),
        (
            "PATCH",
            "/apps/demo/config-vars",
            r#"{"OK":"a\u0000b"}"#,
            "NUL",
        ),
        (
            "PATCH",
            "/apps/demo/formation/web",
            r#"{"quantity":101}"#,
            "between 0 and 100",
        ),
        (
            "PATCH",
            "/apps/demo/formation/web",
            r#"{"quantity":"-1"}"#,
            "between 0 and 100",
        ),
        (
            "PATCH",
            "/apps/demo/formation/web",
            r#"{"size":"huge"}"#,
            "standard-1X",
        ),
        (
            "PATCH",
            "/apps/demo",
            r#"{"name":"-x-"}"#,
            "lowercase letters",
        ),
    ];
    for (method, path, body, needle) in cases {
        let r = d.request(method, path, Some(body));
        assert_eq!(r.status, 422, "{method} {path} {body}: {}", r.body);
        let json = r.json();
        assert_eq!(json["id"], "invalid_params");
        assert!(
            json["message"].as_str().expect("message").contains(needle),
            "{method} {path} {body}: {}",
            r.body
        );
    }

    let big = format!(r#"{{"BIG":"{}"}}"#, "x".repeat(33 * 1024));
    let r = d.request("PATCH", "/apps/demo/config-vars", Some(&big));
    assert_eq!(r.status, 422);
    assert!(r.body.contains("32 kB"), "{}", r.body);

    for (body, needle) in [
        (r#"{"name":"demo2","surprise":1}"#, "unknown field"),
        ("not json", "not valid JSON"),
    ] {
        let r = d.request("POST", "/apps", Some(body));
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(needle), "{}", r.body);
    }

    // Nothing above was half-written: one app, one release, no vars.
    assert_eq!(
        d.request("GET", "/apps", None)
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let releases = d.request("GET", "/apps/demo/releases", None).json();
    assert_eq!(releases.as_array().map(Vec::len), Some(1));
    assert_eq!(d.request("GET", "/apps/demo/config-vars", None).body, "{}");
    assert_eq!(d.request("GET", "/apps/demo/formation", None).body, "[]");
}

#[test]
fn lists_paginate_with_range_and_next_range() {
    let d = TestDaemon::start();
    for name in ["app-e", "app-b", "app-d", "app-a", "app-c"] {
        assert_eq!(
            d.request("POST", "/apps", Some(&format!(r#"{{"name":"{name}"}}"#)))
                .status,
            201
        );
    }
    let mut seen = Vec::new();
    let mut range = "name ..; max=2".to_owned();
    // Five apps at two a page end on the third page; a Next-Range that
    // never stops (or points back) must fail here, not hang the test.
    const MAX_PAGES: usize = 3;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(
            pages <= MAX_PAGES,
            "still paging after {MAX_PAGES} pages: Range {range:?}, seen so far {seen:?}"
        );
        let r = http(
            d.addr,
            "GET",
            "/apps",
            &[
                ("Authorization", &format!("Bearer {}", d.token)),
                ("Range", &range),
            ],
            None,
        );
        let page: Vec<String> = r
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|a| a["name"].as_str().expect("name").to_owned())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match r.header("Next-Range") {
            Some(next) => {
                assert_eq!(r.status, 206);
                range = next.to_owned();
            }
            None => {
                assert_eq!(r.status, 200);
                break;
            }
        }
    }
    assert_eq!(seen, ["app-a", "app-b", "app-c", "app-d", "app-e"]);

    let r = http(
        d.addr,
        "GET",
        "/apps",
        &[
            ("Authorization", &format!("Bearer {}", d.token)),
            ("Range", "size ..; max=2"),
        ],
        None,
    );
    assert_eq!(r.status, 416);
    assert!(r.body.contains("id, name"), "{}", r.body);
}

#[test]
fn heroku_protocol_details() {
    let d = TestDaemon::start();
    let auth = format!("Bearer {}", d.token);
    // A client's Request-Id is echoed (the first of Heroku's CLI's list).
    let r = http(
        d.addr,
        "GET",
        "/account",
        &[("Authorization", &auth), ("Request-Id", "abc-123,def-456")],
        None,
    );
    assert_eq!(r.header("Request-Id"), Some("abc-123"));
    assert!(r
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json")));
    // version=3 and Heroku's CLI's 3.sdk are accepted; another version is not.
    for (accept, status) in [
        ("application/vnd.heroku+json; version=3", 200),
        ("application/vnd.heroku+json; version=3.sdk", 200),
        ("application/vnd.heroku+json; version=2", 406),
    ] {
        let r = http(
            d.addr,
            "GET",
            "/account",
            &[("Authorization", &auth), ("Accept", accept)],
            None,
        );
        assert_eq!(r.status, status, "{accept}");
    }
    // Apps are addressable by id as well as by name, and survive a rename.
    let app = d
        .request("POST", "/apps", Some(r#"{"name":"first"}"#))
        .json();
    let id = app["id"].as_str().expect("id");
    let renamed = d.request(
        "PATCH",
        &format!("/apps/{id}"),
        Some(r#"{"name":"second"}"#),
    );
    assert_eq!(renamed.json()["name"], "second");
    assert_eq!(d.request("GET", "/apps/second", None).json()["id"], id);
    assert_eq!(d.request("GET", "/apps/first", None).status, 404);
    // Scaling accepts Heroku's CLI's string and relative quantities.
    let r = d.request(
        "PATCH",
        "/apps/second/formation",
        Some(r#"{"updates":[{"type":"web","quantity":"2"}]}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.request(
        "PATCH",
        "/apps/second/formation",
        Some(r#"{"updates":[{"type":"web","quantity":"+3","size":"Standard-2X"}]}"#),
    );
    assert_eq!(r.json()[0]["quantity"], 5);
    assert_eq!(r.json()[0]["size"], "standard-2X");
    // A release's config snapshot is readable, as releases:info needs.
    d.request("PATCH", "/apps/second/config-vars", Some(r#"{"A":"1"}"#));
    d.request("PATCH", "/apps/second/config-vars", Some(r#"{"A":"2"}"#));
    assert_eq!(
        d.request("GET", "/apps/second/releases/v2/config-vars", None)
            .body,
        r#"{"A":"1"}"#
    );
    assert_eq!(
        d.request("GET", "/apps/second/releases/9/config-vars", None)
            .status,
        404
    );
    // Pipeline couplings are 404, which Heroku's apps:info expects.
    assert_eq!(
        d.request("GET", "/apps/second/pipeline-couplings", None)
            .status,
        404
    );
    assert_eq!(d.request("GET", "/apps/second/addons", None).body, "[]");
}

#[test]
fn the_unix_socket_is_group_only_and_serves_the_cli() {
    let d = TestDaemon::start();
    let socket = d.config.api_socket();
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    let out = support::corral_cli(
        &format!("unix://{}", socket.display()),
        &d.token,
        d.dir.path(),
        &["apps:create", "via-socket"],
    );
    ok(&out);
    assert_eq!(d.request("GET", "/apps/via-socket", None).status, 200);
}

#[test]
fn the_cli_explains_missing_settings() {
    let d = TestDaemon::start();
    let out = support::corral_cli(&d.url(), "", d.dir.path(), &["apps"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No API token"));
    let out = d.corral(&["config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No app specified"));
    let out = support::corral_cli("http://127.0.0.1:1", "t", d.dir.path(), &["apps"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Corral API"));
}

#[test]
fn custom_domains_end_to_end() {
    let d = TestDaemon::start();
    for name in ["demo", "other"] {
        let r = d.request("POST", "/apps", Some(&format!(r#"{{"name":"{name}"}}"#)));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let demo_id = d.request("GET", "/apps/demo", None).json()["id"].clone();

    // Before any is added: just the default domain, which is not stored.
    let r = d.request("GET", "/apps/demo/domains", None);
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let default = &list[0];
    assert_eq!(default["hostname"], "demo.localhost");
    assert_eq!(default["kind"], "heroku");
    assert_eq!(default["cname"], serde_json::Value::Null);
    assert_eq!(default["href"], "http://demo.localhost");
    assert_eq!(default["status"], "succeeded");
    assert_eq!(default["app"]["name"], "demo");
    assert_eq!(default["app"]["id"], demo_id);
    let default_id = default["id"].as_str().expect("id").to_owned();

    let r = d.request(
        "POST",
        "/apps/demo/domains",
        Some(r#"{"hostname":"WWW.Example.com.","sni_endpoint":null}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let www = r.json();
    for (field, value) in [
        ("hostname", "www.example.com"),
        ("kind", "custom"),
        ("cname", "demo.localhost"),
        ("href", "http://www.example.com"),
        ("status", "succeeded"),
    ] {
        assert_eq!(www[field], value, "{field}: {www}");
    }
    for field in ["acm_status", "acm_status_reason", "sni_endpoint"] {
        assert_eq!(www[field], serde_json::Value::Null, "{field}: {www}");
    }
    assert_eq!(www["app"]["name"], "demo");
    assert_eq!(www["created_at"], www["updated_at"]);
    let www_id = www["id"].as_str().expect("id").to_owned();
    for body in [
        r#"{"hostname":"api.example.com"}"#,
        r#"{"hostname":"*.example.org"}"#,
    ] {
        assert_eq!(
            d.request("POST", "/apps/demo/domains", Some(body)).status,
            201
        );
    }

    // The default domain first, then custom domains by hostname; also with
    // the Range header Heroku's CLI sends.
    let hostnames = |r: &support::HttpResponse| -> Vec<String> {
        r.json()
            .as_array()
            .expect("array")
            .iter()
            .map(|d| d["hostname"].as_str().expect("hostname").to_owned())
            .collect()
    };
    let expected = [
        "demo.localhost",
        "*.example.org",
        "api.example.com",
        "www.example.com",
    ];
    assert_eq!(
        hostnames(&d.request("GET", "/apps/demo/domains", None)),
        expected
    );
    let auth = format!("Bearer {}", d.token);
    let r = http(
        d.addr,
        "GET",
        "/apps/demo/domains",
        &[("Authorization", &auth), ("Range", "id ..; max=1000;")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(hostnames(&r)[0], "demo.localhost");
    assert_eq!(hostnames(&r).len(), 4);
    // Pages of one chain through every domain exactly once.
    let mut seen = Vec::new();
    let mut range = "hostname ..; max=1".to_owned();
    loop {
        let r = http(
            d.addr,
            "GET",
            "/apps/demo/domains",
            &[("Authorization", &auth), ("Range", &range)],
            None,
        );
        seen.extend(hostnames(&r));
        match r.header("Next-Range") {
            Some(next) => range = next.to_owned(),
            None => break,
        }
        assert!(seen.len() <= 4, "the pages loop: {seen:?}");
    }
    assert_eq!(seen, expected);

    // One domain by id, by hostname in any spelling; the default too.
    for path in [
        format!("/apps/demo/domains/{www_id}"),
        "/apps/demo/domains/www.EXAMPLE.com".to_owned(),
    ] {
        let r = d.request("GET", &path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json(), www, "{path}");
    }
    for path in [
        format!("/apps/demo/domains/{default_id}"),
        "/apps/demo/domains/demo.localhost".to_owned(),
    ] {
        let r = d.request("GET", &path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.json()["kind"], "heroku", "{path}");
    }
    let r = d.request("GET", "/apps/demo/domains/%2A.example.org", None);
    assert_eq!(r.json()["hostname"], "*.example.org");

    // Refusals: 422 invalid_params with a message that says what is wrong.
    let cases: &[(&str, &str, &str)] = &[
        (
            "demo",
            r#"{"hostname":"bad_host.example.com"}"#,
            "letters, digits and dashes",
        ),
        ("demo", r#"{"hostname":"localhost"}"#, "two labels"),
        ("demo", r#"{"hostname":"www.*.example.com"}"#, "first label"),
        (
            "demo",
            r#"{"hostname":"other.localhost"}"#,
            "every app already has",
        ),
        (
            "demo",
            r#"{"hostname":"*.demo.localhost"}"#,
            "every app already has",
        ),
        ("demo", r#"{"hostname":"10.0.0.1"}"#, "IP address"),
        (
            "other",
            r#"{"hostname":"www.example.com"}"#,
            "www.example.com is already in use by another app.",
        ),
        (
            "demo",
            r#"{"hostname":"www.example.com"}"#,
            "already added to this app",
        ),
        (
            "demo",
            r#"{"hostname":"new.example.com","sni_endpoint":"my-cert"}"#,
            "sni_endpoint",
        ),
    ];
    for (app, body, needle) in cases {
        let r = d.request("POST", &format!("/apps/{app}/domains"), Some(body));
        assert_eq!(r.status, 422, "{app} {body}: {}", r.body);
        assert_eq!(r.json()["id"], "invalid_params");
        assert!(
            r.json()["message"]
                .as_str()
                .expect("message")
                .contains(needle),
            "{app} {body}: {}",
            r.body
        );
    }
    let r = d.request(
        "POST",
        "/apps/demo/domains",
        Some(r#"{"host":"x.example.com"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = d.request("DELETE", "/apps/demo/domains/demo.localhost", None);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("cannot be removed"), "{}", r.body);
    assert_eq!(
        d.request("DELETE", &format!("/apps/demo/domains/{default_id}"), None)
            .status,
        422
    );

    // Not found: unknown domains, another app's domain, unknown apps.
    for (method, path) in [
        ("GET", "/apps/demo/domains/nope.example.com"),
        ("GET", "/apps/demo/domains/not_a_hostname"),
        ("GET", "/apps/other/domains/www.example.com"),
        ("DELETE", "/apps/other/domains/www.example.com"),
        ("DELETE", "/apps/demo/domains/nope.example.com"),
        ("GET", "/apps/nope/domains"),
        ("POST", "/apps/nope/domains"),
    ] {
        let body = (method == "POST").then_some(r#"{"hostname":"x.example.com"}"#);
        let r = d.request(method, path, body);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["id"], "not_found");
    }

    // Delete by id and by hostname, answered with the deleted domain.
    let r = d.request("DELETE", &format!("/apps/demo/domains/{www_id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), www);
    let r = d.request("DELETE", "/apps/demo/domains/API.example.com", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["hostname"], "api.example.com");
    assert_eq!(
        d.request("GET", &format!("/apps/demo/domains/{www_id}"), None)
            .status,
        404
    );
    assert_eq!(
        hostnames(&d.request("GET", "/apps/demo/domains", None)),
        ["demo.localhost", "*.example.org"]
    );

    // A deleted app's hostnames are free for others.
    assert_eq!(d.request("DELETE", "/apps/demo", None).status, 200);
    let r = d.request(
        "POST",
        "/apps/other/domains",
        Some(r#"{"hostname":"*.example.org"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["cname"], "other.localhost");
}

#[test]
fn domains_and_maintenance_through_the_cli() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));

    let (out, _) = ok(&d.corral(&["domains", "-a", "demo"]));
    assert_eq!(out, "=== demo Heroku Domain\ndemo.localhost\n");

    let (out, err) = ok(&d.corral(&["domains:add", "-a", "demo", "www.example.com"]));
    assert!(
        err.contains("Adding www.example.com to ⬢ demo... done"),
        "{err}"
    );
    assert_eq!(
        out,
        "Configure your app's DNS provider to point to the DNS Target demo.localhost.\n"
    );
    let (out, _) = ok(&d.corral(&["domains:add", "-a", "demo", "Example.com"]));
    assert!(out.contains("use an ALIAS or ANAME record"), "{out}");

    let (out, _) = ok(&d.corral(&["domains", "-a", "demo"]));
    assert_eq!(
        out,
        "=== demo Heroku Domain\n\
         demo.localhost\n\
         \n\
         === demo Custom Domains\n\
         Domain Name      DNS Record Type  DNS Target\n\
         example.com      ALIAS or ANAME   demo.localhost\n\
         www.example.com  CNAME            demo.localhost\n"
    );
    let (out, _) = ok(&d.corral(&["domains", "-a", "demo", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(3), "{json}");

    let (out, _) = ok(&d.corral(&["domains:info", "-a", "demo", "WWW.example.com"]));
    assert!(out.starts_with("=== www.example.com\n"), "{out}");
    assert!(out.contains("DNS Target:      demo.localhost"), "{out}");
    assert!(out.contains("Kind:            custom"), "{out}");

    // Errors come back with the API's message and a failing status.
    let taken = d.corral(&["domains:add", "-a", "demo", "www.example.com"]);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already added to this app"));
    let bad = d.corral(&["domains:remove", "-a", "demo", "not a host"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid hostname"));
    let default = d.corral(&["domains:remove", "-a", "demo", "demo.localhost"]);
    assert!(!default.status.success());
    assert!(String::from_utf8_lossy(&default.stderr).contains("cannot be removed"));

    let (_, err) = ok(&d.corral(&["domains:remove", "-a", "demo", "www.example.com"]));
    assert!(
        err.contains("Removing www.example.com from ⬢ demo... done"),
        "{err}"
    );
    ok(&d.corral(&["domains:add", "-a", "demo", "*.example.org"]));
    let (_, err) = ok(&d.corral(&["domains:clear", "-a", "demo"]));
    assert!(
        err.contains("Removing all domains from ⬢ demo... done"),
        "{err}"
    );
    let (out, _) = ok(&d.corral(&["domains", "-a", "demo"]));
    assert_eq!(out, "=== demo Heroku Domain\ndemo.localhost\n");

    let (out, _) = ok(&d.corral(&["maintenance", "-a", "demo"]));
    assert_eq!(out, "off\n");
    let (_, err) = ok(&d.corral(&["maintenance:on", "-a", "demo"]));
    assert!(
        err.contains("Enabling maintenance mode for ⬢ demo... done"),
        "{err}"
    );
    let (out, _) = ok(&d.corral(&["maintenance", "-a", "demo"]));
    assert_eq!(out, "on\n");
    assert_eq!(
        d.request("GET", "/apps/demo", None).json()["maintenance"],
        true
    );
    let (_, err) = ok(&d.corral(&["maintenance:off", "-a", "demo"]));
    assert!(
        err.contains("Disabling maintenance mode for ⬢ demo... done"),
        "{err}"
    );
    let (out, _) = ok(&d.corral(&["maintenance", "-a", "demo"]));
    assert_eq!(out, "off\n");
}

/// A certificate signed by a throwaway CA for `names`, valid from
/// `days.0` to `days.1` days from now: (chain PEM, key PEM).
fn certificate(names: &[&str], days: (i64, i64)) -> (String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Corral Test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(days.0);
    params.not_after = now + time::Duration::days(days.1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    (
        format!("{}{}", cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    )
}

fn sni_body(chain: &str, key: &str) -> String {
    serde_json::json!({"certificate_chain": chain, "private_key": key}).to_string()
}

#[test]
fn sni_endpoints_end_to_end() {
    let d = TestDaemon::start();
    assert_eq!(
        d.request("POST", "/apps", Some(r#"{"name":"demo"}"#))
            .status,
        201
    );
    for host in ["www.example.com", "api.example.com", "other.example.org"] {
        let body = format!(r#"{{"hostname":"{host}"}}"#);
        assert_eq!(
            d.request("POST", "/apps/demo/domains", Some(&body)).status,
            201
        );
    }
    let www_id = d
        .request("GET", "/apps/demo/domains/www.example.com", None)
        .json()["id"]
        .clone();
    let api_id = d
        .request("GET", "/apps/demo/domains/api.example.com", None)
        .json()["id"]
        .clone();
    let r = d.request("GET", "/apps/demo/sni-endpoints", None);
    assert_eq!((r.status, r.json()), (200, serde_json::json!([])));

    // Create: Heroku's shape, never the key.
    let (chain, key) = certificate(&["www.example.com", "*.example.com"], (-1, 90));
    let r = d.request(
        "POST",
        "/apps/demo/sni-endpoints",
        Some(&sni_body(&chain, &key)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.contains("PRIVATE KEY"), "{}", r.body);
    let created = r.json();
    assert_eq!(created["app"]["name"], "demo");
    assert_eq!(created["certificate_chain"], chain.as_str());
    assert_eq!(
        created["domains"],
        serde_json::json!([api_id, www_id]),
        "the custom domains it covers, by id"
    );
    let ssl = &created["ssl_cert"];
    assert_eq!(
        ssl["cert_domains"],
        serde_json::json!(["www.example.com", "*.example.com"])
    );
    assert_eq!(ssl["subject"], "/CN=www.example.com");
    assert_eq!(ssl["issuer"], "/CN=Corral Test CA");
    assert_eq!(ssl["ca_signed?"], false);
    assert_eq!(ssl["self_signed?"], false);
    assert_eq!(ssl["acm"], false);
    for field in ["starts_at", "expires_at"] {
        assert!(ssl[field].is_string(), "{field}: {ssl}");
    }
    let name = created["name"].as_str().expect("name").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();

    // List and info, by name and by id.
    let r = d.request("GET", "/apps/demo/sni-endpoints", None);
    assert_eq!(r.json(), serde_json::json!([created.clone()]));
    for path in [
        format!("/apps/demo/sni-endpoints/{name}"),
        format!("/apps/demo/sni-endpoints/{id}"),
    ] {
        let r = d.request("GET", &path, None);
        assert_eq!((r.status, r.json()), (200, created.clone()), "{path}");
    }

    // Domains link the endpoint that covers them.
    let r = d.request("GET", "/apps/demo/domains/www.example.com", None);
    assert_eq!(r.json()["sni_endpoint"]["name"], name.as_str());
    let r = d.request("GET", "/apps/demo/domains/other.example.org", None);
    assert_eq!(r.json()["sni_endpoint"], serde_json::Value::Null);

    // A domain may name the endpoint (Heroku's CLI sends it).
    let body = format!(r#"{{"hostname":"new.example.com","sni_endpoint":"{name}"}}"#);
    assert_eq!(
        d.request("POST", "/apps/demo/domains", Some(&body)).status,
        201
    );

    // Refusals: 422 with what to send instead; nothing is stored.
    let (other_chain, other_key) = certificate(&["www.example.com"], (-1, 90));
    let (old_chain, old_key) = certificate(&["old.example.com"], (-30, -1));
    for (body, needle) in [
        (sni_body(&chain, &other_key), "does not match"),
        (sni_body(&old_chain, &old_key), "expired"),
        (sni_body("not pem", &key), "no PEM certificate"),
        (
            sni_body(&chain, "not a key"),
            "not a readable PEM private key",
        ),
    ] {
        let r = d.request("POST", "/apps/demo/sni-endpoints", Some(&body));
        assert_eq!(r.status, 422, "{needle}: {}", r.body);
        assert_eq!(r.json()["id"], "invalid_params");
        let message = r.json()["message"].as_str().expect("message").to_owned();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(
        d.request("GET", "/apps/demo/sni-endpoints", None)
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let r = d.request(
        "POST",
        "/apps/demo/sni-endpoints",
        Some(r#"{"certificate_chain":"x"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // Update replaces the certificate (a renewal); a bad key is refused.
    let r = d.request(
        "PATCH",
        &format!("/apps/demo/sni-endpoints/{name}"),
        Some(&sni_body(&other_chain, &key)),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = d.request(
        "PATCH",
        &format!("/apps/demo/sni-endpoints/{name}"),
        Some(&sni_body(&other_chain, &other_key)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], name.as_str());
    assert_eq!(r.json()["domains"], serde_json::json!([www_id]));

    // Delete, then it is gone.
    let r = d.request("DELETE", &format!("/apps/demo/sni-endpoints/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], name.as_str());
    for (method, path) in [
        ("GET", format!("/apps/demo/sni-endpoints/{name}")),
        ("DELETE", format!("/apps/demo/sni-endpoints/{name}")),
        ("GET", "/apps/nope/sni-endpoints".to_owned()),
    ] {
        let r = d.request(method, &path, None);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    let body = format!(r#"{{"hostname":"gone.example.com","sni_endpoint":"{name}"}}"#);
    let r = d.request("POST", "/apps/demo/domains", Some(&body));
    assert_eq!(r.status, 422, "{}", r.body);
}

#[test]
fn certs_through_the_cli() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));
    ok(&d.corral(&["domains:add", "-a", "demo", "www.example.com"]));
    let (out, _) = ok(&d.corral(&["certs", "-a", "demo"]));
    assert!(out.contains("has no SSL certificates"), "{out}");

    let (chain, key) = certificate(&["www.example.com"], (-1, 90));
    let crt_path = d.dir.path().join("server.crt");
    let key_path = d.dir.path().join("server.key");
    std::fs::write(&crt_path, &chain).expect("write");
    std::fs::write(&key_path, &key).expect("write");
    let (crt, key) = (
        crt_path.to_str().expect("path"),
        key_path.to_str().expect("path"),
    );
    let (out, err) = ok(&d.corral(&["certs:add", "-a", "demo", crt, key]));
    assert!(
        err.contains("Adding SSL certificate to ⬢ demo... done"),
        "{err}"
    );
    assert!(out.contains("Common Name(s): www.example.com"), "{out}");
    assert!(out.contains("Domain(s):      www.example.com"), "{out}");

    let (out, _) = ok(&d.corral(&["certs", "-a", "demo"]));
    let mut lines = out.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("Name") && header.ends_with("Trusted  Type  Domains"),
        "{out}"
    );
    let row = lines.next().expect("row");
    assert!(
        row.contains("www.example.com") && row.ends_with("False    SNI   1"),
        "{out}"
    );

    let (out, _) = ok(&d.corral(&["certs:info", "-a", "demo"]));
    assert!(out.contains("Issuer:         /CN=Corral Test CA"), "{out}");

    let refused = d.corral(&["certs:remove", "-a", "demo"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--confirm demo"));
    let (_, err) = ok(&d.corral(&["certs:remove", "-a", "demo", "--confirm", "demo"]));
    assert!(err.contains("Removing SSL certificate"), "{err}");
    let (out, _) = ok(&d.corral(&["certs", "-a", "demo"]));
    assert!(out.contains("has no SSL certificates"), "{out}");
}
