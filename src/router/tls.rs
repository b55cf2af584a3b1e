//! TLS termination: the rustls server config and a certificate resolver that picks by SNI from the route table.
//!
//! Certificates travel in the route table snapshot (apps' SNI endpoints in
//! each [`super::table::AppRoute`], the operator's directory in
//! [`OperatorCerts`](super::certs::OperatorCerts)), parsed once per change; a handshake only looks up.
//! The order, for an SNI name: a certificate of the app that owns the name
//! naming it exactly, then one of that app's wildcards (`*.` + parent);
//! then the operator's certificate for the exact name, then the operator's
//! wildcard; and for no SNI or no match the operator's wildcard for the
//! base domain, if there is one. Otherwise the handshake fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use super::certs::OperatorCert;
use super::table::{normalize_host, RouteTable, TableHandle};
use crate::tls::PemPair;

/// File names in the operator's directory spell `*.` as this.
pub(crate) const WILDCARD_FILE_PREFIX: &str = "_wildcard.";

/// The certificate for a handshake naming `sni` (see the module doc).
pub(crate) fn pick(table: &RouteTable, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
    let operator = table.operator();
    if let Some(name) = sni.map(|s| normalize_host(s).into_owned()) {
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        if let Some(route) = table.lookup(&name) {
            let certs = &route.certificates;
            let exact = certs.iter().find(|c| c.info.names.contains(&name));
            let wild = || {
                wildcard
                    .as_ref()
                    .and_then(|w| certs.iter().find(|c| c.info.names.contains(w)))
            };
            if let Some(found) = exact.or_else(wild) {
                return Some(Arc::clone(&found.key));
            }
        }
        let from_dir = operator
            .by_name
            .get(&name)
            .or_else(|| wildcard.as_ref().and_then(|w| operator.by_name.get(w)));
        if let Some(found) = from_dir {
            return Some(Arc::clone(found));
        }
    }
    operator.fallback.clone()
}

/// Picks certificates from the current route table.
#[derive(Debug)]
struct Resolver {
    table: TableHandle,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        let picked = pick(&table, hello.server_name());
        if picked.is_none() {
            tracing::debug!(sni = ?hello.server_name(), "no certificate for this name; failing the handshake");
        }
        picked
    }
}

/// The server side of TLS for the router: certificates by SNI from
/// `table`, ALPN `h2` then `http/1.1`, TLS 1.2 and 1.3 with ring.
pub fn server_config(table: TableHandle) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver { table }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why the operator's certificate directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the certificates directory {path}: {source}; check router.certificates-dir and that corrald may read it")]
pub(crate) struct CertificatesDirError {
    /// The directory or file.
    pub path: std::path::PathBuf,
    /// What the OS said.
    pub source: std::io::Error,
}

/// Reads every `<hostname>.crt` with its `<hostname>.key` in `dir`
/// (`_wildcard.<domain>` for `*.<domain>`). A `.crt` without its `.key`,
/// or with a name that is not a hostname, is skipped with a warning.
/// Blocking: call it off the async runtime.
pub(crate) fn read_certificates_dir(dir: &Path) -> Result<Vec<OperatorCert>, CertificatesDirError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CertificatesDirError { path, source }
    };
    let mut certs = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for crt in entries {
        let Some(stem) = crt
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".crt"))
        else {
            continue;
        };
        let hostname = match stem.strip_prefix(WILDCARD_FILE_PREFIX) {
            Some(domain) => format!("*.{domain}"),
            None => stem.to_owned(),
        };
        let Some(hostname) = certificate_name(&hostname) else {
            tracing::warn!(file = %crt.display(), "skipping a certificate whose file name is not <hostname>.crt");
            continue;
        };
        let key = crt.with_extension("key");
        if !key.exists() {
            tracing::warn!(file = %crt.display(), "skipping a certificate without its .key file beside it");
            continue;
        }
        let chain = std::fs::read_to_string(&crt).map_err(io(&crt))?;
        let key = std::fs::read_to_string(&key).map_err(io(&key))?;
        certs.push(OperatorCert {
            hostname,
            pem: PemPair { chain, key },
        });
    }
    Ok(certs)
}

/// How often [`watch_certificates_dir`] reads the operator's directory
/// again, so renewed files are served without a restart.
pub(crate) const CERTIFICATES_REREAD: Duration = Duration::from_secs(30);

/// Reads the operator's directory `dir` now and every
/// [`CERTIFICATES_REREAD`] until `shutdown`, handing each read to
/// `publish`; a read that fails keeps the last certificates, with a
/// warning.
pub(crate) async fn watch_certificates_dir(
    dir: PathBuf,
    publish: impl Fn(Vec<OperatorCert>) + Send,
    shutdown: CancellationToken,
) {
    loop {
        let path = dir.clone();
        match tokio::task::spawn_blocking(move || read_certificates_dir(&path)).await {
            Ok(Ok(certs)) => publish(certs),
            Ok(Err(e)) => tracing::warn!(error = %e, "keeping the last operator certificates"),
            Err(e) => tracing::warn!(error = %e, "reading the certificates directory failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CERTIFICATES_REREAD) => {}
        }
    }
}

/// `name` lowercase if it is a DNS name, or `*.` and one. Looser than
/// [`crate::model::Hostname`], which wants two labels under a wildcard:
/// the operator may serve `*.localhost`, the default base domain.
fn certificate_name(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let labels = name.strip_prefix("*.").unwrap_or(&name);
    let valid = !labels.is_empty()
        && labels.len() <= 253
        && labels.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AppName;
    use crate::router::table::{AppInfo, RouteFeed, RouteSettings};
    use crate::tls::testing::Ca;
    use crate::tls::Certificate;

    fn info(name: &str, domains: &[&str], certs: Vec<PemPair>) -> AppInfo {
        AppInfo {
            app: AppName::parse(name).expect("app"),
            maintenance: false,
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            settings: RouteSettings::default(),
            certificates: certs,
        }
    }

    fn operator(hostname: &str, pem: PemPair) -> OperatorCert {
        OperatorCert {
            hostname: hostname.to_owned(),
            pem,
        }
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_operators_then_the_fallback() {
        let ca = Ca::new("Test CA");
        let exact = ca.leaf(&["www.shop.org"]);
        let wild = ca.leaf(&["*.shop.org"]);
        let stolen = ca.leaf(&["www.blog.org"]);
        let op_exact = ca.leaf(&["status.example.net"]);
        let op_wild = ca.leaf(&["*.example.net"]);
        let base = ca.leaf(&["*.apps.test"]);
        let feed = RouteFeed::new("apps.test", TableHandle::default());
        feed.set_apps(vec![
            info(
                "shop",
                &["www.shop.org", "*.shop.org"],
                vec![wild.clone(), exact.clone()],
            ),
            // An app's certificate for a name it does not own is never used.
            info("blog", &["blog.org"], vec![stolen.clone()]),
            info("other", &["www.blog.org"], vec![]),
        ]);
        feed.set_operator_certificates(vec![
            operator("status.example.net", op_exact.clone()),
            operator("*.example.net", op_wild.clone()),
            operator("*.apps.test", base.clone()),
        ]);
        let table = feed.handle().load();
        let chain_of = |pem: &PemPair| Certificate::parse(pem).expect("parse").key.cert.clone();
        let picked = |sni: Option<&str>| pick(&table, sni).map(|k| k.cert.clone());
        assert_eq!(picked(Some("www.shop.org")), Some(chain_of(&exact)));
        assert_eq!(picked(Some("WWW.Shop.Org")), Some(chain_of(&exact)));
        assert_eq!(picked(Some("api.shop.org")), Some(chain_of(&wild)));
        assert_eq!(
            picked(Some("status.example.net")),
            Some(chain_of(&op_exact))
        );
        assert_eq!(picked(Some("other.example.net")), Some(chain_of(&op_wild)));
        assert_eq!(picked(Some("shop.apps.test")), Some(chain_of(&base)));
        assert_eq!(
            picked(Some("www.blog.org")),
            Some(chain_of(&base)),
            "not blog's"
        );
        assert_eq!(picked(Some("unknown.example.com")), Some(chain_of(&base)));
        assert_eq!(picked(None), Some(chain_of(&base)));

        // Without the base-domain wildcard, no match fails the handshake.
        feed.set_operator_certificates(vec![operator("*.example.net", op_wild)]);
        let table = feed.handle().load();
        assert!(pick(&table, None).is_none());
        assert!(pick(&table, Some("unknown.example.com")).is_none());
        assert!(pick(&table, Some("www.shop.org")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_operators_directory_is_read_again_every_30_seconds() {
        let ca = Ca::new("Test CA");
        let dir = tempfile::tempdir().expect("dir");
        let write = |host: &str| {
            let pem = ca.leaf(&[host]);
            std::fs::write(dir.path().join(format!("{host}.crt")), &pem.chain).expect("write");
            std::fs::write(dir.path().join(format!("{host}.key")), &pem.key).expect("write");
        };
        write("a.example.com");
        let (tx, mut reads) = tokio::sync::mpsc::unbounded_channel();
        let publish = move |certs: Vec<OperatorCert>| {
            let names: Vec<String> = certs.into_iter().map(|c| c.hostname).collect();
            let _ = tx.send((tokio::time::Instant::now(), names));
        };
        let shutdown = CancellationToken::new();
        let watcher = tokio::spawn(watch_certificates_dir(
            dir.path().to_owned(),
            publish,
            shutdown.clone(),
        ));
        let (first_at, names) = reads.recv().await.expect("read at start");
        assert_eq!(names, ["a.example.com"]);

        // A renewed or added file is picked up by the next read, 30 s on
        // (the clock is paused: it moves only when everything waits).
        write("b.example.com");
        let (at, names) = reads.recv().await.expect("read again");
        assert_eq!(names, ["a.example.com", "b.example.com"]);
        assert_eq!(at - first_at, Duration::from_secs(30));

        // A directory that cannot be read keeps what was served.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).expect("move away");
        let none = tokio::time::timeout(Duration::from_secs(95), reads.recv()).await;
        assert!(none.is_err(), "published {none:?} from a missing directory");
        std::fs::rename(&moved, dir.path()).expect("move back");
        let (_, names) = reads.recv().await.expect("read once it is back");
        assert_eq!(names.len(), 2);

        shutdown.cancel();
        watcher.await.expect("watcher stops");
    }

    #[test]
    fn the_operators_directory_is_read_by_file_name() {
        let ca = Ca::new("Test CA");
        let dir = tempfile::tempdir().expect("dir");
        let wild = ca.leaf(&["*.apps.example.com"]);
        std::fs::write(
            dir.path().join("_wildcard.apps.example.com.crt"),
            &wild.chain,
        )
        .expect("write");
        std::fs::write(dir.path().join("_wildcard.apps.example.com.key"), &wild.key)
            .expect("write");
        let lone = ca.leaf(&["lone.example.com"]);
        std::fs::write(dir.path().join("lone.example.com.crt"), &lone.chain).expect("write");
        std::fs::write(dir.path().join("README"), "not a certificate").expect("write");
        let certs = read_certificates_dir(dir.path()).expect("read");
        assert_eq!(certs, vec![operator("*.apps.example.com", wild)]);
        assert!(read_certificates_dir(&dir.path().join("missing")).is_err());
        assert_eq!(
            certificate_name("*.LocalHost").as_deref(),
            Some("*.localhost")
        );
        for bad in ["*", "*.", "a..b", "-a.b", "a b", "w*.example.com"] {
            assert_eq!(certificate_name(bad), None, "{bad}");
        }
    }
}
