//! The operator's own certificates (the router's certificate directory), parsed once per change of it.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use crate::tls::{Certificate, PemPair};

/// One certificate of the operator's directory: `<hostname>.crt` and
/// `<hostname>.key`, for `hostname` (`*.example.com` from
/// `_wildcard.example.com.crt`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperatorCert {
    /// The name it is served for, lowercase.
    pub hostname: String,
    /// The chain and key.
    pub pem: PemPair,
}

/// The operator's certificates, parsed, by the hostname they are for.
#[derive(Debug, Default)]
pub(crate) struct OperatorCerts {
    pub(super) by_name: HashMap<String, Arc<CertifiedKey>>,
    pub(super) fallback: Option<Arc<CertifiedKey>>,
}

impl OperatorCerts {
    /// Parses `certs`; the one for `*.<base_domain>` also answers
    /// handshakes without SNI or without a match. A certificate that does
    /// not parse is left out with a warning (the others still serve).
    pub(crate) fn build(certs: &[OperatorCert], base_domain: &str) -> Self {
        let mut by_name = HashMap::new();
        for cert in certs {
            match Certificate::parse(&cert.pem) {
                Ok(parsed) => {
                    if !parsed.covers(&cert.hostname) {
                        tracing::warn!(hostname = %cert.hostname, names = ?parsed.info.names, "an operator certificate does not name the host its file is named for; clients will refuse it");
                    }
                    by_name.insert(cert.hostname.clone(), parsed.key);
                }
                Err(e) => {
                    tracing::warn!(hostname = %cert.hostname, error = %e, "skipping an operator certificate");
                }
            }
        }
        let fallback = by_name.get(&format!("*.{base_domain}")).cloned();
        Self { by_name, fallback }
    }
}
