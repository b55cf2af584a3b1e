//! The wire: syslog over TCP or TLS, and HTTPS POSTs of logplex-1 batches, to addresses the SSRF rule allowed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::frame::Frame;
use super::pump::Transport;
use super::url::{resolve, AddressPolicy, DrainUrl, Host};
use super::DrainError;

/// Connecting, and each send, must finish within this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a syslog batch must go without the connection closing
/// before it counts as delivered (see the pump's module doc).
const SYSLOG_SETTLE: Duration = Duration::from_millis(500);

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// What every transport needs to connect.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    /// The addresses drains may reach.
    pub policy: AddressPolicy,
    /// Webpki roots plus the operator's CA file.
    pub tls: Arc<rustls::ClientConfig>,
    /// The same with ALPN `http/1.1`, for HTTPS drains.
    pub tls_http: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// Trusts the Mozilla roots and the certificates of `ca_pem` (the
    /// operator's `drain-ca-file`).
    pub(crate) fn new(policy: AddressPolicy, ca_pem: Option<&[u8]>) -> Result<Self, DrainError> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = ca_pem {
            let mut added = 0;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| DrainError::Tls(format!("drain-ca-file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| DrainError::Tls(format!("drain-ca-file: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(DrainError::Tls(
                    "drain-ca-file holds no PEM certificate".to_owned(),
                ));
            }
        }
        let build = |alpn: Vec<Vec<u8>>| -> Result<Arc<rustls::ClientConfig>, DrainError> {
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| DrainError::Tls(e.to_string()))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            config.alpn_protocols = alpn;
            Ok(Arc::new(config))
        };
        Ok(Self {
            policy,
            tls: build(Vec::new())?,
            tls_http: build(vec![b"http/1.1".to_vec()])?,
        })
    }

    /// Resolves, checks and connects (TLS when the scheme says so).
    async fn connect(
        &self,
        url: &DrainUrl,
        alpn_http: bool,
    ) -> Result<Box<dyn Stream>, DrainError> {
        let addrs = resolve(url, self.policy)
            .await
            .map_err(|e| DrainError::Refused(e.0))?;
        let tcp = connect_any(&addrs).await?;
        let _ = tcp.set_nodelay(true);
        if !url.scheme.tls() {
            return Ok(Box::new(tcp));
        }
        let name = match &url.host {
            Host::Name(n) => {
                ServerName::try_from(n.clone()).map_err(|e| DrainError::Tls(e.to_string()))?
            }
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        let config = if alpn_http { &self.tls_http } else { &self.tls };
        let tls = tokio::time::timeout(
            IO_TIMEOUT,
            TlsConnector::from(Arc::clone(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| DrainError::Io("TLS handshake timed out".to_owned()))?
        .map_err(|e| DrainError::Tls(e.to_string()))?;
        Ok(Box::new(tls))
    }
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, DrainError> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
            Err(_) => last = Some(format!("{addr}: connect timed out")),
        }
    }
    Err(DrainError::Io(
        last.unwrap_or_else(|| "no address".to_owned()),
    ))
}

/// `syslog://` and `syslog+tls://`: one long-lived connection.
pub(crate) struct Syslog {
    url: DrainUrl,
    connector: Connector,
    stream: Option<Box<dyn Stream>>,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Syslog {
    /// A transport to `url` (not connected yet).
    pub(crate) fn new(url: DrainUrl, connector: Connector) -> Self {
        Self {
            url,
            connector,
            stream: None,
        }
    }
}

/// Whether `stream` is still open: a syslog receiver sends nothing, so a
/// read that completes at once means the peer closed (or reset) it.
async fn still_open(stream: &mut Box<dyn Stream>) -> bool {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::ZERO, stream.read(&mut buf)).await {
        Err(_) => true,
        Ok(Ok(0)) | Ok(Err(_)) => false,
        // Bytes from a receiver that talks: ignore them.
        Ok(Ok(_)) => true,
    }
}

impl Transport for Syslog {
    async fn send(&mut self, frame: &Frame) -> Result<(), DrainError> {
        if let Some(stream) = self.stream.as_mut() {
            if !still_open(stream).await {
                self.stream = None;
            }
        }
        let stream = match self.stream.as_mut() {
            Some(s) => s,
            None => self
                .stream
                .insert(self.connector.connect(&self.url, false).await?),
        };
        let write = async {
            stream.write_all(&frame.body).await?;
            stream.flush().await
        };
        match tokio::time::timeout(IO_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.stream = None;
                Err(DrainError::Io(e.to_string()))
            }
            Err(_) => {
                self.stream = None;
                Err(DrainError::Io("write timed out".to_owned()))
            }
        }
    }

    async fn healthy(&mut self) -> bool {
        match self.stream.as_mut() {
            Some(stream) => still_open(stream).await,
            None => false,
        }
    }

    fn settle(&self) -> Duration {
        SYSLOG_SETTLE
    }

    fn reset(&mut self) {
        self.stream = None;
    }
}

type Conn = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Stream>>, Full<Bytes>>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// `https://` (and `http://`): a keep-alive connection, one POST per batch.
pub(crate) struct Https {
    url: DrainUrl,
    connector: Connector,
    token: String,
    conn: Option<(Sender, Pin<Box<Conn>>)>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Https {
    /// A transport to `url` for drain `token` (not connected yet).
    pub(crate) fn new(url: DrainUrl, connector: Connector, token: &str) -> Self {
        Self {
            url,
            connector,
            token: token.to_owned(),
            conn: None,
        }
    }

    fn request(&self, frame: &Frame) -> Result<http::Request<Full<Bytes>>, DrainError> {
        let mut req = http::Request::post(self.url.path.as_str())
            .header(http::header::HOST, self.url.host_header())
            .header(http::header::CONTENT_TYPE, "application/logplex-1")
            .header("Logplex-Msg-Count", frame.count)
            .header("Logplex-Frame-Id", frame.id.as_str())
            .header("Logplex-Drain-Token", self.token.as_str())
            .header(
                http::header::USER_AGENT,
                concat!("Logplex/corral-", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONTENT_LENGTH, frame.body.len());
        if let Some((user, password)) = &self.url.credentials {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req = req.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        req.body(Full::new(Bytes::from(frame.body.clone())))
            .map_err(|e| DrainError::Io(e.to_string()))
    }

    async fn post(&mut self, frame: &Frame) -> Result<(), DrainError> {
        let req = self.request(frame)?;
        if self.conn.as_ref().is_some_and(|(s, _)| s.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let stream = self.connector.connect(&self.url, true).await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| DrainError::Io(e.to_string()))?;
            self.conn = Some((sender, Box::pin(conn)));
        }
        let Some((sender, conn)) = self.conn.as_mut() else {
            return Err(DrainError::Io("no connection".to_owned()));
        };
        // The connection is driven here, beside the request, rather than
        // by a task of its own: it only has work while a batch is sent.
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(req).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        let status = tokio::select! {
            r = exchange => r.map_err(|e| DrainError::Io(e.to_string()))?,
            r = conn.as_mut() => {
                return Err(DrainError::Io(match r {
                    Ok(()) => "the receiver closed the connection".to_owned(),
                    Err(e) => e.to_string(),
                }))
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(DrainError::Status(status.as_u16()))
        }
    }
}

impl Transport for Https {
    async fn send(&mut self, frame: &Frame) -> Result<(), DrainError> {
        let result = match tokio::time::timeout(IO_TIMEOUT, self.post(frame)).await {
            Ok(r) => r,
            Err(_) => Err(DrainError::Io(
                "the receiver did not answer in time".to_owned(),
            )),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn healthy(&mut self) -> bool {
        // A 2xx is the receiver's acknowledgement: nothing left to lose.
        true
    }

    fn settle(&self) -> Duration {
        Duration::ZERO
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use tokio::net::TcpListener;

    use super::*;
    use crate::tls::testing::Ca;

    /// A `syslog+tls` receiver on loopback whose certificate `ca` issued
    /// for 127.0.0.1: its URL, and the plaintext of its first connection.
    async fn receiver(ca: &Ca) -> (DrainUrl, tokio::task::JoinHandle<Vec<u8>>) {
        use rustls_pki_types::pem::PemObject;
        let pem = ca.leaf(&["127.0.0.1"]);
        let chain = CertificateDer::pem_slice_iter(pem.chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let received = tokio::spawn(async move {
            let mut got = Vec::new();
            let Ok((tcp, _)) = listener.accept().await else {
                return got;
            };
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.read_to_end(&mut got).await;
            }
            got
        });
        let url = DrainUrl::parse(&format!("syslog+tls://{addr}"), false).expect("url");
        (url, received)
    }

    fn local() -> AddressPolicy {
        AddressPolicy {
            allow_local: true,
            allow_private_network: true,
        }
    }

    fn batch() -> Frame {
        Frame {
            body: b"12 <190>1 hello".to_vec(),
            count: 1,
            id: "F1".into(),
        }
    }

    #[tokio::test]
    async fn syslog_over_tls_reaches_a_receiver_of_a_trusted_ca_only() {
        let ca = Ca::new("Drain CA");
        let (url, received) = receiver(&ca).await;
        let connector = Connector::new(local(), Some(ca.pem.as_bytes())).expect("connector");
        let mut syslog = Syslog::new(url, connector);
        syslog.send(&batch()).await.expect("delivered");
        assert!(syslog.healthy().await);
        syslog.reset();
        assert_eq!(received.await.expect("receiver"), b"12 <190>1 hello");

        // The Mozilla roots alone do not vouch for this receiver.
        let (url, _received) = receiver(&ca).await;
        let connector = Connector::new(local(), None).expect("connector");
        let mut syslog = Syslog::new(url, connector);
        let refused = syslog.send(&batch()).await;
        assert!(matches!(refused, Err(DrainError::Tls(_))), "{refused:?}");
    }
}
