//! TLS through corrald: which certificates the API calls trusted.

mod support;

use support::{ok, TestDaemon};

/// A certificate authority of the test's own, and leaves it signs.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

/// A leaf: its chain (leaf, then the CA) and key as PEM.
struct Leaf {
    chain: String,
    key: String,
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
        }
    }
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
