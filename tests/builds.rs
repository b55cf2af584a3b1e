//! `git push` on a real systemd: a build unit per push, the release phase, failed builds that change nothing, pushes one at a time.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, wait_for};

/// Bound on every wait; generous for a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(90);

fn get(router: SocketAddr, host: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(router)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git")
}

fn commit(dir: &Path, message: &str) {
    let out = git(dir, &["add", "-A"]);
    assert!(out.status.success(), "{out:?}");
    let out = git(
        dir,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            message,
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

/// Pushes `main`; returns (success, everything git printed).
fn push(dir: &Path, remote: &str) -> (bool, String) {
    let out = git(dir, &["push", "--force", remote, "HEAD:main"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An app that serves its `index.html` and runs `release.sh` in its
/// release phase.
fn write_app(dir: &Path, page: &str, release: &str) {
    std::fs::write(
        dir.join("Procfile"),
        "web: python3 -m http.server $PORT --bind 127.0.0.1\nrelease: sh release.sh\n",
    )
    .expect("Procfile");
    std::fs::write(dir.join("index.html"), page).expect("page");
    std::fs::write(dir.join("release.sh"), release).expect("release.sh");
}

#[test]
fn git_push_builds_releases_and_refuses_what_fails() {
    let mut options = SandboxOptions::new(
        format!("builds-{}", std::process::id()),
        free_port(),
        free_port(),
    );
    options.bin_dir = support::bin_dir();
    options.extra_config = "[dynos]\nport-range-start = 36100\nport-range-end = 36199\n".into();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    // Outside /tmp: the host has a /tmp of its own.
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "pushy"]));
    let work = home.path().join("work");
    std::fs::create_dir_all(&work).expect("work");
    assert!(git(&work, &["init", "--quiet", "--initial-branch=main"])
        .status
        .success());
    let remote = format!(
        "{}/pushy.git",
        sandbox
            .api_url
            .replace("http://", &format!("http://git:{}@", sandbox.token))
    );

    // The first push: detected, compiled in a build unit, released after
    // its release phase, served through the router.
    write_app(&work, "version one\n", "echo migrating the database\n");
    commit(&work, "first");
    let (pushed, said) = push(&work, &remote);
    assert!(pushed, "{said}\n{}", sandbox.journal("corrald.service"));
    for expected in [
        "remote: -----> Building on the host stack",
        "app detected",
        "-----> Discovering process types",
        "Procfile declares types     -> release, web",
        "-----> Compressing...",
        "-----> Running release command...",
        "remote: migrating the database",
        "Release command succeeded.",
        "Released v2",
        "http://pushy.localhost/ deployed to Corral",
    ] {
        assert!(
            said.contains(expected),
            "{expected:?} missing from:\n{said}"
        );
    }
    let body = wait_for("v2 through the router", TIMEOUT, || {
        get(sandbox.router_addr, "pushy.localhost")
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
    });
    assert_eq!(body, "version one\n");

    // A build that fails rejects the push and changes nothing.
    std::fs::write(work.join("Procfile"), "this is not a procfile\n").expect("write");
    commit(&work, "broken procfile");
    let (pushed, said) = push(&work, &remote);
    assert!(!pushed, "{said}");
    assert!(said.contains("Procfile"), "{said}");
    assert!(said.contains("Push rejected to pushy"), "{said}");
    assert!(said.contains("pre-receive hook declined"), "{said}");

    // A release phase that fails marks the release failed; v2 serves on.
    write_app(
        &work,
        "version three\n",
        "echo the migration broke >&2; exit 3\n",
    );
    commit(&work, "bad migration");
    let (pushed, said) = push(&work, &remote);
    assert!(!pushed, "{said}");
    assert!(said.contains("the migration broke"), "{said}");
    assert!(
        said.contains("Release command failed (exit status 3)"),
        "{said}"
    );
    let (releases, _) = ok(&cli(&["releases", "-a", "pushy", "--json"]));
    let releases: serde_json::Value = serde_json::from_str(&releases).expect("json");
    let statuses: Vec<(u64, String, bool)> = releases
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or("").to_owned(),
                r["current"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert!(
        statuses.contains(&(2, "succeeded".into(), true))
            && statuses.contains(&(3, "failed".into(), false)),
        "{statuses:?}"
    );
    assert_eq!(
        get(sandbox.router_addr, "pushy.localhost").expect("get").1,
        "version one\n"
    );

    // Two pushes at once: they never interleave. One builds; the other
    // waits for it, then is refused because main moved meanwhile.
    write_app(&work, "version four\n", "echo ok; sleep 3\n");
    commit(&work, "four");
    let other = home.path().join("other");
    assert!(git(home.path(), &["clone", "--quiet", &remote, "other"])
        .status
        .success());
    write_app(&other, "version five\n", "echo ok; sleep 3\n");
    commit(&other, "five");
    let first = {
        let (work, remote) = (work.clone(), remote.clone());
        std::thread::spawn(move || push(&work, &remote))
    };
    let second = push(&other, &remote);
    let first = first.join().expect("first push");
    let (won, lost) = match (first.0, second.0) {
        (true, false) => (first.1, second.1),
        (false, true) => (second.1, first.1),
        _ => panic!(
            "exactly one push should win:\n{}\n---\n{}",
            first.1, second.1
        ),
    };
    assert!(won.contains("Released v4"), "{won}");
    assert!(
        lost.contains("Another build of pushy is running; this push waits for it.")
            && lost.contains("main moved while this push waited"),
        "{lost}"
    );
    wait_for("v4 through the router", TIMEOUT, || {
        get(sandbox.router_addr, "pushy.localhost")
            .ok()
            .filter(|(_, body)| body != "version one\n")
    });

    // The builds are on record, by the API.
    let (builds, _) = ok(&cli(&["builds", "-a", "pushy", "--json"]));
    let builds: serde_json::Value = serde_json::from_str(&builds).expect("json");
    let statuses: Vec<&str> = builds
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["succeeded", "failed", "failed", "succeeded"],
        "{builds}"
    );

    // A Python app through the shipped python buildpack: a virtualenv
    // built by the build unit's throwaway user, served from the slug; the
    // second build reuses the per-app cache that systemd handed over.
    ok(&cli(&["apps:create", "snake"]));
    let py = home.path().join("py");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apps/python"),
        &py,
    );
    assert!(git(&py, &["init", "--quiet", "--initial-branch=main"])
        .status
        .success());
    commit(&py, "python app");
    let snake = remote.replace("/pushy.git", "/snake.git");
    let (pushed, said) = push(&py, &snake);
    assert!(pushed, "{said}\n{}", sandbox.journal("corrald.service"));
    assert!(said.contains("-----> Python app detected"), "{said}");
    let body = wait_for("the python app through the router", TIMEOUT, || {
        get(sandbox.router_addr, "snake.localhost")
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
    });
    assert!(body.contains("Corral"), "{body}");
    // The second push goes through the router's git.<base-domain> host,
    // as `git push` to https://git.example.com/snake.git would.
    commit(&py, "again");
    let via_router = format!(
        "http://git:{}@{}/snake.git",
        sandbox.token, sandbox.router_addr
    );
    let out = git(
        &py,
        &[
            "-c",
            "http.extraHeader=Host: git.localhost",
            "push",
            &via_router,
            "HEAD:main",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Restored the bare virtualenv from the build cache"),
        "{said}"
    );
    sandbox.stop().expect("teardown");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
