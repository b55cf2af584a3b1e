//! Log drains: the API's SSRF rule in process, then a syslog TCP receiver
//! and an HTTPS receiver on a real systemd host getting every line of a
//! dyno, in order, across receiver outages and a corrald restart.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral::logs::parse_octet_counted;
use corral::sandbox::{Sandbox, SandboxOptions};
use support::{corral_cli, free_port, ok, wait_for, TestDaemon};

const TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn drain_urls_are_checked_and_managed_through_the_api() {
    let daemon = TestDaemon::start();
    assert_eq!(
        daemon
            .request("POST", "/apps", Some(r#"{"name":"drained"}"#))
            .status,
        201
    );
    for url in [
        "syslog://127.0.0.1:514",
        "syslog://localhost:514",
        "https://169.254.169.254/latest",
        "syslog://[::1]:514",
        "http://93.184.216.34/logs",
        "syslog://user:pw@93.184.216.34:514",
    ] {
        let body = serde_json::json!({ "url": url }).to_string();
        let r = daemon.request("POST", "/apps/drained/log-drains", Some(&body));
        assert_eq!(r.status, 422, "{url} accepted: {}", r.body);
    }
    let r = daemon.request(
        "POST",
        "/apps/drained/log-drains",
        Some(r#"{"url":"syslog://127.0.0.1:514"}"#),
    );
    assert!(r.body.contains("allow-local-drains"), "{}", r.body);

    let out = daemon.corral(&[
        "drains:add",
        "syslog+tls://93.184.216.34:6514",
        "-a",
        "drained",
    ]);
    let (stdout, _) = ok(&out);
    assert!(stdout.contains("Successfully added drain"), "{stdout}");
    let list = daemon
        .request("GET", "/apps/drained/log-drains", None)
        .json();
    let drain = &list[0];
    assert!(drain["token"].as_str().is_some_and(|t| t.starts_with("d.")));
    assert!(drain["addon"].is_null() && drain["id"].is_string());
    let (stdout, _) = ok(&daemon.corral(&["drains", "-a", "drained"]));
    assert!(
        stdout.contains("syslog+tls://93.184.216.34:6514 (d."),
        "{stdout}"
    );
    ok(&daemon.corral(&[
        "drains:remove",
        "syslog+tls://93.184.216.34:6514",
        "-a",
        "drained",
    ]));
    assert_eq!(
        daemon
            .request("GET", "/apps/drained/log-drains", None)
            .json(),
        serde_json::json!([])
    );
    let r = daemon.request(
        "DELETE",
        "/apps/drained/log-drains/syslog%3A%2F%2Fnope",
        None,
    );
    assert_eq!(r.status, 404);
}

/// The worker's `tick N` numbers, in arrival order.
type Ticks = Arc<Mutex<Vec<u64>>>;

fn record(ticks: &Ticks, messages: &[String]) {
    let mut t = ticks.lock().expect("lock");
    for m in messages {
        // <190>1 TIME d.TOKEN app worker.1 - - tick N
        let fields: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(fields.len(), 8, "not RFC 5424: {m:?}");
        assert!(
            fields[0].starts_with('<') && fields[0].ends_with(">1"),
            "{m:?}"
        );
        assert!(fields[2].starts_with("d."), "{m:?}");
        if fields[3] == "app" && fields[4] == "worker.1" {
            if let Some(n) = fields[7].strip_prefix("tick ").and_then(|n| n.parse().ok()) {
                t.push(n);
            }
        }
    }
}

/// A receiver that can be stopped (its listener and connections closed)
/// and started again on the same port.
struct Receiver {
    addr: SocketAddr,
    ticks: Ticks,
    stopped: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Receiver {
    fn start(port: u16, ticks: Ticks, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let stopped = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let thread = {
            let (stopped, conns, ticks, tls) =
                (stopped.clone(), conns.clone(), ticks.clone(), tls.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Ok(clone) = stream.try_clone() {
                        conns.lock().expect("lock").push(clone);
                    }
                    let (ticks, tls) = (ticks.clone(), tls.clone());
                    std::thread::spawn(move || match tls {
                        None => serve_syslog(stream, &ticks),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve_https(rustls::StreamOwned::new(conn, stream), &ticks);
                        }
                    });
                }
            })
        };
        Self {
            addr,
            ticks,
            stopped,
            conns,
            thread: Some(thread),
            tls,
        }
    }

    /// Closes the listener and every connection, like a receiver going down.
    fn stop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            t.join().expect("accept thread");
        }
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restart(&mut self) {
        self.stop();
        *self = Self::start(self.addr.port(), self.ticks.clone(), self.tls.clone());
    }

    fn max(&self) -> u64 {
        self.ticks
            .lock()
            .expect("lock")
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

fn serve_syslog(mut stream: TcpStream, ticks: &Ticks) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Take every complete frame; keep a partial one for later.
        let mut taken = 0;
        let mut messages = Vec::new();
        loop {
            let rest = &buf[taken..];
            let Some(space) = rest.iter().position(|b| *b == b' ') else {
                break;
            };
            let len: usize = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("bad octet count in {:?}", String::from_utf8_lossy(rest))
                });
            if rest.len() < space + 1 + len {
                break;
            }
            messages.push(String::from_utf8_lossy(&rest[space + 1..space + 1 + len]).into_owned());
            taken += space + 1 + len;
        }
        buf.drain(..taken);
        record(ticks, &messages);
    }
}

fn serve_https(stream: impl Read + Write, ticks: &Ticks) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let header = |name: &str| {
            head.iter()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        assert!(head[0].starts_with("POST /logs "), "{head:?}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/logplex-1")
        );
        assert!(header("logplex-drain-token").is_some_and(|t| t.starts_with("d.")));
        assert!(header("logplex-frame-id").is_some_and(|t| !t.is_empty()));
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("length");
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let messages = parse_octet_counted(&body).expect("logplex-1 body");
        let count: usize = header("logplex-msg-count")
            .and_then(|v| v.parse().ok())
            .expect("count");
        assert_eq!(count, messages.len());
        record(ticks, &messages);
        let w = reader.get_mut();
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .and_then(|()| w.flush())
            .is_err()
        {
            return;
        }
    }
}

/// Every tick from the first received to the last, none skipped and
/// none ahead of its turn (a resend replays older ones: duplicates).
/// Returns how many duplicates.
fn assert_complete_in_order(what: &str, ticks: &[u64]) -> usize {
    let mut max = 0u64;
    let mut dups = 0;
    for (i, &n) in ticks.iter().enumerate() {
        if i == 0 || n == max + 1 {
            max = n;
        } else if n <= max {
            dups += 1;
        } else {
            panic!(
                "{what}: tick {n} arrived after {max}: lines {}..{} lost or reordered",
                max + 1,
                n - 1
            );
        }
    }
    dups
}

fn both_past(syslog: &Receiver, https: &Receiver, n: u64) {
    wait_for(&format!("both receivers past tick {n}"), TIMEOUT, || {
        (syslog.max() > n && https.max() > n).then_some(())
    });
}

fn tls_server() -> (Arc<rustls::ServerConfig>, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Drain Test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .expect("server config");
    (Arc::new(config), ca_cert.pem())
}

#[test]
fn syslog_and_https_drains_get_every_line_across_outages_and_a_restart() {
    let (tls, ca_pem) = tls_server();
    // corrald reads the CA file itself. It is bound into the host at
    // /opt/drain-ca: corrald.service has PrivateTmp=, so a path under the
    // machine's /tmp (where a clone may live) would be invisible to it.
    let ca_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("ca dir");
    let ca_file = ca_dir.path().join("drain-ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write CA");
    let syslog_ticks = Ticks::default();
    let https_ticks = Ticks::default();
    let mut syslog = Receiver::start(0, syslog_ticks.clone(), None);
    let mut https = Receiver::start(0, https_ticks.clone(), Some(tls));

    let name = format!("drains-{}", std::process::id());
    let mut options = SandboxOptions::new(&name, free_port(), free_port());
    options.bin_dir = support::bin_dir();
    options.extra_config = "[dynos]\nport-range-start = 31600\nport-range-end = 31699\n\n[logs]\nallow-local-drains = true\ndrain-max-backoff-secs = 2\ndrain-ca-file = \"/opt/drain-ca/drain-ca.pem\"\n"
        .to_owned();
    options
        .binds
        .push((ca_dir.path().to_owned(), "/opt/drain-ca".into()));
    let sandbox = Sandbox::start(&options).expect("sandbox starts");
    let home = tempfile::tempdir().expect("home");
    let app_dir = home.path().join("app");
    std::fs::create_dir_all(&app_dir).expect("app dir");
    std::fs::write(
        app_dir.join("Procfile"),
        "worker: n=0; while :; do n=$((n+1)); echo tick $n; sleep 0.02; done\n",
    )
    .expect("Procfile");
    let cli = |args: &[&str]| corral_cli(&sandbox.api_url, &sandbox.token, home.path(), args);
    ok(&cli(&["apps:create", "drained"]));
    ok(&cli(&[
        "deploy:dir",
        app_dir.to_str().expect("utf-8"),
        "-a",
        "drained",
    ]));
    ok(&cli(&[
        "drains:add",
        &format!("syslog://{}", syslog.addr),
        "-a",
        "drained",
    ]));
    ok(&cli(&[
        "drains:add",
        &format!("https://{}/logs", https.addr),
        "-a",
        "drained",
    ]));
    ok(&cli(&["ps:scale", "worker=1", "-a", "drained"]));

    both_past(&syslog, &https, 50);

    // Both receivers go down while the dyno keeps printing.
    let down_at = syslog.max().max(https.max());
    syslog.stop();
    https.stop();
    wait_for("the dyno printing on during the outage", TIMEOUT, || {
        let (out, _) = ok(&cli(&[
            "logs", "-a", "drained", "-n", "1", "-d", "worker.1",
        ]));
        out.rsplit_once("tick ")
            .and_then(|(_, n)| n.trim().parse::<u64>().ok())
            .filter(|n| *n > down_at + 200)
    });
    syslog.restart();
    https.restart();
    let after_outage = down_at + 300;
    both_past(&syslog, &https, after_outage);

    // corrald restarts mid-stream; drains resume from their cursors.
    sandbox
        .run(&["systemctl", "restart", "corrald"])
        .expect("restart corrald");
    both_past(&syslog, &https, after_outage + 300);

    for (what, ticks) in [("syslog", &syslog_ticks), ("https", &https_ticks)] {
        let ticks = ticks.lock().expect("lock").clone();
        let dups = assert_complete_in_order(what, &ticks);
        eprintln!("{what}: {} lines, {dups} duplicates", ticks.len());
        assert!(
            dups * 5 < ticks.len(),
            "{what}: {dups} duplicates of {} lines is not few",
            ticks.len()
        );
    }
    syslog.stop();
    https.stop();
    sandbox.stop().expect("teardown");
}
