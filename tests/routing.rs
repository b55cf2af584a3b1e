//! The router inside corrald on a real systemd: apps by Host, both web
//! dynos used, Heroku's errors, and no failed request under a steady load
//! while the app is deployed, restarted, scaled down and cycled.
//! Needs root (it boots a throwaway systemd host).

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, router_get as get, wait_for, Load};

const TIMEOUT: Duration = Duration::from_secs(90);

/// A web server that says which app, dyno and release answered, slowly
/// for `/slow`, and finishes its requests on SIGTERM before exiting.
const SERVER: &str = r#"
import http.server, os, signal, threading, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(3)
        body = ("%s %s %s\n" % (os.environ["APP"], os.environ["DYNO"], os.environ.get("VERSION", "1"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"#;

/// [`get`] with an `X-Request-Id` of ours, which the router keeps and
/// logs, so a request's router line can be found: (status, body).
fn get_with_id(
    router: SocketAddr,
    host: &str,
    path: &str,
    id: &str,
) -> std::io::Result<(u16, String)> {
    support::router_get_with(router, host, path, &format!("X-Request-Id: {id}\r\n"))
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

#[test]
fn the_router_serves_apps_by_host_and_drops_nothing_while_dynos_change() {
    let name = format!("rt-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    // Short daily cycles, so cycling happens during the load too. Hosts
    // share the machine's network: a port range of this test's own.
    options.extra_config = "[dynos]\nport-range-start = 31400\nport-range-end = 31499\ncycle-interval-secs = 20\ncycle-jitter-secs = 5\n".to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    for app in ["alpha", "beta"] {
        let dir = home.path().join(app);
        std::fs::create_dir_all(&dir).expect("app dir");
        std::fs::write(dir.join("Procfile"), "web: exec python3 server.py\n").expect("Procfile");
        std::fs::write(dir.join("server.py"), SERVER).expect("server");
        ok(&cli(&["apps:create", app]));
        ok(&cli(&["config:set", "-a", app, &format!("APP={app}")]));
        ok(&cli(&[
            "deploy:dir",
            dir.to_str().expect("utf-8"),
            "-a",
            app,
        ]));
        ok(&cli(&["ps:scale", "-a", app, "web=2"]));
    }
    let router = sandbox.router_addr;

    // Both apps by Host, both web dynos of each; an unknown host is a 404
    // that names no app.
    for app in ["alpha", "beta"] {
        let host = format!("{app}.localhost");
        wait_for("both web dynos to answer", TIMEOUT, || {
            let mut dynos = std::collections::BTreeSet::new();
            for _ in 0..20 {
                let (status, body) = get(router, &host, "/").ok()?;
                if status != 200 || !body.starts_with(app) {
                    return None;
                }
                dynos.insert(body.split_whitespace().nth(1)?.to_owned());
            }
            (dynos.len() == 2).then_some(())
        });
    }
    // Custom domains, exact and wildcard.
    ok(&cli(&["domains:add", "www.alpha.test", "-a", "alpha"]));
    ok(&cli(&["domains:add", "*.beta.test", "-a", "beta"]));
    for (host, app) in [("www.alpha.test", "alpha"), ("shop.beta.test", "beta")] {
        wait_for("a custom domain to route", TIMEOUT, || {
            get(router, host, "/")
                .ok()
                .filter(|(s, b)| *s == 200 && b.starts_with(app))
        });
    }
    let (status, body) = get(router, "nothing.localhost", "/").expect("request");
    assert_eq!(status, 404);
    assert!(!body.contains("alpha") && !body.contains("beta"), "{body}");
    let log = journal(&sandbox);
    assert!(
        log.lines().any(
            |l| l.contains("at=info method=GET path=\"/\" host=alpha.localhost")
                && l.contains("status=200")
                && l.contains("dyno=web.")
        ),
        "no router line for alpha:\n{log}"
    );

    // Steady load on alpha while it is deployed, restarted, scaled 3 -> 1
    // and cycled: not one request may fail.
    let load = Load::start(router, "alpha.localhost", 4);
    let serves = |version: &'static str| {
        move || {
            (0..10)
                .all(|_| {
                    get(router, "alpha.localhost", "/")
                        .is_ok_and(|(s, b)| s == 200 && b.trim_end().ends_with(version))
                })
                .then_some(())
        }
    };
    ok(&cli(&["config:set", "-a", "alpha", "VERSION=2"]));
    wait_for("the deploy to roll", TIMEOUT, serves("2"));
    // A restart rolls every web dyno to a new generation.
    let running = || -> Vec<String> {
        sandbox
            .run(&[
                "systemctl",
                "list-units",
                "--plain",
                "--no-legend",
                "corral-alpha-web.*",
            ])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" running "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    // A daily cycle may be rolling a dyno right now (three units for a
    // moment): take the set once it has settled at the formation's two.
    let before = wait_for("two running web units", TIMEOUT, || {
        let now = running();
        (now.len() == 2).then_some(now)
    });
    ok(&cli(&["ps:restart", "-a", "alpha"]));
    wait_for("the restart to roll", TIMEOUT, || {
        let now = running();
        (now.len() == 2 && now.iter().all(|u| !before.contains(u))).then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "alpha", "web=3"]));
    wait_for("three web dynos", TIMEOUT, || {
        let mut dynos = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let (_, body) = get(router, "alpha.localhost", "/").ok()?;
            dynos.insert(body.split_whitespace().nth(1)?.to_owned());
        }
        (dynos.len() == 3).then_some(())
    });
    ok(&cli(&["ps:scale", "-a", "alpha", "web=1"]));
    wait_for("one web dyno", TIMEOUT, || {
        let units = sandbox
            .run(&[
                "systemctl",
                "list-units",
                "--plain",
                "--no-legend",
                "corral-alpha-web.*",
            ])
            .ok()?;
        (units.lines().filter(|l| l.contains(" running ")).count() == 1).then_some(())
    });
    wait_for("a daily cycle (shortened)", TIMEOUT, || {
        // A platform line of alpha's stream, in the journal by its fields.
        sandbox
            .run(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "CORRAL_APP=alpha",
                "CORRAL_SOURCE=platform",
            ])
            .ok()?
            .lines()
            .any(|l| l == "Cycling")
            .then_some(())
    });
    wait_for("alpha to serve after the cycle", TIMEOUT, serves("2"));
    let (requests, failures) = load.finish();
    eprintln!("{requests} requests under load, {} failed", failures.len());
    assert!(requests > 200, "the load ran: {requests} requests");
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    // Heroku's errors from real dynos: H12 with a 1 s request timeout,
    // H80 in maintenance mode, H14 with no web dynos.
    // The 503 must be the router giving up after 1 s, not the dyno's
    // answer 3 s in (or any other 503): its router line, found by the
    // request id sent, says H12, and it came well before the dyno's 3 s.
    ok(&cli(&["apps:settings", "-a", "beta", "request_timeout=1"]));
    let mut attempt = 0;
    let (request_id, took, body) = wait_for("a 503 for /slow", TIMEOUT, || {
        attempt += 1;
        let id = format!("routing-h12-check-{attempt:04}");
        let started = std::time::Instant::now();
        let (status, body) = get_with_id(router, "beta.localhost", "/slow", &id).ok()?;
        (status == 503).then(|| (id, started.elapsed(), body))
    });
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2900),
        "the 503 came after {took:?}, not at the 1 s request timeout"
    );
    assert!(body.contains("Application Error"), "{body}");
    let line = wait_for("the H12 request's router line", TIMEOUT, || {
        journal(&sandbox)
            .lines()
            .find(|l| l.contains(&format!("request_id={request_id}")))
            .map(str::to_owned)
    });
    assert!(
        line.contains("code=H12") && line.contains("status=503"),
        "{line}"
    );
    let api: SocketAddr = sandbox
        .api_url
        .trim_start_matches("http://")
        .parse()
        .expect("api");
    let auth = format!("Bearer {}", sandbox.token);
    let patched = support::http(
        api,
        "PATCH",
        "/apps/beta",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"maintenance": true}"#),
    );
    assert_eq!(patched.status, 200);
    wait_for("H80", TIMEOUT, || {
        get(router, "beta.localhost", "/")
            .ok()
            .filter(|(s, b)| *s == 503 && b.contains("Maintenance"))
    });
    ok(&cli(&["ps:scale", "-a", "alpha", "web=0"]));
    wait_for("H14", TIMEOUT, || {
        get(router, "alpha.localhost", "/")
            .ok()
            .filter(|(s, _)| *s == 503)
    });
    let log = journal(&sandbox);
    for code in ["code=H12 desc=\"Request timeout\"", "code=H80", "code=H14"] {
        assert!(log.contains(code), "{code} missing:\n{log}");
    }
    sandbox.stop().expect("teardown");
}

/// The split form: `corrald router` in its own units. Killing corrald does
/// not interrupt routing, restarting the router refuses no connection, and
/// a deploy still drains dynos through the feed socket.
#[test]
fn a_split_router_survives_corrald_and_its_own_restarts() {
    let name = format!("rs-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    options.split_router = true;
    options.extra_config = "[dynos]\nport-range-start = 31500\nport-range-end = 31599\n".to_owned();
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    let dir = home.path().join("gamma");
    std::fs::create_dir_all(&dir).expect("app dir");
    std::fs::write(dir.join("Procfile"), "web: exec python3 server.py\n").expect("Procfile");
    std::fs::write(dir.join("server.py"), SERVER).expect("server");
    ok(&cli(&["apps:create", "gamma"]));
    ok(&cli(&["config:set", "-a", "gamma", "APP=gamma"]));
    ok(&cli(&[
        "deploy:dir",
        dir.to_str().expect("utf-8"),
        "-a",
        "gamma",
    ]));
    ok(&cli(&["ps:scale", "-a", "gamma", "web=2"]));
    let router = sandbox.router_addr;
    wait_for("gamma through the split router", TIMEOUT, || {
        get(router, "gamma.localhost", "/")
            .ok()
            .filter(|(s, b)| *s == 200 && b.starts_with("gamma"))
    });
    let main_pid = |unit: &str| {
        sandbox
            .run(&["systemctl", "show", "-p", "MainPID", "--value", unit])
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let router_pid = main_pid("corral-router.service");
    assert_ne!(router_pid, "0");

    let load = Load::start(router, "gamma.localhost", 4);
    let served = || load.done.load(Ordering::Relaxed);
    for _ in 0..2 {
        let corrald = main_pid("corrald.service");
        sandbox
            .run(&["systemctl", "kill", "--signal=SIGKILL", "corrald.service"])
            .expect("kill corrald");
        let before = served();
        wait_for("requests while corrald is away", TIMEOUT, || {
            (served() > before + 20).then_some(())
        });
        wait_for("corrald back", TIMEOUT, || {
            let now = main_pid("corrald.service");
            (now != corrald && now != "0").then_some(())
        });
    }
    assert_eq!(
        main_pid("corral-router.service"),
        router_pid,
        "the router ran on"
    );
    for _ in 0..3 {
        let before = served();
        sandbox
            .run(&["systemctl", "restart", "corral-router.service"])
            .expect("restart the router");
        wait_for("requests after the router's restart", TIMEOUT, || {
            (served() > before + 20).then_some(())
        });
    }
    assert_ne!(main_pid("corral-router.service"), router_pid);
    // A deploy rolls the web dynos: the router drains them on corrald's word.
    ok(&cli(&["config:set", "-a", "gamma", "VERSION=2"]));
    wait_for("the deploy to roll", TIMEOUT, || {
        (0..10)
            .all(|_| {
                get(router, "gamma.localhost", "/")
                    .is_ok_and(|(s, b)| s == 200 && b.trim_end().ends_with('2'))
            })
            .then_some(())
    });
    let (requests, failures) = load.finish();
    eprintln!(
        "split router: {requests} requests under load, {} failed",
        failures.len()
    );
    let router_errors: Vec<String> = sandbox
        .run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-u",
            "corral-router.service",
        ])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("at=error") || l.contains("WARN"))
        .map(str::to_owned)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {:?}\nrouter errors and warnings: {router_errors:#?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    sandbox.stop().expect("teardown");
}
