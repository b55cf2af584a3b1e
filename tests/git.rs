//! git over smart HTTP against an in-process corrald: auth, fetch, branch pushes, and a deploy push refused without systemd.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{corral_cli, git, TestDaemon};

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "git failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A work tree with one commit on `main`.
fn work_tree(dir: &Path) {
    ok(git(dir, &["init", "--quiet", "--initial-branch=main"]));
    std::fs::write(dir.join("Procfile"), "web: sleep 1000\n").expect("write");
    ok(git(dir, &["add", "."]));
    ok(git(
        dir,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "first",
        ],
    ));
}

#[test]
fn pushes_fetches_and_refusals_over_smart_http() {
    let d = TestDaemon::start();
    let r = d.request("POST", "/apps", Some(r#"{"name":"gitapp"}"#));
    assert_eq!(r.status, 201, "{}", r.body);
    let home = tempfile::tempdir().expect("tempdir");
    let t = home.path().join("work");
    std::fs::create_dir_all(&t).expect("work");
    let t = t.as_path();
    work_tree(t);
    let authed = format!("http://u:{}@{}/gitapp.git", d.token, d.addr);

    // No token, a wrong token, an unknown app: refused, nothing stored.
    let anon = git(
        t,
        &["push", &format!("http://{}/gitapp.git", d.addr), "main"],
    );
    assert!(!anon.status.success());
    let wrong = git(
        t,
        &[
            "push",
            &format!("http://u:nope@{}/gitapp.git", d.addr),
            "main",
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("Authentication failed"),
        "{wrong:?}"
    );
    let missing = git(
        t,
        &[
            "push",
            &format!("http://u:{}@{}/nosuch.git", d.token, d.addr),
            "main",
        ],
    );
    assert!(!missing.status.success());

    // Another branch is stored, with the message saying what deploys.
    ok(git(t, &["checkout", "--quiet", "-b", "feature"]));
    let said = ok(git(t, &["push", &authed, "feature"]));
    assert!(said.contains("remote: Pushed feature"), "{said}");
    assert!(said.contains("git push corral feature:main"), "{said}");

    // `corral git:remote` adds the remote and a credential helper: pushes
    // need no token in the URL, and the token stays out of .git/config.
    let out = corral_cli(
        &d.url(),
        &d.token,
        home.path(),
        &["git:remote", "-a", "gitapp"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("git")
        .args(["push", "corral", "feature:other"])
        .current_dir(t)
        .env("HOME", t)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("CORRAL_API_URL", d.url())
        .env("CORRAL_API_TOKEN", &d.token)
        .output()
        .expect("git push");
    assert!(out.status.success(), "{out:?}");
    let config = std::fs::read_to_string(t.join(".git/config")).expect("config");
    assert!(
        config.contains("git:credentials") && !config.contains(&d.token),
        "{config}"
    );

    // It can be fetched back.
    let clone = tempfile::tempdir().expect("tempdir");
    ok(git(
        clone.path(),
        &["clone", "--quiet", "--branch", "feature", &authed, "c"],
    ));
    assert!(clone.path().join("c/Procfile").is_file());

    // The app's buildpack, set like `heroku buildpacks:set`: a directory
    // on the host. Bad references are refused.
    let bp = t.join("bp");
    std::fs::create_dir_all(bp.join("bin")).expect("mkdir");
    for script in ["detect", "compile"] {
        std::fs::write(bp.join("bin").join(script), "#!/bin/sh\necho Test\n").expect("write");
    }
    let body = format!(r#"{{"updates":[{{"buildpack":"{}"}}]}}"#, bp.display());
    let r = d.request("PUT", "/apps/gitapp/buildpack-installations", Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["buildpack"]["url"], bp.display().to_string());
    let r = d.request(
        "PUT",
        "/apps/gitapp/buildpack-installations",
        Some(r#"{"updates":[{"buildpack":"../etc"}]}"#),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = d.request("GET", "/apps/gitapp/buildpack-installations", None);
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{}", r.body);

    // A push of main builds; without systemd the build unit cannot start,
    // so the push is rejected with the reason and main is not stored.
    let push = git(t, &["push", &authed, "feature:main"]);
    assert!(!push.status.success(), "{push:?}");
    let said = String::from_utf8_lossy(&push.stderr);
    assert!(said.contains("remote: -----> Building on the"), "{said}");
    assert!(said.contains("The build unit could not start"), "{said}");
    assert!(said.contains("Push rejected to gitapp"), "{said}");
    assert!(said.contains("pre-receive hook declined"), "{said}");
    let refs = git(t, &["ls-remote", &authed]);
    let refs = String::from_utf8_lossy(&refs.stdout);
    assert!(
        refs.contains("refs/heads/feature") && !refs.contains("refs/heads/main"),
        "{refs}"
    );

    // The build cache can be purged (there is none yet: that is fine).
    let r = d.request("DELETE", "/apps/gitapp/build-cache", None);
    assert_eq!(r.status, 202, "{}", r.body);
    let out = d.corral(&["builds:cache:purge", "-a", "gitapp"]);
    assert!(
        !out.status.success(),
        "purging without --confirm must refuse"
    );
    let out = d.corral(&["builds:cache:purge", "-a", "gitapp", "--confirm", "gitapp"]);
    assert!(out.status.success(), "{out:?}");

    // The failed build is on record; the app still has only v1.
    let r = d.request("GET", "/apps/gitapp/builds", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let builds = r.json();
    assert_eq!(builds[0]["status"], "failed", "{builds}");
    // Its output is kept: by its output_stream_url, and by the CLI.
    let url = builds[0]["output_stream_url"]
        .as_str()
        .expect("url")
        .to_owned();
    let path = &url[url.find("/build-output/").expect("path")..];
    let r = d.request("GET", path, None);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("The build unit could not start"),
        "{}",
        r.body
    );
    let out = d.corral(&["builds:output", "-a", "gitapp"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("The build unit could not start"),
        "{out:?}"
    );
    let r = d.request("GET", "/apps/gitapp/releases", None);
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));

    // Deleting the app removes its repository.
    let repos = d.config.state_dir.join("repos");
    assert_eq!(std::fs::read_dir(&repos).expect("repos").count(), 1);
    let r = d.request("DELETE", "/apps/gitapp", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(std::fs::read_dir(&repos).expect("repos").count(), 0);
}
