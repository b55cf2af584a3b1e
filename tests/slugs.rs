//! Slugs and releases through the API and the CLI: deploy a directory,
//! content addressing, upload checks, rollback of code and config, GC.

mod support;

use std::path::Path;

use support::{http, ok, TestDaemon};

fn write_app(dir: &Path, body: &str) {
    std::fs::create_dir_all(dir.join("bin")).expect("app dir");
    std::fs::write(dir.join("Procfile"), "web: bin/web\nworker: bin/work\n").expect("Procfile");
    std::fs::write(dir.join("bin/web"), format!("#!/bin/sh\necho {body}\n")).expect("web");
    std::fs::write(dir.join("index.html"), body).expect("index");
}

fn stored_slugs(d: &TestDaemon) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let root = d.config.slugs_dir().join("sha256");
    for shard in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(file.path());
        }
    }
    found.sort();
    found
}

#[test]
fn deploying_a_directory_twice_stores_one_slug() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));
    let app_dir = d.dir.path().join("app");
    write_app(&app_dir, "one");
    let dir = app_dir.to_str().expect("utf-8");

    let (out1, err) = ok(&d.corral(&["deploy:dir", dir, "-a", "demo", "--commit", "abcdef123456"]));
    assert!(err.contains("done, v2"), "{err}");
    let (out2, err) = ok(&d.corral(&["deploy:dir", dir, "-a", "demo"]));
    assert!(err.contains("done, v3"), "{err}");
    let checksum = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .map(str::to_owned)
    };
    assert_eq!(checksum(&out1), checksum(&out2), "same tree, same digest");
    assert_eq!(stored_slugs(&d).len(), 1, "one stored file");

    write_app(&app_dir, "two");
    let (out3, _) = ok(&d.corral(&["deploy:dir", dir, "-a", "demo"]));
    assert_ne!(checksum(&out1), checksum(&out3));
    assert_eq!(stored_slugs(&d).len(), 2);
    let name = stored_slugs(&d)[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.len() == 64 + ".tar.gz".len() && name.ends_with(".tar.gz"),
        "{name}"
    );

    let (out, _) = ok(&d.corral(&["releases", "-a", "demo"]));
    assert!(out.contains("v2  Deploy abcdef1"), "{out}");
    // The deploy declared web and worker: web starts at one dyno.
    let (out, _) = ok(&d.corral(&["ps:formation", "-a", "demo"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("web") && l.contains(" 1 ") && l.contains("bin/web")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("worker") && l.contains(" 0 ")),
        "{out}"
    );
}

#[test]
fn rollback_restores_code_and_config() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));
    let app_dir = d.dir.path().join("app");
    write_app(&app_dir, "old");
    let dir = app_dir.to_str().expect("utf-8");
    ok(&d.corral(&["config:set", "-a", "demo", "COLOR=blue"])); // v2
    ok(&d.corral(&["deploy:dir", dir, "-a", "demo"])); // v3: old code, blue
    let v3 = d.request("GET", "/apps/demo/releases/3", None).json();
    ok(&d.corral(&["config:set", "-a", "demo", "COLOR=red", "EXTRA=1"])); // v4
    write_app(&app_dir, "new");
    ok(&d.corral(&["deploy:dir", dir, "-a", "demo"])); // v5: new code, red

    let (_, err) = ok(&d.corral(&["releases:rollback", "v3", "-a", "demo"]));
    assert!(
        err.contains("Rolling back ⬢ demo to v3... done, v6"),
        "{err}"
    );
    let v6 = d.request("GET", "/apps/demo/releases/6", None).json();
    assert_eq!(v6["description"], "Rollback to v3");
    assert_eq!(v6["slug"]["id"], v3["slug"]["id"], "code of v3");
    assert!(v6["current"].as_bool().expect("current"));
    let vars = d.request("GET", "/apps/demo/config-vars", None).json();
    assert_eq!(vars, serde_json::json!({"COLOR": "blue"}), "config of v3");

    // Without a version: the previous eligible release (v5).
    let (_, err) = ok(&d.corral(&["releases:rollback", "-a", "demo"]));
    assert!(err.contains("to v5... done, v7"), "{err}");
    let (out, _) = ok(&d.corral(&["releases:info", "v7", "-a", "demo"]));
    assert!(out.contains("=== Release v7"), "{out}");
    assert!(out.contains("Rollback to v5"), "{out}");
    assert!(out.contains("COLOR: red"), "{out}");

    // A release without code cannot be a rollback target.
    let r = d.request("POST", "/apps/demo/releases", Some(r#"{"release":"1"}"#));
    assert_eq!(r.status, 422, "{}", r.body);
}

#[test]
fn uploads_are_checked_and_single_use() {
    let d = TestDaemon::start();
    d.request("POST", "/apps", Some(r#"{"name":"demo"}"#));
    let wrong = format!("SHA256:{}", "0".repeat(64));
    let slug = d.request(
        "POST",
        "/apps/demo/slugs",
        Some(&format!(
            r#"{{"process_types":{{"web":"./web"}},"checksum":"{wrong}"}}"#
        )),
    );
    assert_eq!(slug.status, 201, "{}", slug.body);
    let slug = slug.json();
    assert_eq!(slug["blob"]["method"], "PUT");
    let url = slug["blob"]["url"].as_str().expect("url");
    let path = &url[url.find("/blobs/").expect("blob path")..];

    // Bytes that do not match the announced checksum are refused.
    let r = http(d.addr, "PUT", path, &[], Some("not the slug"));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("checksum") || r.body.contains("Checksum"),
        "{}",
        r.body
    );
    let tmp = d.config.slugs_dir().join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "no temp left"
    );
    assert!(stored_slugs(&d).is_empty());

    // A wrong signature reveals nothing.
    let forged = path.replace("signature=", "signature=x");
    assert_eq!(http(d.addr, "PUT", &forged, &[], Some("x")).status, 404);

    // Without an announced checksum any bytes are taken, once.
    let slug = d
        .request(
            "POST",
            "/apps/demo/slugs",
            Some(r#"{"process_types":{"web":"./web"}}"#),
        )
        .json();
    let url = slug["blob"]["url"].as_str().expect("url");
    let path = url[url.find("/blobs/").expect("blob path")..].to_owned();
    let r = http(d.addr, "PUT", &path, &[], Some("bytes"));
    assert_eq!(r.status, 200, "{}", r.body);
    let uploaded = r.json();
    assert_eq!(uploaded["size"], 5);
    assert!(uploaded["checksum"]
        .as_str()
        .expect("checksum")
        .starts_with("SHA256:"));
    assert_eq!(http(d.addr, "PUT", &path, &[], Some("again")).status, 404);

    // Bad slug requests: a broken process type, a malformed checksum.
    for body in [
        r#"{"process_types":{"Web!":"x"}}"#,
        r#"{"process_types":{"web":""}}"#,
        r#"{"process_types":{},"checksum":"MD5:abc"}"#,
    ] {
        let r = d.request("POST", "/apps/demo/slugs", Some(body));
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    // Deploying a slug that was never uploaded is refused.
    let pending = d
        .request("POST", "/apps/demo/slugs", Some(r#"{"process_types":{}}"#))
        .json();
    let r = d.request(
        "POST",
        "/apps/demo/releases",
        Some(&format!(
            r#"{{"slug":"{}"}}"#,
            pending["id"].as_str().expect("id")
        )),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not been uploaded"), "{}", r.body);
}

#[test]
fn a_broken_procfile_is_refused_before_anything_is_sent() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));
    let app_dir = d.dir.path().join("broken");
    std::fs::create_dir_all(&app_dir).expect("dir");
    std::fs::write(app_dir.join("Procfile"), "web: ok\nthis is not a process\n").expect("Procfile");
    let out = d.corral(&["deploy:dir", app_dir.to_str().expect("utf-8"), "-a", "demo"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Procfile line 2"));
    assert_eq!(
        d.request("GET", "/apps/demo/releases", None)
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn gc_keeps_retained_releases_and_frees_the_rest() {
    let d = TestDaemon::start();
    ok(&d.corral(&["apps:create", "demo"]));
    let app_dir = d.dir.path().join("app");
    let dir = app_dir.to_str().expect("utf-8");
    for i in 0..4 {
        write_app(&app_dir, &format!("version {i}"));
        ok(&d.corral(&["deploy:dir", dir, "-a", "demo"]));
    }
    assert_eq!(stored_slugs(&d).len(), 4);
    let mut config = d.config.clone();
    config.gc.retain_releases = 2;
    let config_path = d.dir.path().join("gc.toml");
    std::fs::write(
        &config_path,
        format!(
            "state-dir = \"{}\"\n[gc]\nretain-releases = 2\n",
            config.state_dir.display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corrald"))
        .arg("--config")
        .arg(&config_path)
        .arg("gc-once")
        .output()
        .expect("gc-once");
    let (stdout, _) = ok(&out);
    assert!(stdout.starts_with("Removed 2 slug(s)"), "{stdout}");
    assert_eq!(stored_slugs(&d).len(), 2);
    // Rolling back to a collected release says why it cannot.
    let r = d.request("POST", "/apps/demo/releases", Some(r#"{"release":"2"}"#));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("is gone"), "{}", r.body);
    let r = d.request("POST", "/apps/demo/releases", Some(r#"{"release":"4"}"#));
    assert_eq!(r.status, 201, "{}", r.body);
}
