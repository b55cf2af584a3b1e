//! Runtime metrics and router figures on a real systemd: memory and load
//! lines for a dyno with a known allocation, R14 past the soft limit, the
//! per-app switch, `ps` figures, and `corral metrics` counting requests by
//! status class with the router inside corrald and split from it.
//! Needs root (it boots throwaway systemd hosts).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, router_get, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);
const MIB: u64 = 1024 * 1024;

/// A web server holding about 100 MB, answering `/status/N` with status N.
const SERVER: &str = r#"
import http.server, os
held = bytearray(b"\x01") * (100 * 1024 * 1024)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A worker holding 490 MB of its 512 MB: past the soft limit (480 MB),
/// under the hard one.
const HOG: &str = "import time\nheld = bytearray(b\"\\x01\") * (490 * 1024 * 1024)\nwhile True:\n    time.sleep(3600)\n";

/// Every platform line in the host's journal, as `APP DYNO: MESSAGE`
/// (corrald writes them with CORRAL_APP, CORRAL_DYNO, CORRAL_SOURCE).
fn platform_lines(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "--output-fields=CORRAL_APP,CORRAL_DYNO,MESSAGE",
            "CORRAL_SOURCE=platform",
        ])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            format!(
                "{} {}: {}",
                field("CORRAL_APP"),
                field("CORRAL_DYNO"),
                field("MESSAGE")
            )
        })
        .collect()
}

/// The memory lines of `app`'s `dyno`.
fn memory_lines(lines: &[String], app: &str, dyno: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            l.starts_with(&format!("{app} {dyno}: source={dyno} dyno=corral."))
                && l.contains("sample#memory_total=")
        })
        .cloned()
        .collect()
}

/// `sample#NAME=12.34MB` -> 12.34.
fn figure(line: &str, name: &str) -> Option<f64> {
    let start = line.find(&format!("sample#{name}="))? + name.len() + 8;
    let rest = &line[start..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    rest[..end].parse().ok()
}

fn write_app(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("app dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("app file");
    }
}

#[test]
fn runtime_metrics_report_a_dynos_memory_and_load() {
    let name = format!("mx-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    options.extra_config =
        "[dynos]\nport-range-start = 32300\nport-range-end = 32399\nmetrics-interval-secs = 2\n"
            .to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);

    let web = home.path().join("web");
    write_app(
        &web,
        &[
            (
                "Procfile",
                "web: exec python3 server.py\nhog: exec python3 hog.py\nidle: exec sleep 100000\n",
            ),
            ("server.py", SERVER),
            ("hog.py", HOG),
        ],
    );
    ok(&cli(&["apps:create", "mem"]));
    ok(&cli(&["apps:create", "calm"]));
    for app in ["mem", "calm"] {
        ok(&cli(&[
            "deploy:dir",
            web.to_str().expect("utf-8"),
            "-a",
            app,
        ]));
    }
    ok(&cli(&["ps:scale", "-a", "mem", "hog=1"]));
    ok(&cli(&["ps:scale", "-a", "calm", "web=0", "idle=1"]));

    // Lines for web.1 with a plausible allocation and the dyno's quota.
    let line = wait_for("a memory line of mem's web.1", TIMEOUT, || {
        memory_lines(&platform_lines(&sandbox), "mem", "web.1")
            .into_iter()
            .rev()
            .find(|l| figure(l, "memory_total").is_some_and(|mb| mb > 100.0))
    });
    eprintln!("a sample: {line}");
    let total = figure(&line, "memory_total").expect("memory_total");
    assert!((100.0..250.0).contains(&total), "{line}");
    let rss = figure(&line, "memory_rss").expect("memory_rss");
    assert!((95.0..250.0).contains(&rss), "{line}");
    assert_eq!(figure(&line, "memory_quota"), Some(512.0), "{line}");
    assert!(line.contains("sample#memory_cache="), "{line}");
    assert!(line.contains("sample#memory_swap="), "{line}");
    let lines = platform_lines(&sandbox);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mem web.1: source=web.1 dyno=corral.")
                && l.contains("sample#load_avg_1m=")
                && l.contains("sample#load_avg_5m=")
                && l.contains("sample#load_avg_15m=")),
        "no load line:\n{}",
        lines.join("\n")
    );

    // The hog passed its soft limit: one R14, not one per sample.
    wait_for("R14 for the hog", TIMEOUT, || {
        let lines = platform_lines(&sandbox);
        let hog_samples = memory_lines(&lines, "mem", "hog.1").len();
        let r14: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("Error R14 (Memory quota exceeded)"))
            .collect();
        (hog_samples >= 4 && !r14.is_empty()).then(|| {
            assert_eq!(r14.len(), 1, "{r14:?}");
            assert!(r14[0].starts_with("mem hog.1: "), "{}", r14[0]);
            assert!(
                lines.iter().any(|l| l.contains("Process running mem=4")),
                "Heroku's line before R14"
            );
        })
    });

    // ps carries memory and CPU.
    let dynos = wait_for("ps figures", TIMEOUT, || {
        let (out, _) = ok(&cli(&["ps", "-a", "mem", "--json"]));
        let dynos: serde_json::Value = serde_json::from_str(&out).expect("json");
        let web = dynos
            .as_array()?
            .iter()
            .find(|d| d["name"] == "web.1")?
            .clone();
        web["load_avg_1m"].as_f64().map(|_| web)
    });
    let memory = dynos["memory_bytes"].as_u64().expect("memory_bytes");
    assert!((100 * MIB..250 * MIB).contains(&memory), "{dynos}");
    assert_eq!(dynos["memory_quota_bytes"].as_u64(), Some(512 * MIB));
    assert!(
        dynos["cpu_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{dynos}"
    );
    let (text, _) = ok(&cli(&["ps", "-a", "mem"]));
    assert!(
        text.contains("web.1: up ") && text.contains(" mem "),
        "{text}"
    );

    // The switch: after it, mem's lines stop while calm's go on.
    ok(&cli(&[
        "apps:settings",
        "-a",
        "mem",
        "runtime_metrics=false",
    ]));
    let calm = |lines: &[String]| memory_lines(lines, "calm", "idle.1").len();
    let mem = |lines: &[String]| memory_lines(lines, "mem", "web.1").len();
    let at_switch = platform_lines(&sandbox);
    let (calm0, mem0) = (calm(&at_switch), mem(&at_switch));
    // Two passes later, one pass may have read the settings before the switch.
    let settled = wait_for("two more samples of calm", TIMEOUT, || {
        let lines = platform_lines(&sandbox);
        (calm(&lines) >= calm0 + 2).then_some(lines)
    });
    let mem1 = mem(&settled);
    assert!(mem1 <= mem0 + 1, "{mem0} -> {mem1}");
    let later = wait_for("two more samples of calm", TIMEOUT, || {
        let lines = platform_lines(&sandbox);
        (calm(&lines) >= calm(&settled) + 2).then_some(lines)
    });
    assert_eq!(mem(&later), mem1, "no lines for mem once switched off");
    sandbox.stop().expect("teardown");
}

/// `corral metrics -a APP --json` -> requests by status class.
fn counts(cli: &dyn Fn(&[&str]) -> std::process::Output, app: &str) -> serde_json::Value {
    let (out, _) = ok(&cli(&["metrics", "-a", app, "--minutes", "10", "--json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Sends 5 requests answered 200, 3 answered 404 and 2 answered 500 to
/// `app`, and checks that `corral metrics` counts exactly those.
fn router_counts_requests(sandbox: &Sandbox, home: &Path, app: &str) {
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home, args);
    let dir = home.join(app);
    write_app(
        &dir,
        &[
            ("Procfile", "web: exec python3 server.py\n"),
            ("server.py", SERVER),
        ],
    );
    ok(&cli(&["apps:create", app]));
    ok(&cli(&[
        "deploy:dir",
        dir.to_str().expect("utf-8"),
        "-a",
        app,
    ]));
    let router: SocketAddr = sandbox.router_addr;
    let host = format!("{app}.localhost");
    wait_for("the app to serve", TIMEOUT, || {
        router_get(router, &host, "/")
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    let before = counts(&cli, app);
    for (path, n) in [("/", 5), ("/status/404", 3), ("/status/500", 2)] {
        for _ in 0..n {
            router_get(router, &host, path).expect("request");
        }
    }
    // The router counts a request when its response ends, which may be
    // just after the client read it.
    let after = wait_for("the requests to be counted", TIMEOUT, || {
        let now = counts(&cli, app);
        let delta = |class: &str| {
            now["requests"][class].as_u64().unwrap_or(0)
                - before["requests"][class].as_u64().unwrap_or(0)
        };
        (delta("2xx") + delta("4xx") + delta("5xx") >= 10).then_some(now)
    });
    for (class, n) in [("2xx", 5), ("3xx", 0), ("4xx", 3), ("5xx", 2)] {
        assert_eq!(
            after["requests"][class].as_u64().unwrap_or(0)
                - before["requests"][class].as_u64().unwrap_or(0),
            n,
            "{class}: {after}"
        );
    }
    for figure in ["service_ms", "queue_ms"] {
        for p in ["p50", "p95", "p99"] {
            assert!(after[figure][p].as_f64().is_some(), "{figure}.{p}: {after}");
        }
    }
    let (text, _) = ok(&cli(&["metrics", "-a", app]));
    eprintln!("{text}");
    assert!(text.contains("2xx") && text.contains("p95"), "{text}");
}

#[test]
fn router_figures_count_requests_embedded_and_split() {
    let home = tempfile::tempdir().expect("home");
    for (i, split) in [(0, false), (1, true)] {
        let name = format!("mr{i}-{}", std::process::id());
        let mut options = SandboxOptions::new(&name, free_port(), free_port());
        options.bin_dir = support::bin_dir();
        options.split_router = split;
        // One host at a time here; the other test has 32300-32399.
        options.extra_config =
            "[dynos]\nport-range-start = 32400\nport-range-end = 32499\n".to_owned();
        let sandbox = Sandbox::start(&options).expect("sandbox starts");
        let app = if split { "splitapp" } else { "embedapp" };
        router_counts_requests(&sandbox, home.path(), app);
        sandbox.stop().expect("teardown");
    }
}
