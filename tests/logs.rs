//! The log stream on a real systemd host: dyno, router and platform lines
//! from journald, `corral logs` history, filters and tail, a journald
//! restart under a tail, and journald's rate limit made visible.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, lines_of, ok, router_get, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

fn deployed(prefix: &str, extra_config: &str, procfile: &str) -> (Sandbox, tempfile::TempDir) {
    let name = format!("{prefix}-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    options.extra_config = extra_config.to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(app_dir.join("Procfile"), procfile).expect("Procfile");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "talky"]));
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "talky",
    ]));
    ok(&cli(&["ps:scale", "worker=1", "-a", "talky"]));
    (sandbox, home)
}

/// `corral logs ARGS` running, its stdout as lines.
fn spawn_logs(
    sandbox: &Sandbox,
    home: &std::path::Path,
    args: &[&str],
) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("logs")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CORRAL_API_URL", &sandbox.api_url)
        .env("CORRAL_API_TOKEN", &sandbox.token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral logs");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    (child, lines)
}

/// The next line from `lines` that `pick` accepts, within the timeout.
fn next_matching<T>(
    lines: &Receiver<String>,
    what: &str,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(v) = pick(&line) {
                    return v;
                }
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// `2026-11-22T10:00:00.123456+00:00 rest`: the timestamp and the rest.
fn split_line(line: &str) -> (&str, &str) {
    let (time, rest) = line.split_once(' ').unwrap_or((line, ""));
    let b = time.as_bytes();
    assert!(
        time.len() == 32
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && time.ends_with("+00:00")
            && time[20..26].bytes().all(|c| c.is_ascii_digit()),
        "not a Heroku timestamp: {line:?}"
    );
    (time, rest)
}

fn tick_number(line: &str) -> Option<u64> {
    let (_, rest) = split_line(line);
    rest.strip_prefix("app[worker.1]: tick ")?.parse().ok()
}

#[test]
fn logs_tail_history_and_filters_survive_a_journald_restart() {
    let (sandbox, home) = deployed(
        "logs",
        "[dynos]\nport-range-start = 32500\nport-range-end = 32599\n",
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n\
         worker: seq -f 'burst %g' 1 2000; n=0; while :; do n=$((n+1)); echo tick $n; sleep 0.2; done\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);

    // A dyno's line reaches a tail with its source and dyno.
    let (mut tail, lines) =
        spawn_logs(&sandbox, home.path(), &["--tail", "-a", "talky", "-n", "1"]);
    let first = next_matching(&lines, "a worker tick in the tail", tick_number);

    // A request through the router shows up as a router line.
    wait_for("talky's web dyno serving", TIMEOUT, || {
        router_get(sandbox.router_addr, "talky.localhost", "/")
            .ok()
            .filter(|(status, _)| *status == 200)
    });
    router_get(sandbox.router_addr, "talky.localhost", "/logged").expect("request");
    let router_line = next_matching(&lines, "the router line in the tail", |l| {
        (l.contains("corral[router]: ") && l.contains("path=\"/logged\"")).then(|| l.to_owned())
    });
    let (_, rest) = split_line(&router_line);
    assert!(
        rest.starts_with(
            "corral[router]: at=info method=GET path=\"/logged\" host=talky.localhost"
        ),
        "{router_line}"
    );
    assert!(
        rest.contains(" dyno=web.1 ") && rest.contains(" status=404 "),
        "{router_line}"
    );

    // journald restarts under the tail: new lines keep coming.
    let before = next_matching(&lines, "a tick before the restart", |l| {
        tick_number(l).filter(|n| *n > first)
    });
    sandbox
        .run(&["systemctl", "restart", "systemd-journald"])
        .expect("restart journald");
    let after = next_matching(&lines, "ticks after journald restarted", |l| {
        tick_number(l).filter(|n| *n > before + 10)
    });
    // A rotation under the tail: the follower keeps its place, so every
    // tick after it arrives once and in order, none lost or repeated.
    sandbox
        .run(&["journalctl", "--rotate"])
        .expect("rotate the journal");
    let mut expected = after + 1;
    while expected <= after + 15 {
        let n = next_matching(&lines, "ticks after the rotation", tick_number);
        assert_eq!(n, expected, "a tick lost or repeated across the rotation");
        expected += 1;
    }
    eprintln!(
        "ticks: first {first}, before restart {before}, after {after}, rotated through {n}",
        n = expected - 1
    );
    let _ = tail.kill();
    let _ = tail.wait();

    // History: the last 1500 lines across sources, in time order.
    let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "1500"]));
    let history: Vec<&str> = out.lines().collect();
    assert_eq!(history.len(), 1500, "{}", &out[..out.len().min(2000)]);
    let times: Vec<&str> = history.iter().map(|l| split_line(l).0).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "lines out of time order"
    );
    assert!(history.iter().any(|l| l.contains(" app[worker.1]: ")));
    assert!(history.iter().any(|l| l.contains(" corral[router]: ")));

    // Filters by dyno (a process type covers its dynos) and by source.
    let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "200", "-d", "worker"]));
    assert!(!out.is_empty());
    assert!(out.lines().all(|l| l.contains("[worker.1]: ")), "{out}");
    let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "50", "-d", "router"]));
    assert!(!out.is_empty());
    assert!(
        out.lines().all(|l| l.contains(" corral[router]: ")),
        "{out}"
    );
    let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "200", "-s", "app"]));
    assert!(!out.is_empty());
    assert!(
        out.lines().all(|l| split_line(l).1.starts_with("app[")),
        "{out}"
    );
    let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "200", "-s", "corral"]));
    assert!(
        out.lines().all(|l| split_line(l).1.starts_with("corral[")),
        "{out}"
    );
    assert!(
        out.contains("corral[web.1]: State changed from starting to up"),
        "{out}"
    );

    // Bad requests get a clear error.
    let out = cli(&["logs", "-a", "talky", "-n", "1501"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 1500"));

    sandbox.stop().expect("teardown");
}

#[test]
fn lines_journald_drops_are_reported_in_the_stream() {
    // A tight per-dyno limit (journald scales the burst up with free space,
    // still far below what the worker prints). journald notes a drop when
    // the dyno next logs after the interval, hence the slow lines after.
    let (sandbox, home) = deployed(
        "logdrop",
        "[dynos]\nport-range-start = 32600\nport-range-end = 32699\nlog-rate-limit-interval-secs = 2\nlog-rate-limit-burst = 100\n",
        "worker: seq -f 'flood %g' 1 50000; while :; do echo calm; sleep 0.5; done\n",
    );
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    let line = wait_for("journald's drop reported as L10", TIMEOUT, || {
        let (out, _) = ok(&cli(&["logs", "-a", "talky", "-n", "100", "-s", "corral"]));
        out.lines()
            .find(|l| l.contains("Error L10 (output buffer overflow)"))
            .map(str::to_owned)
    });
    eprintln!("{line}");
    assert!(
        line.contains("corral[worker.1]: ") && line.contains("lines of worker.1"),
        "{line}"
    );
    sandbox.stop().expect("teardown");
}
