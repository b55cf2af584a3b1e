//! Dynos on a real systemd: deploy, scale up and down, restart on crash,
//! adoption across a SIGKILL of corrald, config vars reaching the process.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use corral::model::UnitName;
use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, wait_for, wait_for_or};

/// One generation of a dyno as systemd shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    unit: String,
    generation: u32,
    state: String,
    pid: u32,
}

/// Every dyno unit systemd has loaded: `(dyno, generation) -> what it is`.
fn all_units(sandbox: &Sandbox) -> BTreeMap<(String, u32), Seen> {
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
        let Some((_, dyno, generation)) = UnitName::parse_dyno_unit(name) else {
            continue;
        };
        let pid = sandbox
            .run(&["systemctl", "show", "-p", "MainPID", "--value", name])
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        let generation = generation.unwrap_or(0);
        units.insert(
            (dyno.to_string(), generation),
            Seen {
                unit: name.to_owned(),
                generation,
                state: active.to_owned(),
                pid,
            },
        );
    }
    units
}

/// `dyno -> its newest generation`.
fn dyno_units(sandbox: &Sandbox) -> BTreeMap<String, Seen> {
    all_units(sandbox)
        .into_iter()
        .map(|((dyno, _), seen)| (dyno, seen))
        .collect()
}

fn active(units: &BTreeMap<String, Seen>) -> Vec<String> {
    units
        .iter()
        .filter(|(_, seen)| seen.state == "active")
        .map(|(name, _)| name.clone())
        .collect()
}

/// The unit of the newest generation of `dyno`.
fn unit(sandbox: &Sandbox, dyno: &str) -> String {
    dyno_units(sandbox)
        .get(dyno)
        .map(|s| s.unit.clone())
        .unwrap_or_default()
}

fn journal(sandbox: &Sandbox) -> String {
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

#[test]
fn dynos_follow_the_formation_on_a_real_systemd() {
    // Another program holds the range's first port: web.1 must get the
    // next one, and the boot probe must not take that program for it.
    let held = std::net::TcpListener::bind(("127.0.0.1", 30000)).expect("hold port 30000");
    let (sandbox, home) = deployed_demo(
        "dy",
        "[dynos]\nport-range-start = 30000\nport-range-end = 30099\n",
        "web: python3 -m http.server $PORT --bind 127.0.0.1\nworker: sleep 100000\n\
         probe: [ -e /app/x ] && echo SAW-OLD-WRITE; touch /etc/x && echo WROTE-ETC; touch /app/x && echo WROTE-APP; echo changed > /app/index.html && echo CHANGED-SLUG; ls /var/lib/corral && echo READ-STATE; cat /run/corral/dynos/*/fs/app/index.html && echo READ-OTHER; touch /tmp/ok && echo TMP-OK; exec sleep 100000\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);

    // A first deploy with a web type runs web.1.
    let timeout = Duration::from_secs(60);
    wait_for("web.1 to run", timeout, || {
        (active(&dyno_units(&sandbox)) == ["web.1"]).then_some(())
    });
    let web1 = unit(&sandbox, "web.1");
    assert_eq!(web1, "corral-demo-web.1@1.service");
    let description = sandbox
        .run(&["systemctl", "show", "-p", "Description", "--value", &web1])
        .expect("show");
    assert_eq!(description.trim(), "Corral dyno web.1 of app demo (v2)");
    let status = sandbox
        .run(&["systemctl", "status", "--no-pager", "--lines=0", &web1])
        .expect("status");
    assert!(
        status.contains("Corral dyno web.1 of app demo (v2)"),
        "{status}"
    );
    assert!(status.contains("corral-demo.slice"), "{status}");

    // The web dyno serves the slug on $PORT.
    let port_of = |unit: &str| -> u16 {
        let env = sandbox
            .run(&["systemctl", "show", "-p", "Environment", "--value", unit])
            .expect("env");
        env.split_whitespace()
            .find_map(|kv| kv.strip_prefix("PORT="))
            .and_then(|p| p.parse().ok())
            .expect("PORT in the environment")
    };
    assert_eq!(port_of(&web1), 30001, "30000 is held by the test");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port_of(&web1)));
    let page = wait_for("the web dyno to answer", timeout, || {
        support::try_http(addr, "GET", "/index.html", &[], None).ok()
    });
    assert_eq!(page.status, 200);
    assert_eq!(page.body, "hello from a dyno\n");
    drop(held);

    // Scale up, then down: the units follow.
    ok(&cli(&["ps:scale", "-a", "demo", "web=3", "worker=2"]));
    let all = ["web.1", "web.2", "web.3", "worker.1", "worker.2"].map(String::from);
    wait_for("five dynos", timeout, || {
        (active(&dyno_units(&sandbox)) == all).then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "web=1"]));
    let fewer = ["web.1", "worker.1", "worker.2"].map(String::from);
    wait_for("three dynos", timeout, || {
        let units = all_units(&sandbox);
        (active(&dyno_units(&sandbox)) == fewer && units.len() == 3).then_some(())
    });

    // The API lists them as up.
    let api: std::net::SocketAddr = sandbox
        .api_url
        .trim_start_matches("http://")
        .parse()
        .expect("api");
    let auth = format!("Bearer {}", sandbox.token);
    let states = || -> Vec<(String, String)> {
        support::http(
            api,
            "GET",
            "/apps/demo/dynos",
            &[("Authorization", &auth)],
            None,
        )
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
    };
    assert_eq!(
        states(),
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
    let old = dyno_units(&sandbox)["worker.2"].clone();
    let (_, err) = ok(&cli(&["ps:restart", "worker.2", "-a", "demo"]));
    assert!(
        err.contains("Restarting dyno worker.2 on ⬢ demo... done"),
        "{err}"
    );
    wait_for("worker.2 restarted", timeout, || {
        let seen = dyno_units(&sandbox).get("worker.2")?.clone();
        (seen.state == "active" && seen.pid != 0 && seen.pid != old.pid).then_some(())
    });

    // SIGKILL corrald in the middle of a scale-up: systemd restarts it, it
    // adopts the units, no dyno is restarted (same main PIDs), and the
    // formation converges.
    let before = all_units(&sandbox);
    ok(&cli(&["ps:scale", "-a", "demo", "worker=4"]));
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGKILL", "corrald.service"])
        .expect("kill corrald");
    wait_for("corrald to be back", timeout, || {
        let r = support::try_http(api, "GET", "/health", &[], None).ok()?;
        (r.status == 200).then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "worker=3"]));
    wait_for("worker.3", timeout, || {
        dyno_units(&sandbox)
            .get("worker.3")
            .is_some_and(|seen| seen.state == "active")
            .then_some(())
    });
    let after = all_units(&sandbox);
    for (name, seen) in &before {
        assert_eq!(
            after.get(name),
            Some(seen),
            "{name:?} was adopted, not restarted"
        );
    }
    ok(&cli(&["ps:scale", "-a", "demo", "worker=2"]));
    wait_for("worker.3 and worker.4 gone", timeout, || {
        let units = dyno_units(&sandbox);
        (!units.contains_key("worker.3") && !units.contains_key("worker.4")).then_some(())
    });

    // A crashed dyno is restarted (the first time at once), as a new
    // generation; no other dyno is touched.
    let others: BTreeMap<String, Seen> = dyno_units(&sandbox)
        .into_iter()
        .filter(|(dyno, _)| dyno != "worker.1")
        .collect();
    let old = dyno_units(&sandbox)["worker.1"].clone();
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGKILL", &old.unit])
        .expect("kill worker.1");
    let new = wait_for("worker.1 to be restarted", timeout, || {
        let seen = dyno_units(&sandbox).get("worker.1")?.clone();
        (seen.state == "active" && seen.generation > old.generation).then_some(seen)
    });
    assert_ne!(new.pid, old.pid);
    wait_for("the dead generation to be cleaned up", timeout, || {
        (!all_units(&sandbox).contains_key(&("worker.1".to_owned(), old.generation))).then_some(())
    });
    for (dyno, seen) in &others {
        assert_eq!(
            dyno_units(&sandbox).get(dyno),
            Some(seen),
            "{dyno} untouched"
        );
    }

    // A config change is a new release: web.1 rolls (the new generation is
    // up before the old one is stopped), the worker is replaced, and the
    // value reaches the process byte for byte.
    let old_web = dyno_units(&sandbox)["web.1"].clone();
    ok(&cli(&[
        "config:set",
        "-a",
        "demo",
        "TRICKY=%n $HOME ${X} \\ \"",
    ]));
    let new_web = wait_for("web.1 on v3", timeout, || {
        let seen = dyno_units(&sandbox).get("web.1")?.clone();
        let d = sandbox
            .run(&[
                "systemctl",
                "show",
                "-p",
                "Description",
                "--value",
                &seen.unit,
            ])
            .ok()?;
        (d.contains("(v3)") && seen.state == "active").then_some(seen)
    });
    assert!(new_web.generation > old_web.generation);
    wait_for("the old web.1 to stop", timeout, || {
        (!all_units(&sandbox).contains_key(&("web.1".to_owned(), old_web.generation))).then_some(())
    });
    let log = journal(&sandbox);
    let rolled = log.rfind("Restarting").expect("a restart was logged");
    let tail = &log[rolled..];
    let up = tail
        .find("State changed from starting to up")
        .expect("the new web.1 came up");
    let stopped = tail
        .find("Stopping all processes with SIGTERM")
        .expect("the old web.1 was stopped");
    assert!(
        up < stopped,
        "the old web dyno stopped before the new one was up:\n{tail}"
    );
    assert_ne!(port_of(&new_web.unit), 0);
    let environ = sandbox
        .run(&["cat", &format!("/proc/{}/environ", new_web.pid)])
        .expect("environ");
    assert!(
        environ
            .split('\0')
            .any(|kv| kv == "TRICKY=%n $HOME ${X} \\ \""),
        "{environ:?}"
    );
    assert!(environ.split('\0').any(|kv| kv == "DYNO=web.1"));

    // Isolation: each dyno has its own dynamic user; a dyno writes to /app
    // (its own layer over the shared slug) and /tmp, nowhere else, and
    // cannot see corrald's state or another dyno's /app.
    ok(&cli(&["ps:scale", "-a", "demo", "probe=1"]));
    let probe_log = |seen: &Seen| {
        sandbox
            .run(&["journalctl", "--no-pager", "-o", "cat", "-u", &seen.unit])
            .unwrap_or_default()
    };
    let probe = wait_for("the probe's report", timeout, || {
        let seen = dyno_units(&sandbox).get("probe.1")?.clone();
        probe_log(&seen).contains("TMP-OK").then_some(seen)
    });
    let report = probe_log(&probe);
    for wanted in ["WROTE-APP", "CHANGED-SLUG", "TMP-OK"] {
        assert!(report.contains(wanted), "{wanted}: {report}");
    }
    for forbidden in ["SAW-OLD-WRITE", "WROTE-ETC", "READ-STATE", "READ-OTHER"] {
        assert!(!report.contains(forbidden), "{forbidden}: {report}");
    }
    // The probe's change to index.html stayed in its own layer.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port_of(&new_web.unit)));
    let page = support::http(addr, "GET", "/index.html", &[], None);
    assert_eq!(page.body, "hello from a dyno\n");
    // A restart starts from the slug again: the old writes are gone.
    ok(&cli(&["ps:restart", "probe.1", "-a", "demo"]));
    let again = wait_for("the restarted probe's report", timeout, || {
        let seen = dyno_units(&sandbox).get("probe.1")?.clone();
        (seen.generation > probe.generation && probe_log(&seen).contains("TMP-OK")).then_some(seen)
    });
    let report = probe_log(&again);
    assert!(report.contains("WROTE-APP"), "{report}");
    assert!(!report.contains("SAW-OLD-WRITE"), "{report}");

    let uid_of = |dyno: &str| {
        let pid = dyno_units(&sandbox)[dyno].pid;
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

    // Scaling to zero stops everything, overlays and runtime files too.
    ok(&cli(&[
        "ps:scale", "-a", "demo", "web=0", "worker=0", "probe=0",
    ]));
    wait_for("no dynos", timeout, || {
        all_units(&sandbox).is_empty().then_some(())
    });
    wait_for("no overlays and no runtime files", timeout, || {
        let mounts = sandbox
            .run(&["findmnt", "-rn", "-t", "overlay", "-o", "TARGET"])
            .ok()?;
        let files = sandbox.run(&["ls", "/run/corral/dynos"]).ok()?;
        (!mounts.contains("/run/corral") && files.trim().is_empty()).then_some(())
    });
    sandbox.stop().expect("teardown");
}

#[test]
fn boot_and_exit_timeouts_are_enforced_with_r10_and_r12() {
    // web never binds $PORT; worker ignores SIGTERM. Hosts share the
    // machine's network: keep clear of the other test's ports.
    let (sandbox, home) = deployed_demo(
        "dt",
        "[dynos]\nstop-timeout-secs = 1\nport-range-start = 31000\nport-range-end = 31099\n",
        "web: sleep 1000\nworker: trap '' TERM; while true; do sleep 1; done\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["ps:scale", "-a", "demo", "worker=1"]));
    let timeout = Duration::from_secs(60);

    // The operator's default is 60 s; this app asks for 2 s. A restart
    // starts web.1 under the app's own timeout.
    let (out, _) = ok(&cli(&["apps:settings", "-a", "demo", "boot_timeout=2"]));
    assert!(out.contains("boot_timeout: 2"), "{out}");
    ok(&cli(&["ps:restart", "web", "-a", "demo"]));
    let first = wait_for("web.1 to run", timeout, || {
        let seen = dyno_units(&sandbox).get("web.1")?.clone();
        (seen.state == "active" && seen.generation > 1).then_some(seen)
    });
    wait_for("R10", timeout, || {
        journal(&sandbox)
            .contains("Error R10 (Boot timeout)")
            .then_some(())
    });
    // Killed, counted as a crash (not as R15), and started again.
    wait_for("web.1 to be restarted", timeout, || {
        let seen = dyno_units(&sandbox).get("web.1")?.clone();
        (seen.state == "active" && seen.generation > first.generation).then_some(())
    });
    assert!(!journal(&sandbox).contains("R15"), "{}", journal(&sandbox));

    wait_for("worker.1 to run", timeout, || {
        dyno_units(&sandbox)
            .get("worker.1")
            .is_some_and(|seen| seen.state == "active")
            .then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "worker=0"]));
    wait_for("worker.1 gone", timeout, || {
        (!dyno_units(&sandbox).contains_key("worker.1")).then_some(())
    });
    assert!(
        journal(&sandbox).contains("Error R12 (Exit timeout)"),
        "{}",
        journal(&sandbox)
    );
    sandbox.stop().expect("teardown");
}

#[test]
fn dynos_cycle_by_their_timers_and_the_kernel_enforces_their_size() {
    // A short cycle; a worker that outgrows standard-1X (512 MB).
    let (sandbox, home) = deployed_demo(
        "dc",
        "[dynos]\ncycle-interval-secs = 4\ncycle-jitter-secs = 1\nport-range-start = 31100\nport-range-end = 31199\n",
        "web: python3 -m http.server $PORT --bind 127.0.0.1\nhog: python3 -c 'x = b\"x\" * (900 << 20); import time; time.sleep(1000)'\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    let timeout = Duration::from_secs(60);

    let first = wait_for("web.1 to run", timeout, || {
        let seen = dyno_units(&sandbox).get("web.1")?.clone();
        (seen.state == "active").then_some(seen)
    });
    let timers = sandbox
        .run(&[
            "systemctl",
            "list-timers",
            "--all",
            "--no-pager",
            "corral-*",
        ])
        .expect("list-timers");
    let timer = first.unit.replace(".service", ".timer");
    assert!(timers.contains(&timer), "{timers}");
    assert!(
        timers.contains(&first.unit),
        "the timer activates the dyno: {timers}"
    );
    let cycled = wait_for_or(
        "web.1 to cycle",
        timeout,
        || journal(&sandbox),
        || {
            let seen = dyno_units(&sandbox).get("web.1")?.clone();
            (seen.state == "active" && seen.generation > first.generation).then_some(seen)
        },
    );
    assert!(
        journal(&sandbox).contains("Cycling"),
        "{}",
        journal(&sandbox)
    );
    wait_for("the old generation and its timer to go", timeout, || {
        let units = all_units(&sandbox);
        let timers = sandbox
            .run(&[
                "systemctl",
                "list-timers",
                "--all",
                "--no-pager",
                "corral-*",
            ])
            .ok()?;
        (!units.contains_key(&("web.1".to_owned(), first.generation)) && !timers.contains(&timer))
            .then_some(())
    });
    assert_ne!(cycled.pid, first.pid);

    // The kernel kills the hog at 512 MB; R15 is logged, and it restarts.
    ok(&cli(&["ps:scale", "-a", "demo", "hog=1", "web=0"]));
    wait_for_or(
        "R15",
        timeout,
        || journal(&sandbox),
        || {
            journal(&sandbox)
                .contains("Error R15 (Memory quota vastly exceeded)")
                .then_some(())
        },
    );
    wait_for("the hog to be restarted", timeout, || {
        all_units(&sandbox)
            .keys()
            .filter(|(dyno, _)| dyno == "hog.1")
            .any(|(_, generation)| *generation > 1)
            .then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "demo", "hog=0"]));
    sandbox.stop().expect("teardown");
}

#[test]
fn declared_apps_custom_sizes_and_the_dyno_path_reach_real_units() {
    let name = format!("dd-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    // The NixOS module's `services.corral.apps` and `dynoSizes` end up as these.
    options.extra_config = "[dynos]\nport-range-start = 31800\nport-range-end = 31899\n\
        path = \"/opt/declared/bin:/usr/bin:/bin\"\nsizes = { tiny = 256 }\n\n\
        [apps.demo]\nconfig = { GREETING = \"declared\" }\n\
        formation = { worker = { quantity = 1, size = \"tiny\" } }\n\
        domains = [\"www.declared.test\"]\n"
        .to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);

    // corrald made the app at start: no apps:create, straight to a deploy.
    let (config, _) = ok(&cli(&["config:get", "-a", "demo", "GREETING"]));
    assert_eq!(config.trim(), "declared");
    let (domains, _) = ok(&cli(&["domains", "-a", "demo"]));
    assert!(domains.contains("www.declared.test"), "{domains}");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(app_dir.join("Procfile"), "worker: exec sleep 1000\n").expect("Procfile");
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "demo",
    ]));

    let timeout = Duration::from_secs(60);
    let worker = wait_for_or(
        "the declared worker to run",
        timeout,
        || journal(&sandbox),
        || {
            let seen = dyno_units(&sandbox).get("worker.1")?.clone();
            (seen.state == "active").then_some(seen)
        },
    );
    let show = sandbox
        .run(&[
            "systemctl",
            "show",
            "-p",
            "MemoryMax,Environment",
            &worker.unit,
        ])
        .expect("systemctl show");
    assert!(
        show.contains("MemoryMax=268435456"),
        "the tiny size: {show}"
    );
    assert!(
        show.contains("PATH=/app/bin:/opt/declared/bin:/usr/bin:/bin"),
        "{show}"
    );
    assert!(show.contains("GREETING=declared"), "{show}");

    // A restart of corrald with the same declaration changes nothing: no
    // release, and the worker keeps running (adopted, not restarted).
    let (before, _) = ok(&cli(&["releases", "-a", "demo"]));
    sandbox
        .run(&["systemctl", "restart", "corrald.service"])
        .expect("restart corrald");
    wait_for("corrald to answer again", timeout, || {
        let out = cli(&["releases", "-a", "demo"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let (after, _) = ok(&cli(&["releases", "-a", "demo"]));
    let versions = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with('v'))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&before), versions(&after));
    assert_eq!(
        versions(&after).len(),
        3,
        "v1, GREETING, the deploy: {after}"
    );
    assert_eq!(unit(&sandbox, "worker.1"), worker.unit);
    sandbox.stop().expect("teardown");
}
