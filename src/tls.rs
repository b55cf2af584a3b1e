//! TLS certificates: a PEM chain and key checked and parsed once, and what the API shows of them.
//!
//! The API checks a certificate when it is uploaded ([`Certificate::parse`]
//! plus [`Certificate::check_current`]); the router parses the same PEM
//! again once per route table change into a [`rustls`] `CertifiedKey`, never
//! per handshake. An upload is checked for structure only: the key matches
//! the first certificate, each certificate is issued (by name) by the next
//! one, and the first names at least one host. Whether a trusted CA signed
//! it ([`Certificate::is_trusted`], the API's `ca_signed?`) is verified
//! against [`TrustRoots`] when the API describes it; a certificate no
//! client would trust is still served, as Heroku serves one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

/// A certificate chain and its private key, both PEM, as stored and as
/// passed to the router. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PemPair {
    /// The server certificate, then each intermediate.
    pub chain: String,
    /// The private key of the server certificate.
    pub key: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair")
            .field("chain_bytes", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a certificate or key was refused; every message says what to send
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CertificateError {
    /// No `BEGIN CERTIFICATE` block.
    #[error("the certificate chain holds no PEM certificate (-----BEGIN CERTIFICATE-----); send the server certificate, then its intermediates, as PEM")]
    NoCertificate,
    /// A block that is not valid PEM or not a certificate.
    #[error("certificate {index} of the certificate chain cannot be read ({reason}); send PEM certificates as your certificate authority issued them")]
    Unreadable {
        /// 1-based position in the chain.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// No private key block, or one that cannot be read.
    #[error("the private key is not a readable PEM private key ({0}); send the unencrypted key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)")]
    NoKey(String),
    /// A key type rustls cannot sign with.
    #[error("the private key's type is not supported ({0}); use an RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 key")]
    UnsupportedKey(String),
    /// The key is not the certificate's.
    #[error("the private key does not match the certificate (the first one in the chain); send the key the certificate was issued for, and the server certificate first")]
    KeyMismatch,
    /// The chain is out of order or has a stranger in it.
    #[error("certificate {next} of the certificate chain did not issue certificate {index} (its subject is not that one's issuer); order the chain as server certificate first, then each issuer in turn")]
    ChainOrder {
        /// 1-based position of the certificate whose issuer is wrong.
        index: usize,
        /// The position that should have issued it.
        next: usize,
    },
    /// No DNS name to serve it for.
    #[error("the certificate names no host (no DNS subjectAltName and no common name); it cannot be served for any domain")]
    NoNames,
    /// Past its `notAfter`.
    #[error("the certificate expired at {0}; renew it and send the new one")]
    Expired(DateTime<Utc>),
}

/// What a certificate says about itself (Heroku's `ssl_cert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The DNS names it covers, lowercase: its subjectAltNames, else its
    /// common name.
    pub names: Vec<String>,
    /// `/C=US/O=Example/CN=www.example.com`, as Heroku writes names.
    pub subject: String,
    /// Its issuer, written the same way.
    pub issuer: String,
    /// `notBefore`.
    pub starts_at: DateTime<Utc>,
    /// `notAfter`.
    pub expires_at: DateTime<Utc>,
    /// Whether it issued itself (subject and issuer are the same name).
    pub self_signed: bool,
}

/// A parsed certificate chain with its key, ready to serve.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// What the first certificate says.
    pub info: CertificateInfo,
    /// The chain and signing key for rustls.
    pub key: Arc<CertifiedKey>,
}

impl Certificate {
    /// Parses and checks `pem` (see the module doc); expiry is left to
    /// [`Certificate::check_current`], so that a table holding an expired
    /// certificate still loads.
    pub(crate) fn parse(pem: &PemPair) -> Result<Self, CertificateError> {
        let mut chain = Vec::new();
        for (i, der) in CertificateDer::pem_slice_iter(pem.chain.as_bytes()).enumerate() {
            let der = der.map_err(|e| CertificateError::Unreadable {
                index: i + 1,
                reason: e.to_string(),
            })?;
            chain.push(der);
        }
        if chain.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        let parsed = chain
            .iter()
            .enumerate()
            .map(|(i, der)| {
                x509_parser::parse_x509_certificate(der)
                    .map(|(_, cert)| cert)
                    .map_err(|e| CertificateError::Unreadable {
                        index: i + 1,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (i, pair) in parsed.windows(2).enumerate() {
            if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
                return Err(CertificateError::ChainOrder {
                    index: i + 1,
                    next: i + 2,
                });
            }
        }
        let info = info(&parsed[0])?;
        let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes())
            .map_err(|e| CertificateError::NoKey(e.to_string()))?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| CertificateError::UnsupportedKey(e.to_string()))?;
        let key = CertifiedKey::new(chain, signer);
        // ring's keys all know their public half, so "unknown" would be a
        // key this check cannot vouch for: refuse it too.
        key.keys_match()
            .map_err(|_| CertificateError::KeyMismatch)?;
        Ok(Self {
            info,
            key: Arc::new(key),
        })
    }

    /// Refuses a certificate that has expired by `now`.
    pub(crate) fn check_current(&self, now: DateTime<Utc>) -> Result<(), CertificateError> {
        if self.info.expires_at <= now {
            return Err(CertificateError::Expired(self.info.expires_at));
        }
        Ok(())
    }

    /// Whether the certificate covers `host` (lowercase): by name, or by
    /// a wildcard name one label up.
    pub(crate) fn covers(&self, host: &str) -> bool {
        self.info.names.iter().any(|n| n == host)
            || host.split_once('.').is_some_and(|(_, parent)| {
                self.info.names.iter().any(|n| n == &format!("*.{parent}"))
            })
    }
}

/// The certificate authorities a chain must lead to for the API to call
/// it CA-signed: the Mozilla roots (webpki-roots, what browsers trust)
/// and any the operator adds (`api.trusted-ca-file`).
#[derive(Debug, Clone)]
pub(crate) struct TrustRoots {
    roots: Arc<rustls::RootCertStore>,
}

/// Why the operator's trusted CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrustRootsError {
    /// The file could not be read.
    #[error("cannot read the trusted CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It holds no certificate a trust anchor can be made of.
    #[error("the trusted CA file {path} holds no usable PEM CA certificate ({reason}); put the CA certificates in it as PEM (-----BEGIN CERTIFICATE-----)")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

static MOZILLA: LazyLock<Arc<rustls::RootCertStore>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Arc::new(roots)
});

impl TrustRoots {
    /// The Mozilla roots alone.
    pub(crate) fn mozilla() -> Self {
        Self {
            roots: Arc::clone(&MOZILLA),
        }
    }

    /// The Mozilla roots and the CA certificates in `pem` (read from
    /// `path`, which labels errors).
    pub(crate) fn with_pem(pem: &[u8], path: &Path) -> Result<Self, TrustRootsError> {
        let unusable = |reason: String| TrustRootsError::Unusable {
            path: path.to_owned(),
            reason,
        };
        let mut roots = rustls::RootCertStore::clone(&MOZILLA);
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| unusable(e.to_string()))?;
            roots.add(cert).map_err(|e| unusable(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(unusable("no certificate in it".to_owned()));
        }
        Ok(Self {
            roots: Arc::new(roots),
        })
    }

    /// The Mozilla roots, and those of the file at `path` if given.
    /// Blocking.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, TrustRootsError> {
        let Some(path) = path else {
            return Ok(Self::mozilla());
        };
        let pem = std::fs::read(path).map_err(|source| TrustRootsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::with_pem(&pem, path)
    }
}

impl Certificate {
    /// Whether the chain leads from the server certificate, through the
    /// chain's other certificates, to one of `roots`, every signature good
    /// and every certificate valid at `now` and allowed to serve TLS. No
    /// host name is checked: that is each client's, per name.
    pub(crate) fn is_trusted(&self, roots: &TrustRoots, now: UnixTime) -> bool {
        let Some((leaf, intermediates)) = self.key.cert.split_first() else {
            return false;
        };
        let Ok(leaf) = rustls::server::ParsedCertificate::try_from(leaf) else {
            return false;
        };
        let algorithms = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &leaf,
            &roots.roots,
            intermediates,
            now,
            algorithms,
        )
        .is_ok()
    }
}

fn info(cert: &X509Certificate<'_>) -> Result<CertificateInfo, CertificateError> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        // Before subjectAltName was required, the common name was the host.
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .filter(|cn| cn.contains('.') && !cn.contains(' '))
                .map(|cn| cn.trim_end_matches('.').to_ascii_lowercase()),
        );
    }
    if names.is_empty() {
        return Err(CertificateError::NoNames);
    }
    names.dedup();
    let time = |t: &x509_parser::time::ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let validity = cert.validity();
    Ok(CertificateInfo {
        names,
        subject: slashed(cert.subject()),
        issuer: slashed(cert.issuer()),
        starts_at: time(&validity.not_before),
        expires_at: time(&validity.not_after),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
    })
}

/// A distinguished name as OpenSSL's one-line form, which Heroku shows:
/// `/C=US/O=Example/CN=www.example.com`.
fn slashed(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut out = String::new();
    for attr in name.iter_attributes() {
        let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
            .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
        let value = attr
            .as_str()
            .map_or_else(|_| hex::encode(attr.as_slice()), str::to_owned);
        out.push('/');
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! Certificates for tests, made with rcgen.

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    use super::PemPair;

    /// A test certificate authority.
    pub(crate) struct Ca {
        issuer: Issuer<'static, KeyPair>,
        /// Its certificate, PEM.
        pub pem: String,
    }

    impl Ca {
        /// A fresh CA named `name`.
        pub(crate) fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let key = KeyPair::generate().expect("key");
            let cert = params.self_signed(&key).expect("self-signed");
            Self {
                pem: cert.pem(),
                issuer: Issuer::new(params, key),
            }
        }

        /// A leaf for `names`, valid from `days.0` to `days.1` days from now.
        pub(crate) fn leaf_valid(&self, names: &[&str], days: (i64, i64)) -> PemPair {
            let mut params =
                CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                    .expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, names.first().copied().unwrap_or("x"));
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now + time::Duration::days(days.0);
            params.not_after = now + time::Duration::days(days.1);
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &self.issuer).expect("sign");
            PemPair {
                chain: format!("{}{}", cert.pem(), self.pem),
                key: key.serialize_pem(),
            }
        }

        /// A leaf for `names`, valid for a year from yesterday.
        pub(crate) fn leaf(&self, names: &[&str]) -> PemPair {
            self.leaf_valid(names, (-1, 365))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Ca;
    use super::*;

    #[test]
    fn a_good_chain_parses_and_describes_itself() {
        let ca = Ca::new("Test CA");
        let pem = ca.leaf(&["www.example.com", "*.example.org"]);
        let cert = Certificate::parse(&pem).expect("valid");
        assert_eq!(cert.info.names, ["www.example.com", "*.example.org"]);
        assert_eq!(cert.info.subject, "/CN=www.example.com");
        assert_eq!(cert.info.issuer, "/CN=Test CA");
        assert!(!cert.info.self_signed);
        assert_eq!(cert.key.cert.len(), 2, "leaf and CA");
        cert.check_current(Utc::now()).expect("current");
        assert!(cert.covers("www.example.com"));
        assert!(cert.covers("api.example.org"));
        assert!(!cert.covers("example.org"));
        assert!(!cert.covers("a.b.example.org"));
        assert!(!cert.covers("example.com"));
        assert!(
            !format!("{pem:?}").contains("PRIVATE"),
            "Debug hides the key"
        );
    }

    #[test]
    fn only_a_chain_to_a_trusted_root_is_trusted() {
        let ca = Ca::new("Private CA");
        let cert = Certificate::parse(&ca.leaf(&["www.example.com"])).expect("parses");
        let now = UnixTime::now();
        assert!(
            !cert.is_trusted(&TrustRoots::mozilla(), now),
            "no Mozilla root issued it"
        );
        let file = Path::new("/ca.pem");
        let trusting = TrustRoots::with_pem(ca.pem.as_bytes(), file).expect("roots");
        assert!(cert.is_trusted(&trusting, now));
        let other = TrustRoots::with_pem(Ca::new("Other CA").pem.as_bytes(), file).expect("roots");
        assert!(
            !cert.is_trusted(&other, now),
            "another CA of the same name shape"
        );
        // Trust holds at a time: not once the certificate has expired.
        let expired =
            Certificate::parse(&ca.leaf_valid(&["old.example.com"], (-10, -2))).expect("parses");
        assert!(!expired.is_trusted(&trusting, now));

        assert!(matches!(
            TrustRoots::with_pem(b"not pem", file),
            Err(TrustRootsError::Unusable { .. })
        ));
        assert!(matches!(
            TrustRoots::load(Some(Path::new("/nonexistent/ca.pem"))),
            Err(TrustRootsError::Read { .. })
        ));
    }

    #[test]
    fn mismatched_keys_bad_chains_and_expired_certificates_are_refused() {
        let ca = Ca::new("Test CA");
        let a = ca.leaf(&["a.example.com"]);
        let b = ca.leaf(&["b.example.com"]);
        let swapped = PemPair {
            chain: a.chain.clone(),
            key: b.key.clone(),
        };
        assert_eq!(
            Certificate::parse(&swapped).map(|_| ()),
            Err(CertificateError::KeyMismatch)
        );
        let expired = ca.leaf_valid(&["old.example.com"], (-30, -1));
        let cert = Certificate::parse(&expired).expect("parses");
        assert!(matches!(
            cert.check_current(Utc::now()),
            Err(CertificateError::Expired(_))
        ));
        let none = PemPair {
            chain: "hello".into(),
            key: a.key.clone(),
        };
        assert_eq!(
            Certificate::parse(&none).map(|_| ()),
            Err(CertificateError::NoCertificate)
        );
        let no_key = PemPair {
            chain: a.chain.clone(),
            key: "nope".into(),
        };
        assert!(matches!(
            Certificate::parse(&no_key),
            Err(CertificateError::NoKey(_))
        ));
        // The CA first, then the leaf: out of order.
        let leaf_end = a.chain.find("-----END CERTIFICATE-----").expect("end") + 26;
        let reversed = PemPair {
            chain: format!("{}{}", ca.pem, &a.chain[..leaf_end]),
            key: a.key.clone(),
        };
        assert!(matches!(
            Certificate::parse(&reversed),
            Err(CertificateError::ChainOrder { index: 1, next: 2 })
        ));
        let other = Ca::new("Other CA");
        let stranger = PemPair {
            chain: format!("{}{}", &a.chain[..leaf_end], other.pem),
            key: a.key.clone(),
        };
        assert_eq!(
            Certificate::parse(&stranger).map(|_| ()),
            Err(CertificateError::ChainOrder { index: 1, next: 2 })
        );
    }
}
