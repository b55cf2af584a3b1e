//! Domain endpoints: an app's default domain, derived, and its custom ones, stored.

use http::StatusCode;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use super::range::{RangeFields, SortKey};
use super::respond::{json, list, ApiResponse};
use super::{types, Api};
use crate::model::Hostname;
use crate::state::{self, AppRef, DomainRef, SniEndpointRef};
use crate::tls::Certificate;

/// `kind` of the app's default domain (Heroku's word for it).
const KIND_DEFAULT: &str = "heroku";
/// `kind` of an added domain.
const KIND_CUSTOM: &str = "custom";

/// Range fields of the domain list. The default domain sorts before every
/// custom one whatever the field, so it heads the list (and the first page)
/// in ascending order, and no bound taken from a custom domain can select
/// it again on a later page.
const FIELDS: RangeFields<types::Domain> = &[
    ("hostname", |d| pinned(d, d.hostname.clone())),
    ("id", |d| pinned(d, d.id.to_string())),
];

fn pinned(d: &types::Domain, key: String) -> SortKey {
    if d.kind == KIND_DEFAULT {
        SortKey::Str(String::new())
    } else {
        SortKey::Str(key)
    }
}

/// The id of an app's default domain. It is not stored, yet clients keep
/// ids (Heroku's CLI polls a domain by id), so it is derived from the app's
/// id: stable across renames and restarts, different for every app.
fn default_domain_id(app_id: Uuid) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"corral default domain\0")
        .chain_update(app_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl Api {
    /// `<app>.<base-domain>`, where the router serves every app.
    fn default_hostname(&self, app: &state::App) -> String {
        format!("{}.{}", app.name, self.config.router.base_domain)
    }

    fn default_domain_json(&self, app: &state::App) -> types::Domain {
        let hostname = self.default_hostname(app);
        types::Domain {
            acm_status: None,
            acm_status_reason: None,
            app: types::NamedRef {
                id: app.id,
                name: app.name.to_string(),
            },
            cname: None,
            created_at: app.created_at,
            href: format!("http://{hostname}"),
            hostname,
            id: default_domain_id(app.id),
            kind: KIND_DEFAULT.to_owned(),
            status: "succeeded".to_owned(),
            sni_endpoint: None,
            // A rename changes the hostname; the app's own stamp covers it.
            updated_at: app.updated_at,
        }
    }

    /// The app's SNI endpoints with their certificates, to tell which one
    /// serves each domain. One that does not parse links no domain.
    async fn endpoints(
        &self,
        app: &state::App,
        rid: &str,
    ) -> Result<Vec<(types::NamedRef, Certificate)>, ApiError> {
        let id = AppRef::Id(app.id);
        let view = self
            .store
            .list_sni_endpoints(id)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        Ok(view
            .endpoints
            .iter()
            .filter_map(|e| {
                let cert = Certificate::parse(&e.pem).ok()?;
                Some((
                    types::NamedRef {
                        id: e.id,
                        name: e.name.clone(),
                    },
                    cert,
                ))
            })
            .collect())
    }

    fn custom_domain_json(
        &self,
        app: &state::App,
        d: &state::Domain,
        endpoints: &[(types::NamedRef, Certificate)],
    ) -> types::Domain {
        types::Domain {
            acm_status: None,
            acm_status_reason: None,
            app: types::NamedRef {
                id: app.id,
                name: app.name.to_string(),
            },
            // The router answers for every hostname on the same address as
            // for the app's default one, so that name is the DNS target.
            cname: Some(self.default_hostname(app)),
            created_at: d.created_at,
            hostname: d.hostname.to_string(),
            href: format!("http://{}", d.hostname),
            id: d.id,
            kind: KIND_CUSTOM.to_owned(),
            status: "succeeded".to_owned(),
            sni_endpoint: endpoints
                .iter()
                .find(|(_, cert)| cert.covers(d.hostname.as_str()))
                .map(|(endpoint, _)| endpoint.clone()),
            updated_at: d.updated_at,
        }
    }

    pub(super) async fn list_domains(
        &self,
        app: AppRef,
        range: Option<&str>,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let (app, custom) = self
            .store
            .list_domains(app)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let mut domains = Vec::with_capacity(custom.len() + 1);
        domains.push(self.default_domain_json(&app));
        let endpoints = self.endpoints(&app, rid).await?;
        domains.extend(
            custom
                .iter()
                .map(|d| self.custom_domain_json(&app, d, &endpoints)),
        );
        list(domains, range, FIELDS)
    }

    pub(super) async fn create_domain(
        &self,
        app: AppRef,
        req: types::DomainCreate,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let hostname = Hostname::parse_custom(&req.hostname, &self.config.router.base_domain)?;
        if let Some(given) = req.sni_endpoint {
            // The router picks certificates by name, so the link is only
            // checked: it must be one of this app's endpoints.
            let unknown = || {
                ApiError::Invalid(format!(
                    "The app has no SNI endpoint {given:?}; leave sni_endpoint out (certificates are picked by hostname), or see `corral certs`."
                ))
            };
            let which = SniEndpointRef::parse(&given).map_err(|_| unknown())?;
            let app = app.clone();
            match self.store.get_sni_endpoint(app, which).await {
                Ok(_) => {}
                Err(state::StoreError::NotFound("SNI endpoint")) => return Err(unknown()),
                Err(e) => return Err(ApiError::from_store(e, rid)),
            }
        }
        let (app, domain) = self
            .store
            .add_domain(app, hostname)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let endpoints = self.endpoints(&app, rid).await?;
        Ok(json(
            StatusCode::CREATED,
            &self.custom_domain_json(&app, &domain, &endpoints),
        ))
    }

    pub(super) async fn get_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let wanted = domain.clone();
        let (app, found) = self
            .store
            .get_domain(app, wanted)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        match found {
            Some(d) => {
                let endpoints = self.endpoints(&app, rid).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.custom_domain_json(&app, &d, &endpoints),
                ))
            }
            None if self.is_default(&app, &domain) => {
                Ok(json(StatusCode::OK, &self.default_domain_json(&app)))
            }
            None => Err(not_found()),
        }
    }

    pub(super) async fn delete_domain(
        &self,
        app: AppRef,
        domain: DomainRef,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let wanted = domain.clone();
        let (app, removed) = self
            .store
            .remove_domain(app, wanted)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        match removed {
            Some(d) => {
                let endpoints = self.endpoints(&app, rid).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.custom_domain_json(&app, &d, &endpoints),
                ))
            }
            None if self.is_default(&app, &domain) => Err(ApiError::Invalid(format!(
                "{} is the default domain of {} and cannot be removed; only custom domains can.",
                self.default_hostname(&app),
                app.name
            ))),
            None => Err(not_found()),
        }
    }

    fn is_default(&self, app: &state::App, domain: &DomainRef) -> bool {
        domain.matches(default_domain_id(app.id), &self.default_hostname(app))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("Couldn't find that domain.".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_domain_ids_are_stable_and_per_app() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(default_domain_id(a), default_domain_id(a));
        assert_ne!(default_domain_id(a), default_domain_id(b));
        assert_ne!(default_domain_id(a), a);
        assert_eq!(
            default_domain_id(a).get_version(),
            Some(uuid::Version::Custom)
        );
    }
}
