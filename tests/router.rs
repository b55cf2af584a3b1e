//! The router in process against small TCP backends: routing by host,
//! balancing, every error code with its page and log line, upgrades,
//! refused framing, slowloris, HTTP/2, TLS with certificates by SNI and
//! redirects to HTTPS. (The same router against real dynos on systemd is
//! tested in `tests/dynos.rs`.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral::model::AppName;
use corral::router::{
    self, AppDynos, AppInfo, Context, Limits, RouteFeed, RouteSettings, TableHandle, UpDyno,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Router log lines, captured from tracing.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

fn capture() -> Lines {
    static LINES: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Lines::default();
            let writer = lines.clone();
            let _ = tracing_subscriber::fmt()
                .with_env_filter("corral::router=info")
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init();
            lines
        })
        .clone()
}

/// A backend that answers by path:
/// - `/` and anything else: 200 `<name> <path>`, echoing X-Forwarded-For,
///   X-Forwarded-Proto, X-Request-Id and Via as headers of the answer;
/// - `/sleep/<ms>`: the same after a pause;
/// - `/close`: closes the connection without answering;
/// - `/stall`: headers and part of the body, then nothing;
/// - `/cut`: headers and part of a longer body, then closes;
/// - `/ws`: 101 and then echoes bytes.
async fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_backend(stream, name));
        }
    });
    port
}

async fn serve_backend(stream: TcpStream, name: &'static str) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let path = head
            .first()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_owned();
        let header = |name: &str| {
            head.iter()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let stream = reader.get_mut();
        if let Some(ms) = path.strip_prefix("/sleep/") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        }
        match path.as_str() {
            "/close" => return,
            "/stall" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/cut" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart")
                    .await;
                return;
            }
            "/ws" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
                    .await;
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        let text = format!("{name} {path}");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-saw-for: {}\r\nx-saw-proto: {}\r\nx-saw-id: {}\r\nx-saw-via: {}\r\nx-saw-start: {}\r\n\r\n{text}",
            text.len(),
            header("x-forwarded-for"),
            header("x-forwarded-proto"),
            header("x-request-id"),
            header("via"),
            header("x-request-start"),
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Router {
    addr: SocketAddr,
    feed: Arc<RouteFeed>,
    shutdown: CancellationToken,
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn router(limits: Limits) -> Router {
    let feed = Arc::new(RouteFeed::new("apps.test", TableHandle::default()));
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let ctx = Arc::new(Context {
        table: feed.handle().clone(),
        connect_timeout: Duration::from_secs(2),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
        https_port: None,
        git: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(router::serve(
        listener,
        ctx,
        limits,
        shutdown.clone(),
        tracker,
    ));
    Router {
        addr,
        feed,
        shutdown,
    }
}

fn app(name: &str) -> AppName {
    AppName::parse(name).expect("app")
}

fn info(name: &str, domains: &[&str], settings: RouteSettings) -> AppInfo {
    AppInfo {
        app: app(name),
        maintenance: false,
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        settings,
        certificates: Vec::new(),
    }
}

fn up(ports: &[u16]) -> AppDynos {
    AppDynos {
        up: ports
            .iter()
            .enumerate()
            .map(|(i, port)| UpDyno {
                dyno: format!("web.{}", i + 1),
                unit: format!("u-{port}"),
                port: *port,
            })
            .collect(),
        starting: 0,
        crashed: 0,
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection: (status, headers, body).
async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn fast() -> RouteSettings {
    RouteSettings {
        request_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        max_concurrency: None,
        boot_wait: Duration::from_millis(500),
        ..RouteSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_right_app_with_forwarding_headers() {
    let lines = capture();
    let r = router(Limits::default()).await;
    let (a1, a2, b1) = (
        backend("a1").await,
        backend("a2").await,
        backend("b1").await,
    );
    r.feed.set_apps(vec![
        info("alpha", &["www.alpha.org"], RouteSettings::default()),
        info("beta", &[], RouteSettings::default()),
    ]);
    r.feed.set_dynos(BTreeMap::from([
        (app("alpha"), up(&[a1, a2])),
        (app("beta"), up(&[b1])),
    ]));

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, head, body) = get(r.addr, "alpha.apps.test", "/x?y=1").await;
        assert_eq!(status, 200);
        assert!(body.ends_with(" /x?y=1"), "{body}");
        seen.insert(body.split_whitespace().next().unwrap_or("").to_owned());
        assert!(head.contains("x-saw-for: 127.0.0.1"), "{head}");
        assert!(head.contains("x-saw-proto: http"), "{head}");
        assert!(head.contains("x-saw-via: 1.1 corral"), "{head}");
        assert!(head.contains("via: 1.1 corral"), "{head}");
        let start = head
            .lines()
            .find_map(|l| l.strip_prefix("x-saw-start: "))
            .and_then(|v| v.trim().parse::<u128>().ok())
            .expect("x-request-start in ms");
        assert!(start > 1_600_000_000_000, "{start}");
    }
    assert_eq!(
        seen,
        ["a1", "a2"].map(String::from).into(),
        "both alpha dynos served"
    );
    let (status, _, body) = get(r.addr, "WWW.Alpha.org:80", "/").await;
    assert_eq!(
        (status, body.starts_with('a')),
        (200, true),
        "custom domain"
    );
    let (status, _, body) = get(r.addr, "beta.apps.test", "/").await;
    assert_eq!((status, body.as_str()), (200, "b1 /"));
    let (status, _, body) = get(r.addr, "gamma.apps.test", "/").await;
    assert_eq!(status, 404);
    assert!(!body.contains("alpha") && !body.contains("beta"), "{body}");

    let log = lines.text();
    let line = log
        .lines()
        .find(|l| l.contains("host=beta.apps.test"))
        .expect("a router line for beta");
    for part in [
        "at=info",
        "method=GET",
        "path=\"/\"",
        "dyno=web.1",
        "status=200",
        "bytes=4",
        "protocol=http",
        "queue=",
        "connect=",
        "service=",
        "fwd=\"127.0.0.1\"",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_has_its_code_page_and_log_line() {
    let lines = capture();
    let r = router(Limits::default()).await;
    let live = backend("live").await;
    // A port nothing listens on: bind, read the port, close.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut maintenance = info("maint", &[], fast());
    maintenance.maintenance = true;
    r.feed.set_apps(vec![
        info("slow", &[], fast()),
        info("idle", &[], fast()),
        info("empty", &[], fast()),
        info("crashed", &[], fast()),
        info("booting", &[], fast()),
        info("refused", &[], fast()),
        maintenance,
    ]);
    r.feed.set_dynos(BTreeMap::from([
        (app("slow"), up(&[live])),
        (app("idle"), up(&[live])),
        (app("maint"), up(&[live])),
        (
            app("crashed"),
            AppDynos {
                up: vec![],
                starting: 0,
                crashed: 1,
            },
        ),
        (
            app("booting"),
            AppDynos {
                up: vec![],
                starting: 1,
                crashed: 0,
            },
        ),
        (app("refused"), up(&[dead])),
    ]));

    let cases: [(&str, &str, u16, &str); 9] = [
        ("slow.apps.test", "/sleep/2000", 503, "code=H12"),
        ("slow.apps.test", "/close", 503, "code=H13"),
        ("empty.apps.test", "/", 503, "code=H14"),
        ("crashed.apps.test", "/", 503, "code=H10"),
        ("booting.apps.test", "/", 503, "code=H20"),
        ("refused.apps.test", "/", 503, "code=H10"),
        ("maint.apps.test", "/", 503, "code=H80"),
        ("idle.apps.test", "/stall", 200, "code=H15"),
        ("idle.apps.test", "/cut", 200, "code=H18"),
    ];
    for (host, path, status, code) in cases {
        let (got, _, body) = get(r.addr, host, path).await;
        assert_eq!(got, status, "{host}{path}: {body}");
        if status == 503 {
            let wanted = if code == "code=H80" {
                "Maintenance"
            } else {
                "Application Error"
            };
            assert!(body.contains(wanted), "{host}{path}: {body}");
        }
        let log = lines.text();
        let line = log
            .lines()
            .rev()
            .find(|l| {
                l.contains(&format!("host={host}")) && l.contains(&format!("path=\"{path}\""))
            })
            .unwrap_or_else(|| panic!("no line for {host}{path} in {log}"));
        assert!(line.contains(code), "{code} in {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booting_dyno_takes_waiting_requests_and_max_concurrency_queues() {
    let lines = capture();
    let r = router(Limits::default()).await;
    let port = backend("late").await;
    let mut patient = fast();
    patient.boot_wait = Duration::from_secs(10);
    r.feed.set_apps(vec![info("late", &[], patient)]);
    r.feed.set_dynos(BTreeMap::from([(
        app("late"),
        AppDynos {
            up: vec![],
            starting: 1,
            crashed: 0,
        },
    )]));
    let addr = r.addr;
    let waiting = tokio::spawn(async move { get(addr, "late.apps.test", "/").await });
    // It stays waiting until a dyno comes up (a negative check, bounded).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            while !waiting.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .is_err(),
        "the request waits for the dyno"
    );
    r.feed
        .set_dynos(BTreeMap::from([(app("late"), up(&[port]))]));
    let (status, _, body) = waiting.await.expect("join");
    assert_eq!((status, body.as_str()), (200, "late /"));

    // One request at a time: the second waits in the app's queue and is
    // served after the first; the third waits longer than the bound: H11.
    let mut single = fast();
    single.max_concurrency = Some(1);
    single.request_timeout = Duration::from_millis(1500);
    r.feed.set_apps(vec![info("late", &[], single)]);
    let route = || {
        r.feed
            .handle()
            .load()
            .lookup("late.apps.test")
            .cloned()
            .expect("route")
    };
    let until = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !check() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::yield_now();
        }
    };
    let first = tokio::spawn(async move { get(addr, "late.apps.test", "/sleep/1200").await });
    until("the first request at the dyno", &|| {
        route().backends[0].in_flight() == 1
    });
    let second = tokio::spawn(async move { get(addr, "late.apps.test", "/sleep/1200").await });
    until("the second request queued", &|| route().queue.len() == 1);
    let third = tokio::spawn(async move { get(addr, "late.apps.test", "/sleep/10").await });
    until("the third request queued", &|| route().queue.len() == 2);
    assert_eq!(first.await.expect("join").0, 200);
    assert_eq!(second.await.expect("join").0, 200, "queued, then served");
    assert_eq!(
        third.await.expect("join").0,
        503,
        "waited past the bound: H11"
    );
    assert!(lines.text().contains("code=H11"), "{}", lines.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_pass_smuggling_and_slowloris_do_not() {
    let _lines = capture();
    let limits = Limits {
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let r = router(limits).await;
    let port = backend("sockets").await;
    r.feed
        .set_apps(vec![info("sockets", &[], RouteSettings::default())]);
    r.feed
        .set_dynos(BTreeMap::from([(app("sockets"), up(&[port]))]));

    let mut ws = TcpStream::connect(r.addr).await.expect("connect");
    ws.write_all(b"GET /ws HTTP/1.1\r\nhost: sockets.apps.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        ws.read_exact(&mut byte).await.expect("head");
        head.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{head:?}"
    );
    ws.write_all(b"ping").await.expect("send");
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), ws.read_exact(&mut echo))
        .await
        .expect("in time")
        .expect("echo");
    assert_eq!(&echo, b"ping");

    let mut smuggle = TcpStream::connect(r.addr).await.expect("connect");
    smuggle
        .write_all(b"POST / HTTP/1.1\r\nhost: sockets.apps.test\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nhost: sockets.apps.test\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), smuggle.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        !answer.contains("sockets /"),
        "nothing reached the dyno: {answer}"
    );

    let mut slow = TcpStream::connect(r.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nhost: sockets.apps.test\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the router cut the slow client off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_is_served() {
    let _lines = capture();
    let r = router(Limits::default()).await;
    let port = backend("hyper-two").await;
    r.feed
        .set_apps(vec![info("hyper-two", &[], RouteSettings::default())]);
    r.feed
        .set_dynos(BTreeMap::from([(app("hyper-two"), up(&[port]))]));
    let stream = TcpStream::connect(r.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("http://hyper-two.apps.test/over-h2")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    use http_body_util::BodyExt;
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"hyper-two /over-h2");
}

/// A test certificate authority, and leaves it signs.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Corral Test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Self {
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for `names`: its PEM pair and its DER, to compare with what
    /// the router presents.
    fn leaf(&self, names: &[&str]) -> (corral::tls::PemPair, Vec<u8>) {
        let params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let pem = corral::tls::PemPair {
            chain: cert.pem(),
            key: key.serialize_pem(),
        };
        (pem, cert.der().to_vec())
    }

    fn client(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// A router with a plain and a TLS listener: the router (plain address)
/// and the TLS address.
async fn tls_router(limits: Limits) -> (Router, SocketAddr) {
    let feed = Arc::new(RouteFeed::new("apps.test", TableHandle::default()));
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let secure = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (addr, tls_addr) = (
        plain.local_addr().expect("addr"),
        secure.local_addr().expect("addr"),
    );
    let ctx = Arc::new(Context {
        table: feed.handle().clone(),
        connect_timeout: Duration::from_secs(2),
        tasks: tracker.clone(),
        shutdown: shutdown.clone(),
        https_port: Some(tls_addr.port()),
        git: None,
    });
    let tls = router::tls_server_config(feed.handle().clone()).expect("tls config");
    tokio::spawn(router::serve(
        plain,
        Arc::clone(&ctx),
        limits,
        shutdown.clone(),
        tracker.clone(),
    ));
    tokio::spawn(router::serve_tls(
        secure,
        tls,
        ctx,
        limits,
        shutdown.clone(),
        tracker,
    ));
    let r = Router {
        addr,
        feed,
        shutdown,
    };
    (r, tls_addr)
}

/// One raw HTTP/1.1 exchange on `stream`: (status, lowercase head, body).
async fn exchange<S>(mut stream: S, method: &str, host: &str, path: &str) -> (u16, String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after `connection: close`.
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_picks_certificates_by_sni_and_serves_http1_and_h2() {
    let lines = capture();
    let (r, tls_addr) = tls_router(Limits::default()).await;
    let ca = TestCa::new();
    let (shop_pem, shop_der) = ca.leaf(&["www.shop.org"]);
    let (wild_pem, wild_der) = ca.leaf(&["*.shop.org"]);
    let (base_pem, base_der) = ca.leaf(&["*.apps.test"]);
    let port = backend("shop").await;
    let mut shop = info(
        "shop",
        &["www.shop.org", "*.shop.org"],
        RouteSettings::default(),
    );
    shop.certificates = vec![wild_pem, shop_pem];
    r.feed.set_apps(vec![shop]);
    r.feed
        .set_dynos(BTreeMap::from([(app("shop"), up(&[port]))]));
    r.feed.set_operator_certificates(vec![router::OperatorCert {
        hostname: "*.apps.test".to_owned(),
        pem: base_pem,
    }]);

    let connect = |name: &'static str, alpn: &'static [&'static [u8]]| {
        let connector = ca.client(alpn);
        async move {
            let tcp = TcpStream::connect(tls_addr).await.expect("connect");
            let server_name = rustls::pki_types::ServerName::try_from(name).expect("server name");
            connector.connect(server_name, tcp).await
        }
    };
    let presented = |stream: &tokio_rustls::client::TlsStream<TcpStream>| {
        stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .expect("a certificate")
    };
    for (name, wanted) in [
        ("www.shop.org", &shop_der),
        ("api.shop.org", &wild_der),
        ("shop.apps.test", &base_der),
        ("nobody.apps.test", &base_der),
    ] {
        let stream = connect(name, &[b"http/1.1"]).await.expect(name);
        assert_eq!(&presented(&stream), wanted, "{name}");
    }

    // HTTP/1.1 over TLS reaches the dyno, which hears it was https.
    let stream = connect("www.shop.org", &[b"http/1.1"])
        .await
        .expect("handshake");
    let (status, head, body) = exchange(stream, "GET", "www.shop.org", "/over-tls").await;
    assert_eq!((status, body.as_str()), (200, "shop /over-tls"), "{head}");
    assert!(head.contains("x-saw-proto: https"), "{head}");
    let log = lines.text();
    let line = log
        .lines()
        .find(|l| l.contains("path=\"/over-tls\""))
        .expect("a router line");
    assert!(line.contains("protocol=https"), "{line}");

    // HTTP/2 over TLS, chosen by ALPN.
    let stream = connect("www.shop.org", &[b"h2", b"http/1.1"])
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("https://www.shop.org/over-h2")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-saw-proto"], "https");
    use http_body_util::BodyExt;
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"shop /over-h2");

    // No certificate for the name and no base-domain fallback: the
    // handshake fails.
    r.feed.set_operator_certificates(Vec::new());
    assert!(connect("nobody.apps.test", &[b"http/1.1"]).await.is_err());
    assert!(connect("www.shop.org", &[b"http/1.1"]).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_https_redirects_plain_requests_only() {
    let _lines = capture();
    let (r, tls_addr) = tls_router(Limits::default()).await;
    let ca = TestCa::new();
    let (pem, _) = ca.leaf(&["secure.apps.test", "open.apps.test"]);
    let port = backend("app").await;
    let mut secure = info(
        "secure",
        &[],
        RouteSettings {
            force_https: true,
            ..RouteSettings::default()
        },
    );
    secure.certificates = vec![pem.clone()];
    let mut open = info("open", &[], RouteSettings::default());
    open.certificates = vec![pem];
    r.feed.set_apps(vec![secure, open]);
    r.feed.set_dynos(BTreeMap::from([
        (app("secure"), up(&[port])),
        (app("open"), up(&[port])),
    ]));

    let plain = |method: &'static str, host: &'static str, path: &'static str| async move {
        let stream = TcpStream::connect(r.addr).await.expect("connect");
        exchange(stream, method, host, path).await
    };
    let location = format!(
        "location: https://secure.apps.test:{}/a?b=1",
        tls_addr.port()
    );
    for (method, status) in [("GET", 301), ("HEAD", 301), ("POST", 308), ("DELETE", 308)] {
        let (got, head, _) = plain(method, "secure.apps.test", "/a?b=1").await;
        assert_eq!(got, status, "{method}: {head}");
        assert!(head.contains(&location), "{method}: {head}");
    }
    let (status, _, body) = plain("GET", "open.apps.test", "/").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "app /"),
        "no redirect without the setting"
    );

    // Over TLS the same app is served.
    let tcp = TcpStream::connect(tls_addr).await.expect("connect");
    let stream = ca
        .client(&[b"http/1.1"])
        .connect(
            rustls::pki_types::ServerName::try_from("secure.apps.test").expect("name"),
            tcp,
        )
        .await
        .expect("handshake");
    let (status, head, body) = exchange(stream, "GET", "secure.apps.test", "/a").await;
    assert_eq!((status, body.as_str()), (200, "app /a"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_cut_off_by_the_header_timeout() {
    let _lines = capture();
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_r, tls_addr) = tls_router(limits).await;
    // Connects, sends nothing: no ClientHello ever comes.
    let mut idle = TcpStream::connect(tls_addr).await.expect("connect");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the router closed the silent connection");
    assert!(rest.is_empty(), "{rest:?}");
}

/// `request` as written on a fresh connection: (status, lowercase head,
/// body).
async fn send_raw(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The last router line for `host` and `path`, waiting up to 5 s for it.
async fn router_line(lines: &Lines, host: &str, path: &str) -> String {
    let wanted = (format!("host={host} "), format!("path=\"{path}\" "));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = lines.text();
        if let Some(line) = text
            .lines()
            .rev()
            .find(|l| l.contains(&wanted.0) && l.contains(&wanted.1))
        {
            return line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no router line for {host}{path} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_over_8_kb_are_refused_and_never_reach_the_dyno() {
    let lines = capture();
    let r = router(Limits::default()).await;
    let port = backend("lines").await;
    r.feed
        .set_apps(vec![info("lines", &[], RouteSettings::default())]);
    r.feed
        .set_dynos(BTreeMap::from([(app("lines"), up(&[port]))]));
    let request = |path: &str, header: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nhost: lines.apps.test\r\n{header}\r\nconnection: close\r\n\r\n"
        )
    };
    // A header line is its name, ": " and its value: 8,192 bytes pass,
    // one more does not.
    let value = |line_bytes: usize| "v".repeat(line_bytes - "x-big: ".len());
    let fits = format!("x-big: {}", value(8192));
    assert_eq!(fits.len(), 8192);
    let (status, _, body) = send_raw(r.addr, &request("/fits", &fits)).await;
    assert_eq!((status, body.as_str()), (200, "lines /fits"));
    let over = format!("x-big: {}", value(8193));
    let (status, _, body) = send_raw(r.addr, &request("/over", &over)).await;
    assert_eq!(status, 431, "{body}");
    assert!(!body.contains("lines /"), "the dyno answered: {body}");
    let line = router_line(&lines, "lines.apps.test", "/over").await;
    assert!(
        line.contains(" dyno= ") && line.contains(" status=431 "),
        "{line}"
    );

    // The request target: 8,192 bytes pass, 8,193 get 414.
    let target = |bytes: usize| format!("/{}", "t".repeat(bytes - 1));
    let (status, _, body) = send_raw(r.addr, &request(&target(8192), "x-small: 1")).await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("lines /ttt"),
        "{}",
        &body[..40.min(body.len())]
    );
    let (status, _, body) = send_raw(r.addr, &request(&target(8193), "x-small: 1")).await;
    assert_eq!(status, 414, "{body}");
    assert!(!body.contains("lines /"), "the dyno answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_answer_is_logged_as_h27() {
    let lines = capture();
    let r = router(Limits::default()).await;
    let port = backend("leaver").await;
    r.feed
        .set_apps(vec![info("leaver", &[], RouteSettings::default())]);
    r.feed
        .set_dynos(BTreeMap::from([(app("leaver"), up(&[port]))]));
    let mut stream = TcpStream::connect(r.addr).await.expect("connect");
    stream
        .write_all(b"GET /sleep/5000 HTTP/1.1\r\nhost: leaver.apps.test\r\n\r\n")
        .await
        .expect("write");
    // Gone once the router has given the request a dyno, long before the
    // dyno answers.
    let backend = r
        .feed
        .handle()
        .load()
        .lookup("leaver.apps.test")
        .map(|route| Arc::clone(&route.backends[0]))
        .expect("route");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while backend.in_flight() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the dyno"
        );
        tokio::task::yield_now().await;
    }
    drop(stream);
    let line = router_line(&lines, "leaver.apps.test", "/sleep/5000").await;
    assert!(
        line.contains("at=info code=H27 desc=\"Client Request Interrupted\""),
        "{line}"
    );
    assert!(
        line.contains(" dyno=web.1 ") && line.contains(" status=499 "),
        "{line}"
    );
}
