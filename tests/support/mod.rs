//! Shared harness for the integration tests: an in-process daemon on
//! loopback, a raw HTTP helper, and runners for the `corral` binary.
//!
//! Throwaway hosts share the machine's network, so each test that deploys
//! web dynos gives them its own `dynos.port-range-*` (30000-32767), and
//! [`free_port`] picks daemons' ports from 20000-29999: Linux hands out
//! ports from 32768 up to outgoing connections, and a port there could be
//! taken between the pick and the bind.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::config::Config;
use corral::daemon::{self, Listeners};
use tokio_util::sync::CancellationToken;

/// corrald running in this process, on its own runtime thread, with a
/// temporary state directory, a TCP API on 127.0.0.1 and a token.
pub struct TestDaemon {
    pub addr: SocketAddr,
    pub token: String,
    pub config: Config,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestDaemon {
    pub fn start() -> Self {
        Self::start_with(|_, _| {})
    }

    /// [`TestDaemon::start`] with `configure` changing the configuration
    /// first (its state directory is already set; `dir` holds it).
    pub fn start_with(configure: impl FnOnce(&mut Config, &Path)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            state_dir: dir.path().join("state"),
            ..Config::default()
        };
        // No systemd here: this daemon is the control plane only.
        config.dynos.enabled = false;
        // git's pre-receive hook runs the real corrald binary.
        config.builds.hook_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_corrald")));
        // Tests run side by side: the router takes any free loopback port.
        config.router.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        configure(&mut config, dir.path());
        let store = daemon::open_store(&config).expect("store");
        let token = store
            .create_token_blocking("tester", Some("tester@example.com"))
            .expect("token")
            .secret;
        let shutdown = CancellationToken::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let config = config.clone();
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let mut listeners = Listeners::bind(&config).await.expect("bind unix");
                    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind tcp");
                    ready_tx
                        .send(tcp.local_addr().expect("addr"))
                        .expect("send addr");
                    listeners.tcp = Some(tcp);
                    daemon::serve(config, store, listeners, shutdown)
                        .await
                        .expect("serve");
                });
            })
        };
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("daemon did not start");
        Self {
            addr,
            token,
            config,
            dir,
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs the `corral` binary against this daemon.
    pub fn corral(&self, args: &[&str]) -> Output {
        corral_cli(&self.url(), &self.token, self.dir.path(), args)
    }

    /// A raw request with this daemon's token.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        http(
            self.addr,
            method,
            path,
            &[("Authorization", &format!("Bearer {}", self.token))],
            body,
        )
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the `corral` binary with an isolated HOME and working directory.
pub fn corral_cli(url: &str, token: &str, home: &Path, args: &[&str]) -> Output {
    let work = home.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CORRAL_API_URL", url)
        .env("CORRAL_API_TOKEN", token)
        .output()
        .expect("run corral")
}

/// Asserts success and returns (stdout, stderr).
pub fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "command failed with {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    (stdout, stderr)
}

/// A response read by [`http`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection, `Connection: close`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    try_http(addr, method, path, headers, body).expect("HTTP exchange")
}

/// [`http`], with transport failures as errors rather than panics.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = || std::io::Error::other(format!("not an HTTP response: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A loopback port that was free a moment ago, for daemons in other
/// processes. It comes from 20000-29999: below the kernel's ephemeral
/// ports, so no outgoing connection can take it before the daemon binds
/// it, and below the dyno ranges. Each call of one test process moves on,
/// so two hosts booting at once get different ports.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const FIRST: u64 = 20_000;
    const COUNT: u64 = 10_000;
    let start = u64::from(std::process::id());
    for _ in 0..COUNT {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("below 30000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-29999");
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_for`], printing `context()` (e.g. corrald's journal) on timeout.
pub fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    check: impl FnMut() -> Option<T>,
) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(what, timeout, check)
    })) {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}; context:\n{}", context()),
    }
}

/// The directory holding the built binaries.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_corrald"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// One request on a fresh connection: (status, body).
pub fn router_get(router: SocketAddr, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    router_get_with(router, host, path, "")
}

/// [`router_get`] with extra header lines (each ending in `\r\n`).
pub fn router_get_with(
    router: SocketAddr,
    host: &str,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(router)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Steady load on one app until stopped: every failure is remembered.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Requests answered so far.
    pub done: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(router: SocketAddr, host: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
                let host = host.to_owned();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match router_get(router, &host, "/") {
                            Ok((200, _)) => {}
                            other => failures
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(format!("{other:?}")),
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            done,
            failures,
            threads,
        }
    }

    pub fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.done.load(Ordering::Relaxed), failures)
    }
}

/// Runs git in `dir` with no prompts, no system config and `dir` as HOME.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git")
}

/// The lines `reader` produces, read on a thread as they arrive (a child's
/// stdout that may never end).
pub fn lines_of(reader: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
