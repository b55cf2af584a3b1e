//! TLS through corrald: which certificates the API calls trusted, and the
//! router's `listen-tls` presenting them by SNI.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use support::{free_port, ok, TestDaemon};

/// A certificate authority of the test's own, and leaves it signs.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
    der: rustls::pki_types::CertificateDer<'static>,
}

/// A leaf: its chain (leaf, then the CA) and key as PEM, and its DER.
struct Leaf {
    chain: String,
    key: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            chain: format!("{}{}", cert.pem(), self.pem),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A TLS client that trusts this CA only.
    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }
}

/// One HTTPS request to `addr` asking for `name` by SNI: the certificate
/// the server presented and the response's status line, or why not.
fn https_get(
    client: &Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
    name: &str,
) -> Result<(Vec<u8>, String), String> {
    let server_name =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::clone(client), server_name)
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!("GET / HTTP/1.1\r\nhost: {name}\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("TLS to {name}: {e}"))?;
    let mut raw = Vec::new();
    // The router may close without close_notify after `connection: close`.
    let _ = tls.read_to_end(&mut raw);
    let presented = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no certificate")?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.lines().next().unwrap_or_default().to_owned();
    Ok((presented, status))
}

fn sni_body(leaf: &Leaf) -> String {
    serde_json::json!({"certificate_chain": leaf.chain, "private_key": leaf.key}).to_string()
}

#[test]
fn only_certificates_that_lead_to_a_trusted_root_are_called_trusted() {
    let trusted = TestCa::new("Corral Trusted Test CA");
    let untrusted = TestCa::new("Corral Untrusted Test CA");
    let d = TestDaemon::start_with(|config, dir| {
        let file = dir.join("trusted-ca.pem");
        std::fs::write(&file, &trusted.pem).expect("write CA");
        config.api.trusted_ca_file = Some(file);
    });
    ok(&d.corral(&["apps:create", "demo"]));
    let mut signed = std::collections::BTreeMap::new();
    for (host, ca) in [
        ("www.example.com", &untrusted),
        ("api.example.com", &trusted),
    ] {
        ok(&d.corral(&["domains:add", "-a", "demo", host]));
        let r = d.request(
            "POST",
            "/apps/demo/sni-endpoints",
            Some(&sni_body(&ca.leaf(&[host]))),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let ssl = &r.json()["ssl_cert"];
        assert_eq!(ssl["self_signed?"], false, "{ssl}");
        signed.insert(host, ssl["ca_signed?"].clone());
    }
    assert_eq!(
        signed,
        [
            ("api.example.com", serde_json::json!(true)),
            ("www.example.com", serde_json::json!(false)),
        ]
        .into(),
        "only the chain to the trusted CA is CA-signed"
    );

    // `corral certs` says the same in its Trusted column.
    let (out, _) = ok(&d.corral(&["certs", "-a", "demo"]));
    let trusted_of = |host: &str| {
        out.lines()
            .find(|l| l.contains(host))
            .and_then(|l| l.split_whitespace().rev().nth(2))
            .map(str::to_owned)
    };
    assert_eq!(
        trusted_of("api.example.com").as_deref(),
        Some("True"),
        "{out}"
    );
    assert_eq!(
        trusted_of("www.example.com").as_deref(),
        Some("False"),
        "{out}"
    );

    // Without the operator's file only the Mozilla roots count: neither.
    let plain = TestDaemon::start();
    ok(&plain.corral(&["apps:create", "demo"]));
    let r = plain.request(
        "POST",
        "/apps/demo/sni-endpoints",
        Some(&sni_body(&trusted.leaf(&["api.example.com"]))),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["ssl_cert"]["ca_signed?"], false);
}

#[test]
fn the_tls_listener_presents_sni_endpoints_and_the_operators_certificates() {
    let ca = TestCa::new("Corral Router Test CA");
    let base = ca.leaf(&["*.apps.test"]);
    let tls_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let d = TestDaemon::start_with(|config, dir| {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).expect("certs dir");
        std::fs::write(certs.join("_wildcard.apps.test.crt"), &base.chain).expect("crt");
        std::fs::write(certs.join("_wildcard.apps.test.key"), &base.key).expect("key");
        // Not `localhost`: certificate checks refuse `*.localhost` wildcards.
        config.router.base_domain = "apps.test".to_owned();
        config.router.certificates_dir = Some(certs);
        config.router.listen_tls = Some(tls_addr);
    });
    ok(&d.corral(&["apps:create", "demo"]));
    ok(&d.corral(&["domains:add", "-a", "demo", "www.example.com"]));
    let leaf = ca.leaf(&["www.example.com"]);
    let r = d.request("POST", "/apps/demo/sni-endpoints", Some(&sni_body(&leaf)));
    assert_eq!(r.status, 201, "{}", r.body);

    let client = ca.client();
    // The API's certificate reaches the router through the route table,
    // which corrald publishes after the change: wait for it, not a delay.
    let status = support::wait_for(
        "the SNI endpoint's certificate on the TLS listener",
        std::time::Duration::from_secs(30),
        || {
            https_get(&client, tls_addr, "www.example.com")
                .ok()
                .filter(|(cert, _)| *cert == leaf.der)
                .map(|(_, status)| status)
        },
    );
    // No dyno runs here (no systemd): the router itself answers, over TLS,
    // with Heroku's H14 (no web dynos running).
    assert!(status.starts_with("HTTP/1.1 503"), "{status:?}");

    // The app's default name gets the operator's wildcard certificate.
    let (presented, status) =
        https_get(&client, tls_addr, "demo.apps.test").expect("HTTPS to demo.apps.test");
    assert_eq!(
        presented, base.der,
        "the operator's *.apps.test certificate"
    );
    assert!(status.starts_with("HTTP/1.1 503"), "{status:?}");
}
