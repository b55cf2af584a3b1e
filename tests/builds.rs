//! `git push` on a real systemd: a build unit per push, the release phase, failed builds that change nothing, pushes one at a time.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, git, ok, wait_for, wait_for_or, Load};

/// Bound on every wait; generous for a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(90);

fn get(router: SocketAddr, host: &str) -> std::io::Result<(u16, String)> {
    support::router_get(router, host, "/")
}

/// Waits until `host` answers 200 through the router with a body `want`
/// accepts, and returns it. On timeout the panic shows the last answer,
/// the dyno units and corrald's journal.
fn wait_for_page(sandbox: &Sandbox, host: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    let last = RefCell::new(String::from("(none yet)"));
    let context = || {
        let units = sandbox
            .run(&["systemctl", "list-units", "--all", "--no-pager", "corral-*"])
            .unwrap_or_else(|e| e.to_string());
        format!(
            "last answer: {}\nunits:\n{units}\ncorrald's journal:\n{}",
            last.borrow(),
            sandbox.journal("corrald.service")
        )
    };
    wait_for_or(what, TIMEOUT, context, || {
        match get(sandbox.router_addr, host) {
            Ok((200, body)) if want(&body) => return Some(body),
            Ok((status, body)) => *last.borrow_mut() = format!("{status} {body:?}"),
            Err(e) => *last.borrow_mut() = e.to_string(),
        }
        None
    })
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
    options.extra_config = "[dynos]\nport-range-start = 32100\nport-range-end = 32199\n".into();
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
    // Shell metacharacters in a config var (which reaches the build unit
    // as a file in ENV_DIR), a file name, the commit message and branch
    // names reach no shell. Wherever an injected command ran, it would
    // leave a marker that outlives it: corrald in its state directory, the
    // build unit in /app (which becomes the slug) and in its cache
    // directory (both checked below).
    const MARKER: &str = "/var/lib/corral/pwned";
    const INJECT: &str =
        "touch /var/lib/corral/pwned /app/pwned ${CACHE_DIRECTORY:-/nonexistent}/pwned";
    let payload = format!("$({INJECT}) `{INJECT}`;{INJECT}");
    ok(&cli(&[
        "config:set",
        "-a",
        "pushy",
        &format!("PAYLOAD={payload}"),
    ]));
    write_app(&work, "version one\n", "echo migrating the database\n");
    std::fs::write(work.join("$(touch${IFS}pwned)"), "").expect("odd file name");
    commit(&work, &format!("first {payload}\n-h --help"));
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
        "Released v3",
        "http://pushy.localhost/ deployed to Corral",
    ] {
        assert!(
            said.contains(expected),
            "{expected:?} missing from:\n{said}"
        );
    }
    let body = wait_for_page(&sandbox, "pushy.localhost", "v3 through the router", |_| {
        true
    });
    assert_eq!(body, "version one\n");
    let digest = slug_digest(&said);
    let slug = format!(
        "/var/lib/corral/slugs/sha256/{}/{digest}.tar.gz",
        &digest[..2]
    );
    let listing = sandbox.run(&["tar", "-tzf", &slug]).expect("list the slug");
    assert!(
        listing.lines().any(|l| l.ends_with("index.html")),
        "not the app's slug: {listing}"
    );
    assert!(
        !listing
            .lines()
            .any(|l| l.trim_end_matches('/').rsplit('/').next() == Some("pwned")),
        "a command ran in the build unit (a marker in the slug): {listing}"
    );
    let cached = sandbox
        .run(&["find", "/var/cache", "-name", "pwned"])
        .expect("search the build cache");
    assert!(
        cached.trim().is_empty(),
        "a command ran in the build unit (a marker in its cache): {cached}"
    );
    // The release phase's dyno left no runtime files: web.1's alone are
    // there.
    let dirs = sandbox.run(&["ls", "/run/corral/dynos"]).expect("ls");
    assert_eq!(dirs.lines().count(), 1, "{dirs}");

    for branch in [
        format!("x;touch${{IFS}}{MARKER}"),
        format!("$(touch${{IFS}}{MARKER})"),
        format!("`touch${{IFS}}{MARKER}`"),
        "-h".to_owned(),
    ] {
        let out = git(
            &work,
            &["push", &remote, &format!("HEAD:refs/heads/{branch}")],
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{branch}: {said}");
        assert!(said.contains("which is stored but not deployed"), "{said}");
    }
    let (refused, _) = (cli(&["apps:create", "x;touch /var/lib/corral/pwned"]), ());
    assert!(!refused.status.success());
    let state = sandbox.run(&["ls", "-a", "/var/lib/corral"]).expect("ls");
    assert!(!state.contains("pwned"), "a command ran: {state}");

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
        statuses.contains(&(3, "succeeded".into(), true))
            && statuses.contains(&(4, "failed".into(), false)),
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
    let (won, lost, page) = match (first.0, second.0) {
        (true, false) => (first.1, second.1, "version four\n"),
        (false, true) => (second.1, first.1, "version five\n"),
        _ => panic!(
            "exactly one push should win:\n{}\n---\n{}",
            first.1, second.1
        ),
    };
    assert!(won.contains("Released v5"), "{won}");
    assert!(
        lost.contains("Another build of pushy is running; this push waits for it.")
            && lost.contains("main moved while this push waited"),
        "{lost}"
    );
    wait_for_page(
        &sandbox,
        "pushy.localhost",
        "v5 through the router",
        |body| body == page,
    );

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

    // A buildpack from a git URL is cloned for the build and runs. It is
    // kept on a branch of another app's repository (a push there stores it
    // without building), served over loopback by corrald's smart HTTP.
    ok(&cli(&["apps:create", "packs"]));
    let pack = home.path().join("pack");
    std::fs::create_dir_all(pack.join("bin")).expect("pack dir");
    for (step, script) in [
        ("detect", "#!/bin/sh\necho Cloned\n"),
        (
            "compile",
            "#!/bin/sh\necho '-----> compiled by the cloned buildpack'\n\
             echo 'built by a cloned buildpack' > \"$1/index.html\"\n",
        ),
    ] {
        let path = pack.join("bin").join(step);
        std::fs::write(&path, script).expect("buildpack step");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    assert!(git(&pack, &["init", "--quiet", "--initial-branch=main"])
        .status
        .success());
    commit(&pack, "a buildpack");
    let packs = remote.replace("/pushy.git", "/packs.git");
    let out = git(&pack, &["push", &packs, "HEAD:refs/heads/buildpack"]);
    assert!(out.status.success(), "{out:?}");
    ok(&cli(&[
        "buildpacks:set",
        &format!("{packs}#buildpack"),
        "-a",
        "pushy",
    ]));
    commit(&work, "built by a cloned buildpack");
    let (pushed, said) = push(&work, &remote);
    assert!(pushed, "{said}\n{}", sandbox.journal("corrald.service"));
    for expected in [
        "-----> Fetching buildpack",
        "-----> Cloned app detected",
        "-----> compiled by the cloned buildpack",
        "Released v6",
    ] {
        assert!(
            said.contains(expected),
            "{expected:?} missing from:\n{said}"
        );
    }
    wait_for_page(
        &sandbox,
        "pushy.localhost",
        "the cloned buildpack's page",
        |body| body == "built by a cloned buildpack\n",
    );

    // corrald stopping mid-build stops the build unit too, and the push
    // says why. A buildpack whose compile never ends holds the build.
    // Made inside the host, under /run: corrald.service has PrivateTmp=,
    // so a buildpack under the machine's /tmp (where a clone may live)
    // would be invisible to it, as it would be on a real host.
    let slow = "/run/slow-buildpack";
    sandbox
        .run(&[
            "sh",
            "-c",
            "mkdir -p /run/slow-buildpack/bin && cd /run/slow-buildpack/bin \
             && printf '#!/bin/sh\\necho Slow\\n' > detect \
             && printf '#!/bin/sh\\necho compiling forever\\nexec sleep 600\\n' > compile \
             && chmod 755 detect compile",
        ])
        .expect("slow buildpack");
    ok(&cli(&["buildpacks:set", slow, "-a", "pushy"]));
    commit(&work, "never finishes");
    let mut child = Group(
        Command::new("git")
            .args(["push", "--force", &remote, "HEAD:main"])
            .current_dir(&work)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("HOME", &work)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("git push"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = String::new();
    while !said.contains("compiling forever") {
        let line = lines_rx.recv_timeout(TIMEOUT).expect("the build's output");
        said.push_str(&line);
        said.push('\n');
    }
    let units = sandbox
        .run(&["systemctl", "list-units", "--no-legend", "corral-build-*"])
        .expect("list units");
    assert!(units.contains("corral-build-pushy@"), "{units}");
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGTERM", "corrald"])
        .expect("stop corrald");
    // `systemctl kill` signals every process of corrald's unit, git and
    // the hook included, so the push only learns that the connection
    // broke; the build unit, a unit of its own, is stopped by corrald.
    wait_for("the build unit to be stopped", TIMEOUT, || {
        let units = sandbox
            .run(&["systemctl", "list-units", "--no-legend", "corral-build-*"])
            .ok()?;
        (!units.contains("corral-build-pushy@")).then_some(())
    });
    let journal = sandbox.journal("corrald.service");
    assert!(
        journal.contains("corrald is shutting down; the build was stopped"),
        "{journal}"
    );
    drop(child);
    sandbox.stop().expect("teardown");
}

/// A child in a process group of its own, killed with all of it when
/// dropped: `git push` leaves helpers (git-remote-http, send-pack) that
/// would outlive it, holding whatever it inherited, such as the lock a
/// test run holds.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.0.wait();
    }
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

/// The slug digest a push printed.
fn slug_digest(said: &str) -> String {
    said.lines()
        .find_map(|l| l.split("Slug SHA256:").nth(1))
        .map(|d| d.trim().to_owned())
        .unwrap_or_else(|| panic!("no slug digest in:\n{said}"))
}

#[test]
fn shipped_buildpacks_build_serve_and_rebuild_the_same_slug() {
    let mut options = SandboxOptions::new(
        format!("packs-{}", std::process::id()),
        free_port(),
        free_port(),
    );
    options.bin_dir = support::bin_dir();
    options.extra_config = "[dynos]\nport-range-start = 32200\nport-range-end = 32299\n".into();
    // Runtimes come from the host: this machine's Rust toolchain (rustup
    // keeps it under /root, which build units' dynamic users cannot
    // enter) is bound where the build PATH finds it, as a Debian host's
    // /usr/bin/cargo would be.
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    assert!(sysroot.status.success(), "rustc --print sysroot failed");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    options.binds.push((sysroot.into(), "/opt/rust".into()));
    options.builds_path = Some("/opt/rust/bin:/usr/bin:/bin".into());
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apps");
    for (app, fixture, detected, cached) in [
        (
            "plain",
            "procfile",
            "-----> Using the Procfile as it is",
            // Nothing to cache: the second build is the same steps again.
            "-----> Using the Procfile as it is",
        ),
        (
            "snake",
            "python",
            "-----> Python app detected",
            "Restored the bare virtualenv from the build cache",
        ),
        (
            "noddy",
            "nodejs",
            "-----> Node.js app detected",
            "Reusing npm's cache from an earlier build",
        ),
        (
            "crab",
            "rust",
            "-----> Rust app detected",
            "Reusing cargo's target directory",
        ),
    ] {
        ok(&cli(&["apps:create", app]));
        let dir = home.path().join(app);
        copy_tree(&fixtures.join(fixture), &dir);
        assert!(git(&dir, &["init", "--quiet", "--initial-branch=main"])
            .status
            .success());
        commit(&dir, &format!("{fixture} app"));
        let remote = format!(
            "{}/{app}.git",
            sandbox
                .api_url
                .replace("http://", &format!("http://git:{}@", sandbox.token))
        );
        let (pushed, said) = push(&dir, &remote);
        assert!(pushed, "{said}\n{}", sandbox.journal("corrald.service"));
        assert!(said.contains(detected), "{said}");
        let host = format!("{app}.localhost");
        let deadline = std::time::Instant::now() + TIMEOUT;
        let body = loop {
            match get(sandbox.router_addr, &host) {
                Ok((200, body)) => break body,
                _ if std::time::Instant::now() > deadline => {
                    let journal = sandbox.run(&["journalctl", "--no-pager", "-n", "60"]);
                    panic!("{app} never served through the router:\n{said}\n{journal:?}");
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        assert!(body.contains("Hello"), "{app}: {body}");

        // Pushed again with no change to the code (an empty commit, as
        // Heroku users redeploy), under steady load, through the router's
        // git.<base-domain> host: the cache is reused, the slug is the same
        // bytes, and no request fails while the web dyno rolls.
        let load = Load::start(sandbox.router_addr, &host, 4);
        commit(&dir, "redeploy");
        let via_router = format!(
            "http://git:{}@{}/{app}.git",
            sandbox.token, sandbox.router_addr
        );
        let out = git(
            &dir,
            &[
                "-c",
                "http.extraHeader=Host: git.localhost",
                "push",
                &via_router,
                "HEAD:main",
            ],
        );
        let again = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{again}");
        assert!(again.contains(cached), "{again}");
        assert!(again.contains("Released v3"), "{again}");
        let (first, second) = (slug_digest(&said), slug_digest(&again));
        if first != second {
            let script = format!(
                "cd /tmp && mkdir a b && tar -xzf /var/lib/corral/slugs/sha256/{}/{first}.tar.gz -C a && tar -xzf /var/lib/corral/slugs/sha256/{}/{second}.tar.gz -C b && diff -r a b 2>&1 | head -20; true",
                &first[..2],
                &second[..2]
            );
            let diff = sandbox.run(&["sh", "-c", &script]);
            panic!("{app}: the rebuild differs: {diff:?}");
        }
        // The roll is over once the v3 dyno alone is up.
        wait_for(&format!("{app} on v3 alone"), TIMEOUT, || {
            let (out, _) = ok(&cli(&["ps", "-a", app, "--json"]));
            let dynos: serde_json::Value = serde_json::from_str(&out).ok()?;
            let dynos = dynos.as_array()?;
            (dynos.len() == 1 && dynos[0]["release"]["version"] == 3 && dynos[0]["state"] == "up")
                .then_some(())
        });
        let (served, failures) = load.finish();
        if app == "crab" {
            // A compile error rejects the push with rustc's message and
            // leaves v3 serving.
            std::fs::write(dir.join("src/main.rs"), "fn main() { let x: u8 = ; }\n")
                .expect("break main.rs");
            commit(&dir, "broken");
            let (pushed, said) = push(&dir, &remote);
            assert!(!pushed, "{said}");
            assert!(
                said.contains("error: expected expression") && said.contains("cargo build failed"),
                "{said}"
            );
            let (status, body) = get(sandbox.router_addr, &host).expect("crab still serves");
            assert!(status == 200 && body.contains("Rust"), "{status} {body}");
        }
        if served == 0 || !failures.is_empty() {
            let router = sandbox.run(&[
                "sh",
                "-c",
                "journalctl --no-pager -o cat -u corrald.service | grep -E 'code=|dyno=' | grep -v 'status=200' | tail -n 20",
            ]);
            panic!(
                "{app}: {served} served, {} failed: {:?}\nrouter lines: {router:?}",
                failures.len(),
                &failures[..failures.len().min(3)]
            );
        }
    }
    sandbox.stop().expect("teardown");
}

/// Each release's (version, status, current) as `corral releases` says.
fn release_statuses(
    cli: &dyn Fn(&[&str]) -> std::process::Output,
    app: &str,
) -> Vec<(u64, String, bool)> {
    let (releases, _) = ok(&cli(&["releases", "-a", app, "--json"]));
    let releases: serde_json::Value = serde_json::from_str(&releases).expect("json");
    releases
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
        .collect()
}

/// The release phase of releases made through the API rather than a push:
/// a deployed directory, a config change and a rollback each run the
/// release command before they go live, and one whose command fails
/// leaves the running release serving.
#[test]
fn the_release_phase_runs_for_deploys_config_changes_and_rollbacks() {
    let mut options = SandboxOptions::new(
        format!("relph-{}", std::process::id()),
        free_port(),
        free_port(),
    );
    options.bin_dir = support::bin_dir();
    options.extra_config = "[dynos]\nport-range-start = 31900\nport-range-end = 31999\n".into();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "phased"]));
    // The web dyno shows the config it started with; the release command
    // says which config it saw, and fails when FAIL_RELEASE=1.
    let dir = home.path().join("phased");
    std::fs::create_dir_all(&dir).expect("app dir");
    std::fs::write(
        dir.join("Procfile"),
        "web: echo \"mark=${MARK:-none}\" > index.html && exec python3 -m http.server $PORT --bind 127.0.0.1\n\
         release: sh release.sh\n",
    )
    .expect("Procfile");
    std::fs::write(
        dir.join("release.sh"),
        "echo \"release phase sees MARK=${MARK:-none}\"\n\
         if [ \"${FAIL_RELEASE:-}\" = 1 ]; then echo failing on purpose >&2; exit 4; fi\n",
    )
    .expect("release.sh");
    // The app's journal: its dynos' output and corrald's platform lines.
    let journal = || {
        sandbox
            .run(&["journalctl", "--no-pager", "-o", "cat", "CORRAL_APP=phased"])
            .unwrap_or_default()
    };
    let wait_for_line = |what: &str, line: &str| {
        wait_for_or(what, TIMEOUT, journal, || {
            journal().lines().any(|l| l.contains(line)).then_some(())
        })
    };
    let page = |want: &'static str| {
        wait_for_page(&sandbox, "phased.localhost", want, |body| body == want);
    };
    let web_units = || {
        sandbox
            .run(&[
                "systemctl",
                "list-units",
                "--plain",
                "--no-legend",
                "corral-phased-web.*",
            ])
            .unwrap_or_default()
    };

    // A deploy (v2).
    ok(&cli(&[
        "deploy:dir",
        dir.to_str().expect("utf-8"),
        "-a",
        "phased",
    ]));
    wait_for_line("v2's release phase", "Release v2 command succeeded");
    page("mark=none\n");
    assert!(
        journal().contains("release phase sees MARK=none"),
        "{}",
        journal()
    );

    // A config change (v3): its release command runs with the new config
    // before the dynos get it.
    ok(&cli(&["config:set", "-a", "phased", "MARK=two"]));
    wait_for_line("v3's release phase", "Release v3 command succeeded");
    page("mark=two\n");
    assert!(
        journal().contains("release phase sees MARK=two"),
        "{}",
        journal()
    );

    // A config change whose release command fails (v4): marked failed,
    // v3 stays current, and its dyno serves on untouched.
    let serving = web_units();
    ok(&cli(&[
        "config:set",
        "-a",
        "phased",
        "MARK=three",
        "FAIL_RELEASE=1",
    ]));
    wait_for_line("v4's release phase to fail", "Release v4 command failed");
    let log = journal();
    assert!(
        log.contains("release phase sees MARK=three") && log.contains("failing on purpose"),
        "{log}"
    );
    let statuses = release_statuses(&cli, "phased");
    assert!(
        statuses.contains(&(3, "succeeded".into(), true))
            && statuses.contains(&(4, "failed".into(), false)),
        "{statuses:?}"
    );
    assert_eq!(
        get(sandbox.router_addr, "phased.localhost").expect("get").1,
        "mark=two\n"
    );
    assert_eq!(web_units(), serving, "the web dyno was restarted");

    // A rollback (v5, the code and config of v2) runs it too.
    ok(&cli(&["releases:rollback", "v2", "-a", "phased"]));
    wait_for_line("v5's release phase", "Release v5 command succeeded");
    page("mark=none\n");
    let runs = journal()
        .lines()
        .filter(|l| l.contains("release phase sees MARK=none"))
        .count();
    assert_eq!(runs, 2, "v2's and v5's release phases:\n{}", journal());
    assert!(
        release_statuses(&cli, "phased").contains(&(5, "succeeded".into(), true)),
        "{:?}",
        release_statuses(&cli, "phased")
    );
    sandbox.stop().expect("teardown");
}
