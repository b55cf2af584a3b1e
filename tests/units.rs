//! `corral install` on a real systemd (the throwaway host): the installed units pass `systemd-analyze verify`, and corrald runs from them, dynos under corral.slice. Needs root.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use corral::sandbox::{Host, HostConfig};
use support::{corral_cli, free_port, ok, router_get, try_http, wait_for};

/// Where the build's binaries appear inside the host.
const BIN: &str = "/opt/corral/bin";

/// Every unit `corral install` writes.
const UNITS: &[&str] = &[
    "corrald.service",
    "corral.slice",
    "corral-router.socket",
    "corral-router-tls.socket",
    "corral-router.service",
];

fn run(host: &Host, argv: &[&str]) -> Output {
    host.command(argv[0])
        .args(&argv[1..])
        .output()
        .expect("nsenter runs")
}

/// Runs `argv` in the host, asserting success; returns (stdout, stderr).
fn run_ok(host: &Host, argv: &[&str]) -> (String, String) {
    let out = run(host, argv);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{argv:?} failed with {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    (stdout, stderr)
}

fn journal(host: &Host) -> String {
    let out = run(
        host,
        &["journalctl", "--no-pager", "-o", "cat", "-u", "corrald"],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn installed_units_verify_clean_and_run_corrald_and_its_dynos() {
    let name = format!("un-{}", std::process::id());
    let (api_port, router_port) = (free_port(), free_port());
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    let router = std::net::SocketAddr::from(([127, 0, 0, 1], router_port));
    // A config of the operator's, there before the install: loopback
    // ports (the host shares the machine's network) and dyno ports of
    // this test's own range. `corral install` must keep it.
    let config = format!(
        "[api]\nlisten = \"{api}\"\n\n[router]\nlisten = \"{router}\"\n\n[dynos]\nport-range-start = 31700\nport-range-end = 31799\n"
    );
    let on_the_machine = machine_files();
    // The host's /etc is its own (an overlay with a memory upper layer):
    // nothing written there reaches the machine.
    let host = Host::boot(
        HostConfig::new(&name)
            .bind(support::bin_dir(), BIN)
            .etc_file("corral/corrald.toml", config.clone()),
    )
    .expect("host boots");

    // corral install, with the corrald beside it by default.
    let (out, _) = run_ok(&host, &[&format!("{BIN}/corral"), "install"]);
    for unit in UNITS {
        let line = format!("wrote /etc/systemd/system/{unit}");
        assert!(out.lines().any(|l| l == line), "{line} in {out}");
    }
    for line in [
        "wrote /etc/sysusers.d/corral.conf",
        "wrote /etc/tmpfiles.d/corral.conf",
        "kept the existing /etc/corral/corrald.toml (never overwritten)",
        "ran systemd-sysusers /etc/sysusers.d/corral.conf",
        "ran systemd-tmpfiles --create /etc/tmpfiles.d/corral.conf",
        "ran systemctl daemon-reload",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} in {out}");
    }
    let (installed, _) = run_ok(&host, &["cat", "/etc/systemd/system/corrald.service"]);
    assert!(
        installed.contains(&format!(
            "ExecStart={BIN}/corrald --config /etc/corral/corrald.toml serve\n"
        )),
        "{installed}"
    );
    let (kept, _) = run_ok(&host, &["cat", "/etc/corral/corrald.toml"]);
    assert_eq!(kept, config);
    // sysusers made the group, tmpfiles gave it the state directory.
    run_ok(&host, &["getent", "group", "corral"]);
    let (stat, _) = run_ok(
        &host,
        &["stat", "-c", "%a %U:%G", "/var/lib/corral", "/etc/corral"],
    );
    assert_eq!(stat, "710 root:corral\n755 root:root\n");

    // systemd-analyze verify is clean on every unit: exit 0, and nothing
    // said about ours (it may mention the host's own units, which it loads
    // as dependencies).
    let paths: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/etc/systemd/system/{u}"))
        .collect();
    let mut verify = vec!["systemd-analyze", "verify"];
    verify.extend(paths.iter().map(String::as_str));
    let out = run(&host, &verify);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("corral") || l.contains(BIN))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify: {ours:?}\nall of it: {stderr}"
    );

    // A second run with --now changes no file and starts corrald.
    let (out, _) = run_ok(&host, &[&format!("{BIN}/corral"), "install", "--now"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("unchanged ")).count(),
        UNITS.len() + 2,
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "ran systemctl enable --now corrald.service"),
        "{out}"
    );
    let (enabled, _) = run_ok(&host, &["systemctl", "is-enabled", "corrald.service"]);
    assert_eq!(enabled.trim(), "enabled");

    // The API answers through the installed unit, and reaches systemd.
    let health = wait_for("corrald's API", Duration::from_secs(60), || {
        try_http(api, "GET", "/health", &[], None)
            .ok()
            .filter(|r| r.status == 200 && r.body.contains("\"reachable\":true"))
    });
    // The systemd it reaches is the host's: the version it reports is the
    // one `systemctl --version` prints there.
    let (version, _) = run_ok(&host, &["systemctl", "--version"]);
    let major = version
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let reported = health.json()["systemd"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !major.is_empty() && reported.starts_with(&major),
        "corrald reports systemd {reported:?}, the host runs {version:?}"
    );
    let (props, _) = run_ok(
        &host,
        &[
            "systemctl",
            "show",
            "-p",
            "ActiveState,ProtectSystem,FragmentPath",
            "corrald.service",
        ],
    );
    for line in [
        "ActiveState=active",
        "ProtectSystem=strict",
        "FragmentPath=/etc/systemd/system/corrald.service",
    ] {
        assert!(props.lines().any(|l| l == line), "{line} in {props}");
    }

    // The socket is the group's: a member reaches the API through it (a
    // token still decides what it may do), anyone else cannot connect.
    let (stat, _) = run_ok(
        &host,
        &["stat", "-c", "%a %U:%G", "/var/lib/corral/api.sock"],
    );
    assert_eq!(stat, "660 root:corral\n");
    run_ok(
        &host,
        &[
            "useradd",
            "--no-create-home",
            "--groups",
            "corral",
            "member",
        ],
    );
    run_ok(&host, &["useradd", "--no-create-home", "outsider"]);
    let (token, _) = run_ok(
        &host,
        &[
            &format!("{BIN}/corrald"),
            "tokens",
            "create",
            "--name",
            "units",
        ],
    );
    let token = token.trim().to_owned();
    let as_user = |user: &str| {
        run(
            &host,
            &[
                "runuser",
                "-u",
                user,
                "--",
                "env",
                "-i",
                "HOME=/tmp",
                "PATH=/usr/bin:/bin",
                &format!("CORRAL_API_TOKEN={token}"),
                &format!("{BIN}/corral"),
                "apps",
            ],
        )
    };
    let member = as_user("member");
    assert!(
        member.status.success(),
        "a member of corral uses the socket: {}",
        String::from_utf8_lossy(&member.stderr)
    );
    let outsider = as_user("outsider");
    assert!(!outsider.status.success(), "an outsider reaches the socket");
    let refused = String::from_utf8_lossy(&outsider.stderr);
    assert!(refused.contains("ermission denied"), "{refused}");
    // ... and cannot read what the group may pass by.
    let peek = run(
        &host,
        &[
            "runuser",
            "-u",
            "member",
            "--",
            "cat",
            "/var/lib/corral/corral.db",
        ],
    );
    assert!(!peek.status.success(), "a member reads the database");

    // An app and a dyno through it: the dyno runs in its app's slice,
    // inside corral.slice and its limits, and serves through the router.
    let home = tempfile::tempdir().expect("home");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(
        app_dir.join("Procfile"),
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n",
    )
    .expect("Procfile");
    std::fs::write(
        app_dir.join("index.html"),
        "hello from an installed corrald\n",
    )
    .expect("index");
    let url = format!("http://{api}");
    let cli = |args: &[&str]| corral_cli(&url, &token, home.path(), args);
    ok(&cli(&["apps:create", "demo"]));
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "demo",
    ]));
    ok(&cli(&["ps:scale", "-a", "demo", "web=1"]));
    let dyno = "corral-demo-web.1@1.service";
    let served = std::panic::catch_unwind(|| {
        wait_for("the dyno to serve", Duration::from_secs(90), || {
            router_get(router, "demo.localhost", "/")
                .ok()
                .filter(|(status, _)| *status == 200)
        })
    });
    let Ok((_, body)) = served else {
        panic!(
            "the dyno did not serve; corrald's journal:\n{}",
            journal(&host)
        );
    };
    assert_eq!(body, "hello from an installed corrald\n");
    let (cgroup, _) = run_ok(
        &host,
        &["systemctl", "show", "-p", "ControlGroup", "--value", dyno],
    );
    assert!(
        cgroup.starts_with("/corral.slice/corral-demo.slice/"),
        "{cgroup}"
    );
    let show = |unit: &str, key: &str| -> u64 {
        let (value, _) = run_ok(&host, &["systemctl", "show", "-p", key, "--value", unit]);
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{unit} has no finite {key}: {value:?}"))
    };
    let (state, _) = run_ok(
        &host,
        &[
            "systemctl",
            "show",
            "-p",
            "ActiveState",
            "--value",
            "corral.slice",
        ],
    );
    assert_eq!(state.trim(), "active");
    show("corral.slice", "TasksMax");
    // The slice's MemoryMax= is the shipped share of the host's memory.
    let percent: u64 = corral::install::CORRAL_SLICE
        .lines()
        .find_map(|l| l.strip_prefix("MemoryMax=")?.strip_suffix('%'))
        .and_then(|p| p.parse().ok())
        .expect("the shipped slice's MemoryMax= is a percentage");
    let (meminfo, _) = run_ok(&host, &["cat", "/proc/meminfo"]);
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix(" kB"))
        .and_then(|kb| kb.trim().parse().ok())
        .expect("MemTotal");
    let expected = total_kb * 1024 / 100 * percent;
    let slice_max = show("corral.slice", "MemoryMax");
    assert!(
        slice_max.abs_diff(expected) <= 1 << 20,
        "corral.slice MemoryMax={slice_max}, expected {percent}% of {total_kb} kB = {expected}"
    );
    // And the kernel holds a dyno to it, below the dyno's own limit: 150 MB
    // fits a Standard-1X one-off until the slice is capped at 100 MB, and
    // then the OOM killer ends it (128 + SIGKILL).
    let dyno_max = show(dyno, "MemoryMax");
    assert!(dyno_max > 150 << 20, "{dyno} MemoryMax={dyno_max}");
    let allocate = || {
        cli(&[
            "run",
            "-a",
            "demo",
            "--no-tty",
            "--",
            "python3",
            "-c",
            "x = bytearray(150 * 1024 * 1024); print('allocated', len(x))",
        ])
    };
    let (out, _) = ok(&allocate());
    assert!(out.contains("allocated 157286400"), "{out}");
    run_ok(
        &host,
        &[
            "systemctl",
            "set-property",
            "--runtime",
            "corral.slice",
            "MemoryMax=100M",
        ],
    );
    assert_eq!(show("corral.slice", "MemoryMax"), 100 << 20);
    let killed = allocate();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&killed.stdout),
        String::from_utf8_lossy(&killed.stderr)
    );
    assert_eq!(
        killed.status.code(),
        Some(137),
        "150 MB under a 100 MB corral.slice: {said}"
    );
    // The CLI echoes the command, which names "allocated" too.
    assert!(!said.contains("allocated 157286400"), "{said}");

    host.shutdown().expect("clean teardown");
    assert_eq!(
        machine_files(),
        on_the_machine,
        "the machine's /etc was touched"
    );
}

/// Which of the installed files the machine itself has, to show the
/// install inside the host left the machine's /etc alone.
fn machine_files() -> Vec<bool> {
    UNITS
        .iter()
        .map(|u| format!("/etc/systemd/system/{u}"))
        .chain([
            "/etc/sysusers.d/corral.conf".to_owned(),
            "/etc/tmpfiles.d/corral.conf".to_owned(),
        ])
        .map(|p| Path::new(&p).exists())
        .collect()
}
