//! The official Heroku CLI (npm `heroku@11`) drives Corral's Platform API.
//!
//! `tests/run` installs the CLI into `target/heroku-cli`; set
//! `CORRAL_HEROKU_CLI` to use another copy.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support::TestDaemon;

fn heroku_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CORRAL_HEROKU_CLI") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/heroku-cli/node_modules/.bin/heroku");
    assert!(
        path.exists(),
        "Heroku's CLI is not installed at {}: run tests/run, or `npm install --prefix target/heroku-cli heroku@11`",
        path.display()
    );
    path
}

struct Heroku {
    bin: PathBuf,
    home: tempfile::TempDir,
    url: String,
    token: String,
}

impl Heroku {
    fn new(daemon: &TestDaemon) -> Self {
        Self::at(&daemon.url(), &daemon.token)
    }

    fn at(url: &str, token: &str) -> Self {
        let home = tempfile::tempdir().expect("home");
        // The CLI shows a terms-of-service notice once unless this exists.
        let cache = home.path().join("cache");
        std::fs::create_dir_all(&cache).expect("cache");
        std::fs::write(cache.join("terms-of-service"), "").expect("tos");
        Self {
            bin: heroku_bin(),
            home,
            url: url.to_owned(),
            token: token.to_owned(),
        }
    }

    /// Runs the CLI offline: update checks, telemetry and the delinquency
    /// check (particleboard) are pointed away from the internet, and its
    /// writes to the global git config land in a throwaway HOME.
    fn run(&self, args: &[&str]) -> Output {
        let home = self.home.path();
        Command::new(&self.bin)
            .args(args)
            .current_dir(home)
            .stdin(Stdio::null())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
            .env("HEROKU_CACHE_DIR", home.join("cache"))
            .env("HEROKU_HOST", &self.url)
            .env("HEROKU_PARTICLEBOARD_URL", &self.url)
            .env("HEROKU_API_KEY", &self.token)
            .env("HEROKU_SKIP_NEW_VERSION_CHECK", "true")
            .env("HEROKU_DISABLE_AUTOUPDATE", "true")
            .env("DISABLE_TELEMETRY", "true")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .output()
            .expect("run heroku")
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let (stdout, stderr) = self.ok_allowing_warnings(args);
        assert!(
            !stderr.contains("Warning") && !stderr.contains("Error"),
            "heroku {args:?} complained: {stderr}"
        );
        (stdout, stderr)
    }

    /// For commands whose normal output includes Heroku's own warnings
    /// (rollback always prints two).
    fn ok_allowing_warnings(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "heroku {args:?} failed with {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        (stdout, stderr)
    }
}

/// Heroku's CLI puts the app glyph before app names only with colours on.
fn without_glyph(s: &str) -> String {
    s.replace("⬢ ", "")
}

#[test]
fn the_official_heroku_cli_works_against_corral() {
    let daemon = TestDaemon::start();
    let heroku = Heroku::new(&daemon);

    let (out, err) = heroku.ok(&["apps:create", "herokudemo"]);
    assert!(
        err.contains("Creating ⬢ herokudemo... done")
            || err.contains("Creating herokudemo... done"),
        "{err}"
    );
    assert!(out.contains("http://herokudemo.localhost/"), "{out}");

    let (out, _) = heroku.ok(&["apps"]);
    assert!(out.contains("=== tester@example.com Apps"), "{out}");
    // The region is shown because it is not Heroku's default "us".
    assert!(
        out.lines().any(|l| l.trim() == "herokudemo (local)"),
        "{out}"
    );

    let (out, _) = heroku.ok(&["apps:info", "-a", "herokudemo"]);
    assert!(out.contains("=== herokudemo"), "{out}");
    assert!(
        out.contains("Owner:") && out.contains("tester@example.com"),
        "{out}"
    );
    assert!(out.contains("http://git.localhost/herokudemo.git"), "{out}");
    assert!(out.contains("Stack:") && out.contains("host"), "{out}");

    let (out, err) = heroku.ok(&["config:set", "-a", "herokudemo", "A=1"]);
    assert!(
        err.contains("Setting A and restarting") && err.contains("done, v2"),
        "{err}"
    );
    assert_eq!(out.trim(), "A: 1");

    let (out, _) = heroku.ok(&["config", "-a", "herokudemo"]);
    assert!(out.contains("=== herokudemo Config Vars"), "{out}");
    assert!(out.contains("A: 1"), "{out}");
    let (out, _) = heroku.ok(&["config:get", "-a", "herokudemo", "A"]);
    assert_eq!(out.trim(), "1");

    let (out, _) = heroku.ok(&["releases", "-a", "herokudemo"]);
    assert!(
        out.contains("=== herokudemo Releases - Current: v2"),
        "{out}"
    );
    let v2 = out
        .lines()
        .position(|l| l.trim_start().starts_with("v2 "))
        .expect("v2 row");
    let v1 = out
        .lines()
        .position(|l| l.trim_start().starts_with("v1 "))
        .expect("v1 row");
    assert!(v2 < v1, "newest first: {out}");
    assert!(
        out.contains("Set A config vars") && out.contains("Initial release"),
        "{out}"
    );

    let (out, _) = heroku.ok(&["releases:info", "-a", "herokudemo", "v2"]);
    assert!(out.contains("=== Release v2"), "{out}");
    assert!(out.contains("Set A config vars"), "{out}");
    assert!(out.contains("A: 1"), "{out}");

    let (_, err) = heroku.ok(&["ps:scale", "web=2", "-a", "herokudemo"]);
    assert!(err.contains("now running web at 2:"), "{err}");

    let (_, err) = heroku.ok(&["config:unset", "-a", "herokudemo", "A"]);
    assert!(err.contains("done, v3"), "{err}");

    // Rollback restores code and config: deploy (v4), change config (v5),
    // roll back to v4 (v6).
    let app_dir = daemon.dir.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(app_dir.join("Procfile"), "web: ./web\n").expect("Procfile");
    std::fs::write(app_dir.join("web"), "#!/bin/sh\n").expect("web");
    support::ok(&daemon.corral(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "herokudemo",
    ]));
    heroku.ok(&["config:set", "-a", "herokudemo", "B=2"]);
    let (out, _) = heroku.ok(&["releases", "-a", "herokudemo"]);
    assert!(out.contains("Current: v5"), "{out}");
    let (_, err) = heroku.ok_allowing_warnings(&["releases:rollback", "v4", "-a", "herokudemo"]);
    assert!(err.contains("to v4... done, v6"), "{err}");
    let (out, _) = heroku.ok(&["config", "-a", "herokudemo"]);
    assert!(!out.contains("B: 2"), "config of v4 is back: {out}");
    let (out, _) = heroku.ok(&["releases", "-a", "herokudemo"]);
    assert!(out.contains("Rollback to v4"), "{out}");

    // Custom domains: add (Heroku's CLI asks for SNI endpoints first), list
    // (with its Range header), show, remove.
    let (out, err) = heroku.ok(&["domains:add", "www.herokudemo.test", "-a", "herokudemo"]);
    assert!(
        without_glyph(&err).contains("Adding www.herokudemo.test to herokudemo... done"),
        "{err}"
    );
    assert!(
        out.contains(
            "Configure your app's DNS provider to point to the DNS Target herokudemo.localhost."
        ),
        "{out}"
    );
    heroku.ok(&[
        "domains:add",
        "herokudemo.test",
        "-a",
        "herokudemo",
        "--wait",
    ]);
    let (out, _) = heroku.ok(&["domains", "-a", "herokudemo"]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let heading = |h: &str| {
        lines
            .iter()
            .position(|l| *l == h)
            .unwrap_or_else(|| panic!("no {h:?} in {out}"))
    };
    let default = heading("=== herokudemo Heroku Domain");
    assert_eq!(
        lines[default + 1..].iter().find(|l| !l.is_empty()),
        Some(&"herokudemo.localhost"),
        "{out}"
    );
    let custom = heading("=== herokudemo Custom Domains");
    let row = |host: &str| -> Vec<&str> {
        lines[custom..]
            .iter()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no row for {host} in {out}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    };
    assert_eq!(
        row("www.herokudemo.test"),
        ["www.herokudemo.test", "CNAME", "herokudemo.localhost"],
        "{out}"
    );
    assert_eq!(
        row("herokudemo.test"),
        ["herokudemo.test", "ALIAS or ANAME", "herokudemo.localhost"],
        "{out}"
    );
    let (out, _) = heroku.ok(&["domains:info", "www.herokudemo.test", "-a", "herokudemo"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("cname:") && l.ends_with("herokudemo.localhost")),
        "{out}"
    );
    let (_, err) = heroku.ok(&["domains:remove", "www.herokudemo.test", "-a", "herokudemo"]);
    assert!(
        without_glyph(&err).contains("Removing www.herokudemo.test from herokudemo... done"),
        "{err}"
    );
    let (_, err) = heroku.ok(&["domains:clear", "-a", "herokudemo"]);
    assert!(err.contains("done"), "{err}");
    let (out, _) = heroku.ok(&["domains", "-a", "herokudemo"]);
    assert!(out.contains("herokudemo.localhost"), "{out}");
    assert!(!out.contains("Custom Domains"), "{out}");
    let out = heroku.run(&["domains:add", "bad_host.test", "-a", "herokudemo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid hostname"), "{err}");

    // Maintenance mode.
    let (_, err) = heroku.ok(&["maintenance:on", "-a", "herokudemo"]);
    assert!(
        without_glyph(&err).contains("Enabling maintenance mode for herokudemo... done"),
        "{err}"
    );
    assert_eq!(
        heroku.ok(&["maintenance", "-a", "herokudemo"]).0.trim(),
        "on"
    );
    let (_, err) = heroku.ok(&["maintenance:off", "-a", "herokudemo"]);
    assert!(
        without_glyph(&err).contains("Disabling maintenance mode for herokudemo... done"),
        "{err}"
    );
    assert_eq!(
        heroku.ok(&["maintenance", "-a", "herokudemo"]).0.trim(),
        "off"
    );

    // An API error reaches the user with Heroku's id and message.
    let out = heroku.run(&["apps:create", "herokudemo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Name is already taken"), "{err}");
    assert!(err.contains("invalid_params"), "{err}");

    let (_, err) = heroku.ok(&[
        "apps:destroy",
        "-a",
        "herokudemo",
        "--confirm",
        "herokudemo",
    ]);
    assert!(err.contains("Destroying") && err.contains("done"), "{err}");
    let out = heroku.run(&["apps:info", "-a", "herokudemo"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Couldn't find that app"));
}

/// `heroku ps`, `ps:scale` and `ps:restart` against corrald on a real
/// systemd, with dynos running.
#[test]
fn heroku_ps_commands_drive_real_dynos() {
    use corral::sandbox::{Sandbox, SandboxOptions};
    use std::time::Duration;

    let name = format!("hps-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, support::free_port(), support::free_port());
    options.bin_dir = support::bin_dir();
    // Hosts share the machine's network: a port range of this test's own.
    options.extra_config = "[dynos]\nport-range-start = 31300\nport-range-end = 31399\n".to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let heroku = Heroku::at(&sandbox.api_url, &sandbox.token);
    heroku.ok(&["apps:create", "psdemo"]);
    let app_dir = heroku.home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(
        app_dir.join("Procfile"),
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n",
    )
    .expect("Procfile");
    support::ok(&support::corral_cli(
        &sandbox.api_url,
        &sandbox.token,
        heroku.home.path(),
        &[
            "deploy:dir",
            app_dir.to_str().expect("utf-8"),
            "-a",
            "psdemo",
        ],
    ));
    let timeout = Duration::from_secs(60);
    let ps = || heroku.ok(&["ps", "-a", "psdemo"]).0;
    let out = support::wait_for("web.1 up in heroku ps", timeout, || {
        let out = ps();
        out.contains("web.1: up").then_some(out)
    });
    // Heroku's CLI prints the size as the API spells it.
    assert!(
        out.to_lowercase()
            .contains("=== web (standard-1x): python3 -m http.server $port --bind 127.0.0.1 (1)"),
        "{out}"
    );

    let (_, err) = heroku.ok(&["ps:scale", "web=2:standard-2x", "-a", "psdemo"]);
    assert!(
        err.to_lowercase()
            .contains("now running web at 2:standard-2x"),
        "{err}"
    );
    let out = support::wait_for("two 2X web dynos up", timeout, || {
        let out = ps();
        (out.to_lowercase().contains("=== web (standard-2x)")
            && out.contains("web.1: up")
            && out.contains("web.2: up")
            && !out.contains("starting"))
        .then_some(out)
    });
    assert!(out.contains("(2)"), "{out}");

    let units = |pattern: &str| {
        sandbox
            .run(&["systemctl", "list-units", "--plain", "--no-legend", pattern])
            .unwrap_or_default()
    };
    // Each running web unit as (dyno, generation): a restarted or stopped
    // formation dyno comes back as a new unit, one generation higher.
    let generations = || -> Vec<(String, u32)> {
        let mut found: Vec<(String, u32)> = units("corral-psdemo-web.*")
            .lines()
            .filter(|l| l.contains(" running "))
            .filter_map(|l| {
                let unit = l.split_whitespace().next()?;
                let name = unit
                    .strip_prefix("corral-psdemo-")?
                    .strip_suffix(".service")?;
                let (dyno, generation) = name.split_once('@')?;
                Some((dyno.to_owned(), generation.parse().ok()?))
            })
            .collect();
        found.sort();
        found
    };
    // Runs `args`, then waits until each of `targets` runs as exactly one
    // newer unit (the old one stopped), and checks the others were left
    // alone.
    let renews = |args: &[&str], targets: &[&str]| {
        let before = generations();
        assert_eq!(
            before.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
            ["web.1", "web.2"],
            "{before:?}"
        );
        let (_, err) = heroku.ok(args);
        assert!(err.contains("done"), "{args:?}: {err}");
        let what = format!("{targets:?} back as new units after {args:?}");
        let now = support::wait_for(&what, timeout, || {
            let now = generations();
            targets
                .iter()
                .all(|target| {
                    let old = before.iter().find(|(d, _)| d == target).map(|(_, g)| *g);
                    let running: Vec<u32> = now
                        .iter()
                        .filter(|(d, _)| d == target)
                        .map(|(_, g)| *g)
                        .collect();
                    matches!((old, running.as_slice()), (Some(old), [new]) if *new > old)
                })
                .then_some(now)
        });
        for (dyno, generation) in before
            .iter()
            .filter(|(d, _)| !targets.contains(&d.as_str()))
        {
            assert!(
                now.contains(&(dyno.clone(), *generation)),
                "{args:?} touched {dyno}: {before:?} -> {now:?}"
            );
        }
    };
    renews(
        &["ps:restart", "--dyno-name", "web.1", "-a", "psdemo"],
        &["web.1"],
    );
    renews(
        &["ps:restart", "--process-type", "web", "-a", "psdemo"],
        &["web.1", "web.2"],
    );
    renews(&["ps:restart", "-a", "psdemo"], &["web.1", "web.2"]);
    renews(
        &["ps:stop", "--dyno-name", "web.2", "-a", "psdemo"],
        &["web.2"],
    );
    renews(
        &["ps:stop", "--process-type", "web", "-a", "psdemo"],
        &["web.1", "web.2"],
    );
    support::wait_for("both web dynos up again", timeout, || {
        let out = ps();
        (out.contains("web.1: up") && out.contains("web.2: up")).then_some(())
    });

    // `heroku logs` reads the log session's stream (Server-Sent Events in
    // CLI v11): the platform's lines about this app's dynos are there.
    let (out, _) = heroku.ok(&["logs", "-a", "psdemo", "-n", "50"]);
    assert!(
        out.contains("corral[web.1]: State changed from starting to up"),
        "{out}"
    );
    let (out, _) = heroku.ok(&["logs", "-a", "psdemo", "--dyno-name", "web.2", "-n", "50"]);
    assert!(out.contains("[web.2]") && !out.contains("[web.1]"), "{out}");
    // --tail keeps streaming: a request through the router shows up as a
    // router line while the CLI is running.
    let mut tail = Command::new(&heroku.bin)
        .args(["logs", "--tail", "-a", "psdemo", "-n", "1"])
        .current_dir(heroku.home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", heroku.home.path())
        .env("HEROKU_CACHE_DIR", heroku.home.path().join("cache"))
        .env("HEROKU_HOST", &heroku.url)
        .env("HEROKU_PARTICLEBOARD_URL", &heroku.url)
        .env("HEROKU_API_KEY", &heroku.token)
        .env("HEROKU_SKIP_NEW_VERSION_CHECK", "true")
        .env("DISABLE_TELEMETRY", "true")
        .env("NO_COLOR", "1")
        .spawn()
        .expect("heroku logs --tail");
    let lines = support::lines_of(tail.stdout.take().expect("stdout"));
    support::wait_for("a router line in heroku logs --tail", timeout, || {
        let _ = support::router_get(sandbox.router_addr, "psdemo.localhost", "/tailed");
        lines
            .recv_timeout(Duration::from_millis(200))
            .ok()
            .filter(|l| l.contains("corral[router]:") && l.contains("path=\"/tailed\""))
    });
    let _ = tail.kill();
    let _ = tail.wait();
    sandbox.stop().expect("teardown");
}
