//! Dynos on a real systemd: deploy, scale up and down, restart on crash,
//! adoption across a SIGKILL of corrald, config vars reaching the process.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, wait_for};

/// `dyno unit -> (active state, main pid)` for the app's dyno units.
fn dyno_units(sandbox: &Sandbox) -> BTreeMap<String, (String, u32)> {
    let out = sandbox
        .run(&[
            "systemctl",
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "corral-*.service",
        ])
        .unwrap_or_default();
    let mut units = BTreeMap::new();
    for line in out.lines() {
        let mut cols = line.split_whitespace();
        let (Some(name), Some(_load), Some(active)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let pid = sandbox
            .run(&["systemctl", "show", "-p", "MainPID", "--value", name])
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        units.insert(name.to_owned(), (active.to_owned(), pid));
    }
    units
}

fn active(units: &BTreeMap<String, (String, u32)>) -> Vec<String> {
    units
        .iter()
        .filter(|(_, (state, _))| state == "active")
        .map(|(name, _)| name.clone())
        .collect()
}

/// Boots a host running corrald, creates the app `demo` and deploys a
/// directory holding `procfile`; returns the host and the CLI's home.
fn deployed_demo(prefix: &str, extra_config: &str, procfile: &str) -> (Sandbox, tempfile::TempDir) {
    let name = format!("{prefix}-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    options.extra_config = extra_config.to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(app_dir.join("Procfile"), procfile).expect("Procfile");
    std::fs::write(app_dir.join("index.html"), "hello from a dyno\n").expect("index");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "demo"]));
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "demo",
    ]));
    (sandbox, home)
}

fn unit(dyno: &str) -> String {
    format!("corral-demo-{dyno}.service")
}

#[test]
fn dynos_follow_the_formation_on_a_real_systemd() {
    let (sandbox, home) = deployed_demo(
        "dy",
        "",
        "web: python3 -m http.server $PORT --bind 127.0.0.1\nworker: sleep 100000\n\
         probe: touch /etc/x && echo WROTE-ETC; touch /app/x && echo WROTE-APP; ls /var/lib/corral && echo READ-STATE; touch /tmp/ok && echo TMP-OK; id -u; exec sleep 100000\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);

    // A first deploy with a web type runs web.1.
    let timeout = Duration::from_secs(60);
    wait_for("web.1 to run", timeout, || {
        (active(&dyno_units(&sandbox)) == [unit("web.1")]).then_some(())
    });
    let description = sandbox
        .run(&[
            "systemctl",
            "show",
            "-p",
            "Description",
            "--value",
            &unit("web.1"),
        ])
        .expect("show");
    assert_eq!(description.trim(), "Corral dyno web.1 of app demo (v2)");

    // The web dyno serves the slug on $PORT.
    let env = sandbox
        .run(&[
            "systemctl",
            "show",
            "-p",
            "Environment",
            "--value",
            &unit("web.1"),
        ])
        .expect("env");
    let port: u16 = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("PORT="))
        .and_then(|p| p.parse().ok())
        .expect("PORT in the environment");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let page = wait_for("the web dyno to answer", timeout, || {
        support::try_http(addr, "GET", "/index.html", &[], None).ok()
    });
    assert_eq!(page.status, 200);
    assert_eq!(page.body, "hello from a dyno\n");

    // Scale up, then down: the units follow.
    ok(&cli(&["ps:scale", "-a", "demo", "web=3", "worker=2"]));
    let all = ["web.1", "web.2", "web.3", "worker.1", "worker.2"]
        .map(unit)
        .to_vec();
    wait_for("five dynos", timeout, || {
        (active(&dyno_units(&sandbox)) == all).then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "web=1"]));
    let fewer = ["web.1", "worker.1", "worker.2"].map(unit).to_vec();
    wait_for("three dynos", timeout, || {
        let units = dyno_units(&sandbox);
        (active(&units) == fewer && units.len() == 3).then_some(())
    });

    // The API lists them as up.
    let api: std::net::SocketAddr = sandbox
        .api_url
        .trim_start_matches("http://")
        .parse()
        .expect("api");
    let auth = format!("Bearer {}", sandbox.token);
    let dynos = support::http(
        api,
        "GET",
        "/apps/demo/dynos",
        &[("Authorization", &auth)],
        None,
    )
    .json();
    let states: Vec<(String, String)> = dynos
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("web.1", "up"), ("worker.1", "up"), ("worker.2", "up")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec()
    );

    let (out, _) = ok(&cli(&["ps", "-a", "demo"]));
    assert!(
        out.contains("=== web (Standard-1X): python3 -m http.server $PORT --bind 127.0.0.1 (1)"),
        "{out}"
    );
    assert!(out.contains("worker.2: up "), "{out}");

    // ps:restart gives a dyno a fresh process without counting a crash.
    let (_, old_pid) = dyno_units(&sandbox)[&unit("worker.2")].clone();
    let (_, err) = ok(&cli(&["ps:restart", "worker.2", "-a", "demo"]));
    assert!(
        err.contains("Restarting dyno worker.2 on ⬢ demo... done"),
        "{err}"
    );
    wait_for("worker.2 restarted", timeout, || {
        let (state, pid) = dyno_units(&sandbox).get(&unit("worker.2"))?.clone();
        (state == "active" && pid != 0 && pid != old_pid).then_some(())
    });

    // SIGKILL corrald: systemd restarts it, it adopts the units, and no
    // dyno is restarted (same main PIDs).
    let before = dyno_units(&sandbox);
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGKILL", "corrald.service"])
        .expect("kill corrald");
    wait_for("corrald to be back", timeout, || {
        let r = support::try_http(api, "GET", "/health", &[], None).ok()?;
        (r.status == 200).then_some(())
    });
    // Proof that the restarted manager reconciled: it starts worker.3.
    ok(&cli(&["ps:scale", "-a", "demo", "worker=3"]));
    wait_for("worker.3", timeout, || {
        dyno_units(&sandbox)
            .get(&unit("worker.3"))
            .is_some_and(|(state, _)| state == "active")
            .then_some(())
    });
    let after = dyno_units(&sandbox);
    for (name, seen) in &before {
        assert_eq!(
            after.get(name),
            Some(seen),
            "{name} was adopted, not restarted"
        );
    }
    ok(&cli(&["ps:scale", "-a", "demo", "worker=2"]));
    wait_for("worker.3 gone", timeout, || {
        (!dyno_units(&sandbox).contains_key(&unit("worker.3"))).then_some(())
    });

    // A crashed dyno is restarted (the first time at once).
    let (_, old_pid) = after[&unit("worker.1")].clone();
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGKILL", &unit("worker.1")])
        .expect("kill worker.1");
    let new_pid = wait_for("worker.1 to be restarted", timeout, || {
        let (state, pid) = dyno_units(&sandbox).get(&unit("worker.1"))?.clone();
        (state == "active" && pid != 0 && pid != old_pid).then_some(pid)
    });
    assert_ne!(new_pid, old_pid);

    // A config change is a new release: dynos are replaced, and the value
    // reaches the process byte for byte.
    ok(&cli(&[
        "config:set",
        "-a",
        "demo",
        "TRICKY=%n $HOME ${X} \\ \"",
    ]));
    let pid = wait_for("web.1 on v3", timeout, || {
        let d = sandbox
            .run(&[
                "systemctl",
                "show",
                "-p",
                "Description",
                "--value",
                &unit("web.1"),
            ])
            .ok()?;
        let (state, pid) = dyno_units(&sandbox).get(&unit("web.1"))?.clone();
        (d.contains("(v3)") && state == "active").then_some(pid)
    });
    let environ = sandbox
        .run(&["cat", &format!("/proc/{pid}/environ")])
        .expect("environ");
    assert!(
        environ
            .split('\0')
            .any(|kv| kv == "TRICKY=%n $HOME ${X} \\ \""),
        "{environ:?}"
    );
    assert!(environ.split('\0').any(|kv| kv == "DYNO=web.1"));

    // Isolation: each dyno has its own dynamic user; a dyno writes only to
    // /tmp (its /app is the shared read-only slug) and cannot see corrald's
    // state, where other apps' slugs live.
    ok(&cli(&["ps:scale", "-a", "demo", "probe=1"]));
    let probe_log = wait_for("the probe's report", timeout, || {
        let log = sandbox
            .run(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "-u",
                &unit("probe.1"),
            ])
            .ok()?;
        log.contains("TMP-OK").then_some(log)
    });
    for forbidden in ["WROTE-ETC", "WROTE-APP", "READ-STATE"] {
        assert!(!probe_log.contains(forbidden), "{forbidden}: {probe_log}");
    }
    let uid_of = |dyno: &str| {
        let (_, pid) = dyno_units(&sandbox)[&unit(dyno)].clone();
        sandbox
            .run(&["sh", "-c", &format!("grep ^Uid: /proc/{pid}/status")])
            .expect("status")
            .split_whitespace()
            .nth(1)
            .and_then(|u| u.parse::<u32>().ok())
            .expect("uid")
    };
    let (web_uid, worker_uid) = (uid_of("web.1"), uid_of("worker.1"));
    assert_ne!(web_uid, worker_uid, "dynos run as different users");
    assert!(
        web_uid >= 61184 && worker_uid >= 61184,
        "dynamic users: {web_uid} {worker_uid}"
    );

    // Scaling to zero stops everything.
    ok(&cli(&[
        "ps:scale", "-a", "demo", "web=0", "worker=0", "probe=0",
    ]));
    wait_for("no dynos", timeout, || {
        dyno_units(&sandbox).is_empty().then_some(())
    });
    sandbox.stop().expect("teardown");
}

#[test]
fn boot_and_exit_timeouts_are_enforced_with_r10_and_r12() {
    // web never binds $PORT; worker ignores SIGTERM. Hosts share the
    // machine's network: keep clear of the other test's ports.
    let (sandbox, home) = deployed_demo(
        "dt",
        "[dynos]\nboot-timeout-secs = 2\nstop-timeout-secs = 1\nport-range-start = 31000\nport-range-end = 31099\n",
        "web: sleep 1000\nworker: trap '' TERM; while true; do sleep 1; done\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["ps:scale", "-a", "demo", "worker=1"]));
    let timeout = Duration::from_secs(60);
    let journal = || {
        sandbox
            .run(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "-u",
                "corrald.service",
            ])
            .unwrap_or_default()
    };

    let first_pid = wait_for("web.1 to run", timeout, || {
        let (state, pid) = dyno_units(&sandbox).get(&unit("web.1"))?.clone();
        (state == "active").then_some(pid)
    });
    let deadline = std::time::Instant::now() + timeout;
    while !journal().contains("Error R10 (Boot timeout)") {
        assert!(
            std::time::Instant::now() < deadline,
            "no R10 in:\n{}",
            journal()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed, counted as a crash, and started again.
    wait_for("web.1 to be restarted", timeout, || {
        let (state, pid) = dyno_units(&sandbox).get(&unit("web.1"))?.clone();
        (state == "active" && pid != first_pid && pid != 0).then_some(())
    });

    wait_for("worker.1 to run", timeout, || {
        dyno_units(&sandbox)
            .get(&unit("worker.1"))
            .is_some_and(|(state, _)| state == "active")
            .then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "worker=0"]));
    wait_for("worker.1 gone", timeout, || {
        (!dyno_units(&sandbox).contains_key(&unit("worker.1"))).then_some(())
    });
    assert!(
        journal().contains("Error R12 (Exit timeout)"),
        "{}",
        journal()
    );
    sandbox.stop().expect("teardown");
}
