//! The D-Bus layer (`corral::systemd`) against a real systemd: the outer test boots a throwaway host and runs the `inner_*` tests inside it. Needs root.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral::sandbox::{Host, HostConfig};
use corral::systemd::{
    BindPath, Limits, ServiceSpec, Stdio, Systemd, SystemdError, UnitEvent, UnitStatus,
};
use futures_util::{Stream, StreamExt};

/// The inner tests, run one by one inside the host, in this order.
const INNER: &[&str] = &[
    "inner_dyno_sandbox_env_and_dynamic_users",
    "inner_missing_program_fails_the_start",
    "inner_exits_are_reported_as_events",
    "inner_kill_stop_and_runtime_max",
    "inner_memory_max_kills",
    "inner_slice_and_passed_fds",
    "inner_survives_daemon_reexec",
    "inner_start_security_probe",
];

/// Left running by `inner_start_security_probe` for `systemd-analyze security`.
const SECURITY_PROBE: &str = "corral-test-security.service";

/// What `systemd-analyze security` may rate the dyno sandbox at most.
const MAX_EXPOSURE: f64 = 2.0;

/// A config var as users write them: specifiers, variables, quotes,
/// backslashes, command substitution and a newline, none of which may be
/// interpreted on the way.
const TRICKY: &str = "%n $HOME ${X} \\ \" ' `id` $(id) %% $$\nsecond line\\n";

/// An argv word that systemd would expand if it were not escaped.
const ARGV_PROBE: &str = "$HOME ${PATH} %n %%";

#[test]
fn systemd_dbus_layer_in_a_real_systemd() {
    let name = format!("sd-{}", std::process::id());
    let host = Host::boot(HostConfig::new(&name).bind(support::bin_dir(), "/opt/corral/bin"))
        .expect("boot the throwaway host");
    let exe = std::env::current_exe().expect("test binary");
    let inner = Path::new("/opt/corral/bin").join(
        exe.strip_prefix(support::bin_dir())
            .expect("test binaries live under the bin dir"),
    );
    let mut failed = Vec::new();
    for test in INNER {
        let out = host
            .command(&inner)
            .args([
                "--ignored",
                "--exact",
                test,
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .expect("run the inner test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "===== {test} ({})\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !stdout.contains("1 passed") {
            failed.push(*test);
        }
    }

    let analyze = host
        .command("systemd-analyze")
        .args(["security", "--no-pager", SECURITY_PROBE])
        .output()
        .expect("run systemd-analyze");
    let report = String::from_utf8_lossy(&analyze.stdout);
    eprintln!(
        "===== systemd-analyze security {SECURITY_PROBE}\n{report}{}",
        String::from_utf8_lossy(&analyze.stderr)
    );
    let exposure = report
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok());

    host.shutdown().expect("clean teardown");
    assert_eq!(
        failed,
        Vec::<&str>::new(),
        "inner tests failed (output above)"
    );
    let exposure = exposure.expect("an overall exposure level in the report");
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} above {MAX_EXPOSURE}"
    );
}

// ---- helpers for the inner tests (they run inside the host) ----

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// A fresh directory for one unit, bound at /app: world-writable (not
/// sticky, so a later uid may replace files) since a dynamic user writes it.
fn scratch(unit: &str) -> PathBuf {
    let dir = Path::new("/var/lib/corral-test").join(unit);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

/// A FIFO the unit and the test meet at: whoever opens first waits.
fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    path
}

/// Runs blocking `f` on a thread, failing the test after 30 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn read_fifo(path: &Path) -> String {
    let path = path.to_owned();
    within(&format!("reading {}", path.display()), move || {
        std::fs::read_to_string(&path).expect("read fifo")
    })
}

fn write_fifo(path: &Path, text: &'static str) {
    let path = path.to_owned();
    within(&format!("writing {}", path.display()), move || {
        std::fs::write(&path, text).expect("write fifo")
    })
}

fn sh(script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

/// A dyno-sandboxed service with limits and `dir` bound at /app.
fn dyno(unit: &str, argv: Vec<String>, dir: &Path) -> ServiceSpec {
    let mut spec = ServiceSpec::new(unit, argv);
    spec.description = format!("corral test {unit}");
    spec.slice = Some("corral-test.slice".to_owned());
    spec.working_directory = Some("/app".to_owned());
    spec.bind_paths = vec![BindPath {
        source: dir.display().to_string(),
        destination: "/app".to_owned(),
        read_only: false,
    }];
    spec.limits = Limits {
        memory_max: Some(256 << 20),
        memory_swap_max: Some(0),
        cpu_weight: Some(100),
        cpu_quota_per_sec_usec: Some(500_000),
        tasks_max: Some(64),
        limit_nofile: Some(4096),
        ..Limits::default()
    };
    spec.log_extra_fields = vec![("CORRAL_TEST".to_owned(), unit.to_owned())];
    spec.syslog_identifier = Some(unit.to_owned());
    spec.timeout_stop = Some(Duration::from_secs(10));
    spec
}

async fn status(systemd: &Systemd, unit: &str) -> UnitStatus {
    let status = systemd
        .unit_status(unit)
        .await
        .expect("unit_status")
        .unwrap_or_else(|| panic!("{unit} is not loaded"));
    eprintln!("status: {status:?}");
    status
}

/// The next event satisfying `want`, within 30 s; every event is printed.
async fn next_event(
    events: &mut (impl Stream<Item = UnitEvent> + Unpin),
    what: &str,
    mut want: impl FnMut(&UnitEvent) -> bool,
) -> UnitEvent {
    let wait = async {
        while let Some(event) = events.next().await {
            eprintln!("event: {event:?}");
            if want(&event) {
                return event;
            }
        }
        panic!("the event stream ended while waiting for {what}");
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no event within 30 s: {what}"))
}

fn changed_to(unit: &str, states: &[&str]) -> impl Fn(&UnitEvent) -> bool {
    let unit = unit.to_owned();
    let states: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
    move |e| matches!(e, UnitEvent::Changed { unit: u, active_state, .. } if *u == unit && states.contains(active_state))
}

/// The unit stopped running (failed, or inactive after it had started):
/// a new unit's first event, `inactive` as loaded, does not count.
fn ended(unit: &str) -> impl FnMut(&UnitEvent) -> bool {
    let unit = unit.to_owned();
    let mut started = false;
    move |e| match e {
        UnitEvent::Changed {
            unit: u,
            active_state,
            ..
        } if *u == unit => {
            let ended = active_state == "failed" || (started && active_state == "inactive");
            started |= active_state != "inactive";
            ended
        }
        _ => false,
    }
}

fn removed(unit: &str) -> impl Fn(&UnitEvent) -> bool {
    let unit = unit.to_owned();
    move |e| matches!(e, UnitEvent::Removed { unit: u } if *u == unit)
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- the inner tests ----

const PROBE_SCRIPT: &str = r#"set -u
rm -f /app/report /app/env /app/argv1
{
    echo "uid=$(id -u)"
    for d in /etc /var /tmp /app; do
        if touch "$d/.probe" 2>/dev/null; then rm -f "$d/.probe"; echo "write $d=yes"; else echo "write $d=no"; fi
    done
    echo "nofile=$(ulimit -n)/$(ulimit -Hn)"
} > /app/report
printf %s "$TRICKY" > /app/env
printf %s "$1" > /app/argv1
echo ready > /app/ready
exec sleep 1000
"#;

/// Starts a probe unit and returns (report, env value, argv word) once it is ready.
async fn start_probe(systemd: &Systemd, unit: &str) -> (PathBuf, String) {
    let dir = scratch(unit);
    let ready = fifo(&dir, "ready");
    let mut spec = dyno(unit, sh(PROBE_SCRIPT, &["sh", ARGV_PROBE]), &dir);
    spec.environment = vec![
        ("TRICKY".to_owned(), TRICKY.to_owned()),
        ("X".to_owned(), "expanded".to_owned()),
    ];
    systemd.start_service(spec).await.expect("start_service");
    assert_eq!(read_fifo(&ready), "ready\n");
    let report = std::fs::read_to_string(dir.join("report")).expect("report");
    eprintln!("{unit} report:\n{report}");
    (dir, report)
}

fn report_value<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_dyno_sandbox_env_and_dynamic_users() {
    block_on(async {
        let systemd = Systemd::new();
        let (a, b) = ("corral-test-probe-a.service", "corral-test-probe-b.service");
        let (dir_a, report_a) = start_probe(&systemd, a).await;
        let (_dir_b, report_b) = start_probe(&systemd, b).await;

        let st = status(&systemd, a).await;
        assert_eq!(
            (st.active_state.as_str(), st.sub_state.as_str()),
            ("active", "running")
        );
        assert!(st.main_pid > 0, "{st:?}");
        assert!(st.active_enter_timestamp_usec > 0, "{st:?}");
        assert!(st.memory_current.is_some_and(|m| m > 0), "{st:?}");
        assert!(st.tasks_current.is_some_and(|t| t >= 1), "{st:?}");
        // CPUUsageNSec stays unknown on this test host (its cpu and cpuacct
        // v1 controllers are separate hierarchies, and systemd realizes no
        // cpuacct cgroups there), so it is printed, not asserted.
        eprintln!("cpu_usage_nsec: {:?}", st.cpu_usage_nsec);

        // Dynamic users, one per unit.
        let uid_a: u32 = report_value(&report_a, "uid").parse().expect("uid");
        let uid_b: u32 = report_value(&report_b, "uid").parse().expect("uid");
        eprintln!("dynamic uids: {uid_a} {uid_b}");
        assert!((61184..=65519).contains(&uid_a), "{uid_a}");
        assert!((61184..=65519).contains(&uid_b), "{uid_b}");
        assert_ne!(uid_a, uid_b);

        // ProtectSystem=strict, PrivateTmp, the writable bind, LimitNOFILE.
        assert_eq!(report_value(&report_a, "write /etc"), "no");
        assert_eq!(report_value(&report_a, "write /var"), "no");
        assert_eq!(report_value(&report_a, "write /tmp"), "yes");
        assert_eq!(report_value(&report_a, "write /app"), "yes");
        assert_eq!(report_value(&report_a, "nofile"), "4096/4096");

        // Config values and argv words arrive unchanged.
        let env = std::fs::read_to_string(dir_a.join("env")).expect("env file");
        assert_eq!(env, TRICKY);
        let argv1 = std::fs::read_to_string(dir_a.join("argv1")).expect("argv file");
        assert_eq!(argv1, ARGV_PROBE);

        // A daemon-reload re-reads the transient unit file systemd wrote:
        // the unit must stay loaded with its environment and usage figures.
        let file =
            std::fs::read_to_string(format!("/run/systemd/transient/{a}")).expect("unit file");
        eprintln!("transient unit file:\n{file}");
        let show = |unit: &str| {
            run(&[
                "systemctl",
                "show",
                "-p",
                "LoadState,RestrictNamespaces",
                unit,
            ])
        };
        eprintln!("before daemon-reload:\n{}", show(a));
        run(&["systemctl", "daemon-reload"]);
        eprintln!("after daemon-reload:\n{}", show(a));
        let path = format!(
            "/org/freedesktop/systemd1/unit/{}",
            a.replace('-', "_2d").replace('.', "_2e")
        );
        let json = run(&[
            "busctl",
            "--json=short",
            "get-property",
            "org.freedesktop.systemd1",
            &path,
            "org.freedesktop.systemd1.Service",
            "Environment",
        ]);
        let env: serde_json::Value = serde_json::from_str(&json).expect("busctl JSON");
        assert_eq!(
            env["data"],
            serde_json::json!([format!("TRICKY={TRICKY}"), "X=expanded"]),
            "Environment after daemon-reload"
        );
        let st = status(&systemd, a).await;
        assert_eq!(
            st.active_state, "active",
            "still running after daemon-reload"
        );
        assert!(st.memory_current.is_some(), "usage still known: {st:?}");
        assert!(show(a).contains("LoadState=loaded"), "{}", show(a));

        for unit in [a, b] {
            systemd.stop_unit(unit).await.expect("stop_unit");
        }
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_missing_program_fails_the_start() {
    block_on(async {
        let systemd = Systemd::new();
        let unit = "corral-test-missing.service";
        let spec = || {
            dyno(
                unit,
                vec!["/nonexistent/corral-test".to_owned()],
                &scratch(unit),
            )
        };
        let err = systemd.start_service(spec()).await.expect_err("must fail");
        eprintln!("start_service error: {err}");
        assert!(
            matches!(&err, SystemdError::JobFailed { kind: "start", result, .. } if result == "failed"),
            "{err:?}"
        );
        let st = status(&systemd, unit).await;
        assert_eq!(st.active_state, "failed");
        assert_eq!(st.result, "exit-code");
        assert_eq!(
            (st.exec_main_code, st.exec_main_status),
            (1, 203),
            "203 = EXIT_EXEC"
        );

        let err = systemd
            .start_service(spec())
            .await
            .expect_err("still loaded");
        eprintln!("second start_service error: {err}");
        assert!(matches!(err, SystemdError::UnitExists { .. }), "{err:?}");

        systemd.reset_failed(unit).await.expect("reset_failed");
        // Nothing of that name is left now: these are all fine.
        systemd
            .reset_failed(unit)
            .await
            .expect("reset_failed again");
        systemd
            .stop_unit(unit)
            .await
            .expect("stop_unit of a gone unit");
        let err = systemd
            .kill_unit(unit, 15)
            .await
            .expect_err("nothing to kill");
        assert!(matches!(err, SystemdError::NoSuchUnit { .. }), "{err:?}");
        assert_eq!(
            systemd
                .unit_status("corral-test-never.service")
                .await
                .expect("status"),
            None
        );

        let err = systemd
            .start_service(ServiceSpec::new(
                "corral-test-bad.service",
                vec!["sh".to_owned()],
            ))
            .await
            .expect_err("relative argv[0]");
        eprintln!("invalid spec error: {err}");
        assert!(matches!(err, SystemdError::InvalidSpec { .. }), "{err:?}");
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_exits_are_reported_as_events() {
    block_on(async {
        let systemd = Systemd::new();
        let prefix = "corral-test-exit";
        let mut events = Box::pin(systemd.events(prefix).await.expect("events"));

        // Exit 3 after the test opens the gate: the unit fails and stays.
        let unit = "corral-test-exit-3.service";
        let dir = scratch(unit);
        let gate = fifo(&dir, "gate");
        let spec = dyno(unit, sh("read x < /app/gate; exit 3", &[]), &dir);
        systemd.start_service(spec).await.expect("start_service");
        next_event(&mut events, "exit-3 running", changed_to(unit, &["active"])).await;
        write_fifo(&gate, "go\n");
        next_event(&mut events, "exit-3 failed", changed_to(unit, &["failed"])).await;
        let st = status(&systemd, unit).await;
        assert_eq!(st.result, "exit-code");
        assert_eq!((st.exec_main_code, st.exec_main_status), (1, 3));
        assert_eq!(st.main_pid, 0);
        systemd.reset_failed(unit).await.expect("reset_failed");
        next_event(&mut events, "exit-3 removed", removed(unit)).await;

        // Exit 0: inactive, then collected at once.
        let unit = "corral-test-exit-0.service";
        let dir = scratch(unit);
        let gate = fifo(&dir, "gate");
        let spec = dyno(unit, sh("read x < /app/gate; exit 0", &[]), &dir);
        systemd.start_service(spec).await.expect("start_service");
        write_fifo(&gate, "go\n");
        let end = next_event(&mut events, "exit-0 ends", ended(unit)).await;
        assert!(
            matches!(end, UnitEvent::Changed { ref active_state, .. } if active_state == "inactive"),
            "{end:?}"
        );
        next_event(&mut events, "exit-0 removed", removed(unit)).await;
        assert_eq!(systemd.unit_status(unit).await.expect("status"), None);
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_kill_stop_and_runtime_max() {
    block_on(async {
        let systemd = Systemd::new();
        let mut events = Box::pin(systemd.events("corral-test-").await.expect("events"));

        // kill_unit delivers the signal: sleep dies of SIGUSR1.
        let unit = "corral-test-kill.service";
        let spec = dyno(unit, sh("exec sleep 1000", &[]), &scratch(unit));
        systemd.start_service(spec).await.expect("start_service");
        systemd
            .kill_unit(unit, 10)
            .await
            .expect("kill_unit SIGUSR1");
        next_event(
            &mut events,
            "killed unit failed",
            changed_to(unit, &["failed"]),
        )
        .await;
        let st = status(&systemd, unit).await;
        assert_eq!(st.result, "signal");
        assert_eq!((st.exec_main_code, st.exec_main_status), (2, 10));
        systemd.reset_failed(unit).await.expect("reset_failed");

        // stop_unit returns only once the unit is down: here after a TERM
        // handler that takes a second and then leaves a marker. The loop
        // keeps the shell itself alive to run the handler (a plain `wait`
        // could return first when its child dies of the same SIGTERM).
        let unit = "corral-test-stop.service";
        let dir = scratch(unit);
        let ready = fifo(&dir, "ready");
        let script = "trap 'sleep 1; echo done > /app/stopped; exit 0' TERM; echo ready > /app/ready; while :; do sleep 0.1; done";
        systemd
            .start_service(dyno(unit, sh(script, &[]), &dir))
            .await
            .expect("start_service");
        assert_eq!(read_fifo(&ready), "ready\n");
        systemd.stop_unit(unit).await.expect("stop_unit");
        assert_eq!(
            std::fs::read_to_string(dir.join("stopped")).ok().as_deref(),
            Some("done\n"),
            "stop_unit returned before the TERM handler finished"
        );
        match systemd.unit_status(unit).await.expect("status") {
            None => {}
            Some(st) => assert_eq!(st.active_state, "inactive", "{st:?}"),
        }

        // RuntimeMaxUSec: systemd stops a one-off that runs too long.
        let unit = "corral-test-runtime.service";
        let mut spec = dyno(unit, sh("exec sleep 1000", &[]), &scratch(unit));
        spec.runtime_max = Some(Duration::from_millis(300));
        systemd.start_service(spec).await.expect("start_service");
        next_event(&mut events, "runtime max", changed_to(unit, &["failed"])).await;
        let st = status(&systemd, unit).await;
        assert_eq!(st.result, "timeout");
        systemd.reset_failed(unit).await.expect("reset_failed");
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_memory_max_kills() {
    block_on(async {
        let systemd = Systemd::new();
        let mut events = Box::pin(systemd.events("corral-test-oom").await.expect("events"));

        let unit = "corral-test-oom.service";
        let argv = vec![
            "/usr/bin/python3".to_owned(),
            "-c".to_owned(),
            "b = bytearray(200 * 1024 * 1024)".to_owned(),
        ];
        let mut spec = dyno(unit, argv.clone(), &scratch(unit));
        spec.limits.memory_max = Some(50 << 20);
        spec.limits.memory_swap_max = Some(0);
        systemd.start_service(spec).await.expect("start_service");
        next_event(&mut events, "oom unit ends", ended(unit)).await;
        let st = status(&systemd, unit).await;
        eprintln!(
            "OOM kill observed as: result={} exec_main_code={} exec_main_status={}",
            st.result, st.exec_main_code, st.exec_main_status
        );
        assert!(st.oom_killed(), "{st:?}");
        systemd.reset_failed(unit).await.expect("reset_failed");

        // The same allocation fits a larger limit.
        let unit = "corral-test-oom-fits.service";
        let mut spec = dyno(unit, argv, &scratch(unit));
        spec.limits.memory_max = Some(400 << 20);
        systemd.start_service(spec).await.expect("start_service");
        next_event(&mut events, "fitting unit ends", ended(unit)).await;
        if let Some(st) = systemd.unit_status(unit).await.expect("status") {
            assert_eq!(st.result, "success", "{st:?}");
        }
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_slice_and_passed_fds() {
    block_on(async {
        let systemd = Systemd::new();
        let unit = "corral-test-fds.service";
        let (out_r, out_w) = std::io::pipe().expect("pipe");
        let (err_r, err_w) = std::io::pipe().expect("pipe");
        let stdin = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let mut spec = dyno(
            unit,
            sh("echo \"out $(id -u)\"; echo err >&2; exec sleep 1000", &[]),
            &scratch(unit),
        );
        spec.stdio = Stdio::Fds {
            stdin,
            stdout: out_w.into(),
            stderr: err_w.into(),
        };
        systemd.start_service(spec).await.expect("start_service");
        let line = |r: std::io::PipeReader| {
            within("a line from the unit", move || {
                let mut line = String::new();
                BufReader::new(r).read_line(&mut line).expect("read");
                line
            })
        };
        let out = line(out_r);
        assert!(out.starts_with("out 6"), "{out:?}");
        assert_eq!(line(err_r), "err\n");

        // The slice and its parent were created implicitly.
        let slices = systemd
            .list_units(&["corral.slice", "corral-test.slice"])
            .await
            .expect("list_units");
        eprintln!("slices: {slices:?}");
        for name in ["corral.slice", "corral-test.slice"] {
            let slice = slices.iter().find(|u| u.name == name).expect(name);
            assert_eq!(
                (slice.load_state.as_str(), slice.active_state.as_str()),
                ("loaded", "active")
            );
        }
        let cgroup = run(&["systemctl", "show", "-p", "ControlGroup", "--value", unit]);
        assert_eq!(
            cgroup.trim(),
            format!("/corral.slice/corral-test.slice/{unit}")
        );
        systemd.stop_unit(unit).await.expect("stop_unit");
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_survives_daemon_reexec() {
    block_on(async {
        let systemd = Systemd::new();
        systemd.version().await.expect("connected before");
        let mut events = Box::pin(systemd.events("corral-test-").await.expect("events"));

        // systemd leaves the bus and rejoins under a new unique name: the
        // event stream ends, so its consumer knows to reconcile.
        run(&["systemctl", "daemon-reexec"]);
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(event) = events.next().await {
                eprintln!("event before the end: {event:?}");
            }
        })
        .await;
        assert!(
            drained.is_ok(),
            "the event stream did not end after a re-exec"
        );

        // The handle's connection and subscription outlive the re-exec: a
        // start and a stop still see their jobs finish.
        let mut events = Box::pin(systemd.events("corral-test-").await.expect("events again"));
        let unit = "corral-test-reexec.service";
        let spec = dyno(unit, sh("exec sleep 1000", &[]), &scratch(unit));
        systemd
            .start_service(spec)
            .await
            .expect("start after re-exec");
        next_event(
            &mut events,
            "running after re-exec",
            changed_to(unit, &["active"]),
        )
        .await;
        systemd.stop_unit(unit).await.expect("stop after re-exec");
        next_event(&mut events, "removed after re-exec", removed(unit)).await;
    });
}

#[test]
#[ignore = "runs inside the throwaway host; started by systemd_dbus_layer_in_a_real_systemd"]
fn inner_start_security_probe() {
    block_on(async {
        let systemd = Systemd::new();
        let spec = dyno(
            SECURITY_PROBE,
            sh("exec sleep 1000", &[]),
            &scratch(SECURITY_PROBE),
        );
        systemd.start_service(spec).await.expect("start_service");
        let mut f = std::fs::File::open(format!("/run/systemd/transient/{SECURITY_PROBE}"))
            .expect("transient unit file");
        let mut text = String::new();
        f.read_to_string(&mut text).expect("read");
        eprintln!("{text}");
    });
}
