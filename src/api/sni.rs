//! SNI endpoint endpoints: an app's TLS certificates, checked on upload, answered in Heroku's shape.

use http::StatusCode;

use super::error::ApiError;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::state::{self, AppRef, SniEndpointRef, SniView};
use crate::tls::{Certificate, PemPair, TrustRoots};

/// Checks an upload: the chain parses and is in order, the key matches
/// the certificate, and it has not expired.
fn check(req: types::SniEndpointCreate) -> Result<PemPair, ApiError> {
    let pem = PemPair {
        chain: req.certificate_chain,
        key: req.private_key,
    };
    let cert = Certificate::parse(&pem).map_err(|e| ApiError::Invalid(capitalized(&e)))?;
    cert.check_current(chrono::Utc::now())
        .map_err(|e| ApiError::Invalid(capitalized(&e)))?;
    Ok(pem)
}

/// API messages are sentences.
fn capitalized(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

/// An endpoint as JSON; the custom domains its certificate covers are
/// listed by id, and `ca_signed?` says whether its chain leads to one of
/// `roots`.
pub(super) fn endpoint_json(
    app: &state::App,
    endpoint: &state::SniEndpoint,
    domains: &[state::Domain],
    roots: &TrustRoots,
    rid: &str,
) -> Result<types::SniEndpoint, ApiError> {
    let cert = Certificate::parse(&endpoint.pem).map_err(|e| {
        tracing::error!(request_id = rid, endpoint = %endpoint.id, error = %e, "a stored certificate does not parse");
        ApiError::Internal {
            request_id: rid.to_owned(),
        }
    })?;
    let info = &cert.info;
    Ok(types::SniEndpoint {
        app: types::NamedRef {
            id: app.id,
            name: app.name.to_string(),
        },
        certificate_chain: endpoint.pem.chain.clone(),
        created_at: endpoint.created_at,
        display_name: None,
        domains: domains
            .iter()
            .filter(|d| cert.covers(d.hostname.as_str()))
            .map(|d| d.id)
            .collect(),
        id: endpoint.id,
        name: endpoint.name.clone(),
        ssl_cert: types::SslCert {
            acm: false,
            ca_signed: cert.is_trusted(roots, rustls_pki_types::UnixTime::now()),
            cert_domains: info.names.clone(),
            expires_at: info.expires_at,
            issuer: info.issuer.clone(),
            self_signed: info.self_signed,
            starts_at: info.starts_at,
            subject: info.subject.clone(),
        },
        updated_at: endpoint.updated_at,
    })
}

fn one(
    view: &SniView<state::SniEndpoint>,
    roots: &TrustRoots,
    rid: &str,
) -> Result<types::SniEndpoint, ApiError> {
    endpoint_json(&view.app, &view.endpoints, &view.domains, roots, rid)
}

impl Api {
    /// What `ca_signed?` is checked against. The operator's file is read
    /// for every answer, so a changed file counts at once; one that
    /// cannot be read is logged and left out (the Mozilla roots still
    /// count) rather than failing the request.
    async fn trust_roots(&self) -> TrustRoots {
        let Some(path) = self.config.api.trusted_ca_file.clone() else {
            return TrustRoots::mozilla();
        };
        let loaded = tokio::task::spawn_blocking(move || TrustRoots::load(Some(&path))).await;
        match loaded {
            Ok(Ok(roots)) => roots,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "certificates are checked against the Mozilla roots only");
                TrustRoots::mozilla()
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading api.trusted-ca-file failed");
                TrustRoots::mozilla()
            }
        }
    }

    pub(super) async fn list_sni_endpoints(
        &self,
        app: AppRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let view = self
            .store
            .list_sni_endpoints(app)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let roots = self.trust_roots().await;
        let endpoints = view
            .endpoints
            .iter()
            .map(|e| endpoint_json(&view.app, e, &view.domains, &roots, rid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json(StatusCode::OK, &endpoints))
    }

    pub(super) async fn create_sni_endpoint(
        &self,
        app: AppRef,
        req: types::SniEndpointCreate,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let pem = check(req)?;
        let view = self
            .store
            .add_sni_endpoint(app, pem)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(
            StatusCode::CREATED,
            &one(&view, &self.trust_roots().await, rid)?,
        ))
    }

    pub(super) async fn get_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let view = self
            .store
            .get_sni_endpoint(app, which)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(
            StatusCode::OK,
            &one(&view, &self.trust_roots().await, rid)?,
        ))
    }

    pub(super) async fn update_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
        req: types::SniEndpointCreate,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let pem = check(req)?;
        let view = self
            .store
            .update_sni_endpoint(app, which, pem)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(
            StatusCode::OK,
            &one(&view, &self.trust_roots().await, rid)?,
        ))
    }

    pub(super) async fn delete_sni_endpoint(
        &self,
        app: AppRef,
        which: SniEndpointRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let view = self
            .store
            .remove_sni_endpoint(app, which)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(json(
            StatusCode::OK,
            &one(&view, &self.trust_roots().await, rid)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testing::Ca;

    #[test]
    fn uploads_are_checked_with_messages_that_say_what_to_send() {
        let ca = Ca::new("Test CA");
        let good = ca.leaf(&["www.example.com"]);
        let other = ca.leaf(&["api.example.com"]);
        let req = |chain: &str, key: &str| types::SniEndpointCreate {
            certificate_chain: chain.to_owned(),
            private_key: key.to_owned(),
        };
        assert_eq!(check(req(&good.chain, &good.key)).expect("valid"), good);
        let Err(ApiError::Invalid(message)) = check(req(&good.chain, &other.key)) else {
            panic!("a mismatched key is refused");
        };
        assert!(
            message.starts_with("The private key does not match"),
            "{message}"
        );
        let old = ca.leaf_valid(&["old.example.com"], (-10, -2));
        let Err(ApiError::Invalid(message)) = check(req(&old.chain, &old.key)) else {
            panic!("an expired certificate is refused");
        };
        assert!(message.contains("expired"), "{message}");
    }
}
