//! corrald inside a real systemd (the throwaway host): the README's start
//! path, end to end, and a teardown that leaves nothing behind. Needs root.

mod support;

use std::path::Path;

use corral::sandbox::{Sandbox, SandboxOptions, CGROUP_PREFIX, SCRATCH_ROOT};
use support::{corral_cli, free_port, http, ok};

fn cgroup_dirs(name: &str) -> Vec<String> {
    let wanted = format!("{CGROUP_PREFIX}{name}");
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_type()
                .is_ok_and(|t| t.is_dir() && !t.is_symlink())
            {
                if entry.file_name().to_string_lossy() == wanted {
                    found.push(path.display().to_string());
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found
}

#[test]
fn corrald_reaches_systemd_in_the_sandbox_and_teardown_is_complete() {
    let name = format!("it-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let pid = sandbox.host().expect("host").pid();

    // The API reports the systemd inside, over D-Bus.
    let addr = sandbox
        .api_url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let health = http(addr, "GET", "/health", &[], None).json();
    assert_eq!(health["systemd"]["reachable"], true, "{health}");
    let version = health["systemd"]["version"].as_str().expect("version");
    assert!(version.starts_with(char::is_numeric), "{version}");

    // corrald runs as a unit of that systemd.
    let status = sandbox
        .run(&[
            "systemctl",
            "show",
            "-p",
            "ActiveState,Description",
            "corrald.service",
        ])
        .expect("systemctl");
    assert!(status.contains("ActiveState=active"), "{status}");
    assert!(status.contains("Corral platform daemon"), "{status}");
    // ... the shipped unit, hardening and all, so every sandbox test runs
    // corrald the way a host does.
    let unit = sandbox
        .run(&[
            "systemctl",
            "show",
            "-p",
            "FragmentPath,ProtectSystem,PrivateDevices,NoNewPrivileges",
            "corrald.service",
        ])
        .expect("systemctl");
    for line in [
        "FragmentPath=/etc/systemd/system/corrald.service",
        "ProtectSystem=strict",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in {unit}");
    }

    // The systemd client itself, run inside the host (see below).
    let exe = std::env::current_exe().expect("test binary");
    let inner = Path::new("/opt/corral/bin").join(
        exe.strip_prefix(support::bin_dir())
            .expect("test binaries live under the bin dir"),
    );
    let out = sandbox
        .run(&[
            inner.to_str().expect("utf-8 path"),
            "--ignored",
            "--exact",
            "systemd_client_inside_the_host",
            "--nocapture",
        ])
        .expect("inner test passes");
    assert!(out.contains("1 passed"), "{out}");

    // The README's quick tour.
    let home = tempfile::tempdir().expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "demo"]));
    ok(&cli(&["config:set", "-a", "demo", "A=1"]));
    let (out, _) = ok(&cli(&["releases", "-a", "demo"]));
    assert!(out.contains("v2  Set A config vars"), "{out}");
    assert!(out.contains("v1  Initial release"), "{out}");
    let (_, err) = ok(&cli(&["ps:scale", "-a", "demo", "web=2"]));
    assert!(err.contains("web at 2"), "{err}");

    // A restart of corrald by systemd (after SIGKILL) keeps the state.
    let main_pid = || {
        sandbox
            .run(&[
                "systemctl",
                "show",
                "-p",
                "MainPID",
                "--value",
                "corrald.service",
            ])
            .expect("systemctl")
            .trim()
            .to_owned()
    };
    let before = main_pid();
    sandbox
        .run(&["systemctl", "kill", "--signal=SIGKILL", "corrald.service"])
        .expect("kill");
    support::wait_for(
        "corrald to be restarted",
        std::time::Duration::from_secs(30),
        || {
            let now = main_pid();
            if now == before || now == "0" {
                return None;
            }
            let r = support::try_http(addr, "GET", "/health", &[], None).ok()?;
            (r.status == 200).then_some(())
        },
    );
    let (out, _) = ok(&cli(&["config:get", "-a", "demo", "A"]));
    assert_eq!(out, "1\n");

    assert!(
        !cgroup_dirs(&name).is_empty(),
        "the host nests in child cgroups"
    );
    sandbox.stop().expect("clean teardown");

    assert!(
        cgroup_dirs(&name).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&name)
    );
    assert!(!Path::new(SCRATCH_ROOT).join(&name).exists());
    assert!(!Path::new(SCRATCH_ROOT).join(format!("{name}.etc")).exists());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "inner systemd still alive"
    );
    assert!(
        support::try_http(addr, "GET", "/health", &[], None).is_err(),
        "corrald still answers"
    );
}

/// Runs inside the throwaway host, started by the test above: the library's
/// D-Bus client against a real systemd manager.
#[test]
#[ignore = "runs inside the throwaway host; started by the sandbox test"]
fn systemd_client_inside_the_host() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let systemd = corral::systemd::Systemd::new();
        let version = systemd.version().await.expect("Manager.Version");
        assert!(version.starts_with(char::is_numeric), "{version}");
        let units = systemd
            .list_units(&["corrald.service", "dbus.*"])
            .await
            .expect("ListUnitsByPatterns");
        let corrald = units
            .iter()
            .find(|u| u.name == "corrald.service")
            .expect("corrald.service listed");
        assert_eq!(corrald.active_state, "active");
        assert_eq!(corrald.description, "Corral platform daemon (sandbox)");
        assert!(units.iter().any(|u| u.name == "dbus.service"), "{units:?}");
        assert!(units
            .iter()
            .all(|u| u.name == "corrald.service" || u.name.starts_with("dbus.")));
    });
}
