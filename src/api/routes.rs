//! The route table: method and path in, a typed route out.
//!
//! Handlers never see a raw path. Identifiers are parsed here into the
//! model's newtypes, so a malformed one is refused before any handler runs.

use http::Method;

use super::error::ApiError;
use uuid::Uuid;

use crate::model::{DynoName, ProcessType};
use crate::state::{AppRef, DomainRef, DrainRef, ReleaseRef, SniEndpointRef};

/// Every endpoint the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`, the only endpoint without authentication.
    Health,
    /// `GET /account`.
    Account,
    /// `GET /apps`.
    ListApps,
    /// `POST /apps`.
    CreateApp,
    /// `GET /apps/{app}`.
    GetApp(AppRef),
    /// `PATCH /apps/{app}`.
    UpdateApp(AppRef),
    /// `GET /apps/{app}/settings` (Corral's own: per-app timeouts).
    GetAppSettings(AppRef),
    /// `PATCH /apps/{app}/settings`: a JSON merge patch.
    UpdateAppSettings(AppRef),
    /// `GET /apps/{app}/metrics?minutes=N` (Corral's own): the router's
    /// figures over the last N minutes (1 to 60, default 10).
    AppMetrics {
        /// The app.
        app: AppRef,
        /// The window.
        minutes: u32,
    },
    /// `DELETE /apps/{app}`.
    DeleteApp(AppRef),
    /// `GET /apps/{app}/config-vars`.
    GetConfigVars(AppRef),
    /// `PATCH /apps/{app}/config-vars`.
    UpdateConfigVars(AppRef),
    /// `GET /apps/{app}/releases`.
    ListReleases(AppRef),
    /// `GET /apps/{app}/releases/{id_or_version}`.
    GetRelease(AppRef, ReleaseRef),
    /// `GET /apps/{app}/releases/{id_or_version}/config-vars`: the config
    /// snapshot a release was made with.
    GetReleaseConfigVars(AppRef, ReleaseRef),
    /// `POST /apps/{app}/releases`: deploy a slug or roll back.
    CreateRelease(AppRef),
    /// `POST /apps/{app}/slugs`.
    CreateSlug(AppRef),
    /// `GET /apps/{app}/slugs/{id}`.
    GetSlug(AppRef, Uuid),
    /// `PUT /blobs/slugs/{id}?signature=...`: the upload target of a slug.
    /// Public: the URL is the credential, like a presigned S3 URL.
    UploadSlugBlob {
        /// The slug's id.
        slug: Uuid,
        /// The one-time upload secret.
        signature: String,
    },
    /// `GET /apps/{app}/formation`.
    ListFormation(AppRef),
    /// `PATCH /apps/{app}/formation`.
    UpdateFormationBatch(AppRef),
    /// `GET /apps/{app}/formation/{type}`.
    GetFormation(AppRef, ProcessType),
    /// `PATCH /apps/{app}/formation/{type}`.
    UpdateFormation(AppRef, ProcessType),
    /// `GET /apps/{app}/dynos`.
    ListDynos(AppRef),
    /// `DELETE /apps/{app}/dynos[/{dyno-or-type}]`: restart all dynos,
    /// one, or those of one process type.
    RestartDynos(AppRef, DynoSelector),
    /// `POST /apps/{app}/dynos/{dyno-or-type}/actions/stop` (and
    /// `/apps/{app}/formations/{type}/actions/stop`; restart also answers
    /// `DELETE /apps/{app}/formations/{type}`).
    StopDynos(AppRef, DynoSelector),
    /// `POST /apps/{app}/dynos`: start a one-off dyno.
    CreateDyno(AppRef),
    /// `GET /apps/{app}/dynos/{dyno}/attach?secret=...` with `Upgrade:
    /// corral-attach`: connect to a one-off dyno created with `attach`.
    /// Public: the one-time URL is the credential.
    AttachDyno {
        /// The app.
        app: AppRef,
        /// The one-off dyno.
        dyno: DynoName,
        /// The URL's secret.
        secret: String,
    },
    /// `POST /apps/{app}/log-sessions`: a URL streaming the app's logs.
    CreateLogSession(AppRef),
    /// `GET /apps/{app}/builds`.
    ListBuilds(AppRef),
    /// `GET /apps/{app}/builds/{id}`.
    GetBuild(AppRef, Uuid),
    /// `DELETE /apps/{app}/build-cache`.
    PurgeBuildCache(AppRef),
    /// `GET /apps/{app}/buildpack-installations`.
    ListBuildpacks(AppRef),
    /// `PUT /apps/{app}/buildpack-installations`: replace the list.
    SetBuildpacks(AppRef),
    /// `GET /apps/{app}/domains`: the app's default domain, then its
    /// custom ones.
    ListDomains(AppRef),
    /// `POST /apps/{app}/domains`: add a custom domain.
    CreateDomain(AppRef),
    /// `GET /apps/{app}/domains/{id_or_hostname}`.
    GetDomain(AppRef, DomainRef),
    /// `DELETE /apps/{app}/domains/{id_or_hostname}`: remove a custom domain.
    DeleteDomain(AppRef, DomainRef),
    /// `GET /apps/{app}/log-drains`.
    ListLogDrains(AppRef),
    /// `POST /apps/{app}/log-drains`: add a drain.
    CreateLogDrain(AppRef),
    /// `GET /apps/{app}/log-drains/{id_or_url_or_token}`.
    GetLogDrain(AppRef, DrainRef),
    /// `DELETE /apps/{app}/log-drains/{id_or_url_or_token}`.
    DeleteLogDrain(AppRef, DrainRef),
    /// `GET /apps/{app}/sni-endpoints`.
    ListSniEndpoints(AppRef),
    /// `POST /apps/{app}/sni-endpoints`: add a certificate and key.
    CreateSniEndpoint(AppRef),
    /// `GET /apps/{app}/sni-endpoints/{id_or_name}`.
    GetSniEndpoint(AppRef, SniEndpointRef),
    /// `PATCH /apps/{app}/sni-endpoints/{id_or_name}`: replace the
    /// certificate and key.
    UpdateSniEndpoint(AppRef, SniEndpointRef),
    /// `DELETE /apps/{app}/sni-endpoints/{id_or_name}`.
    DeleteSniEndpoint(AppRef, SniEndpointRef),
    /// `GET /apps/{app}/{collection}` for collections Heroku's CLI reads
    /// but Corral does not have yet (add-ons, collaborators, ...): an
    /// empty list for an existing app, so `apps:info` works. (Pipeline
    /// couplings are deliberately absent: Heroku answers 404 for an app
    /// without one, and its CLI relies on that.)
    EmptyCollection(AppRef),
}

/// Which dynos a restart or stop is about: Heroku's paths take a dyno
/// name (`web.1`) or a process type (`web`) in the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynoSelector {
    /// Every dyno of the app.
    All,
    /// The dynos of one process type.
    Type(ProcessType),
    /// One dyno.
    Dyno(DynoName),
}

impl DynoSelector {
    fn parse(s: &str) -> Result<Self, ApiError> {
        if let Ok(dyno) = DynoName::parse(s) {
            return Ok(Self::Dyno(dyno));
        }
        ProcessType::parse(s)
            .map(Self::Type)
            .map_err(|_| ApiError::NotFound("Couldn't find that dyno.".to_owned()))
    }

    fn parse_type(s: &str) -> Result<Self, ApiError> {
        ProcessType::parse(s)
            .map(Self::Type)
            .map_err(|_| ApiError::NotFound("Couldn't find that process type.".to_owned()))
    }

    /// Whether `dyno` is selected.
    pub fn matches(&self, dyno: &DynoName) -> bool {
        match self {
            Self::All => true,
            Self::Type(t) => dyno.process_type() == t,
            Self::Dyno(d) => d == dyno,
        }
    }
}

/// The `minutes` of a metrics query: 1 to 60, default 10.
fn metrics_minutes(query: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("minutes="))
    else {
        return Ok(10);
    };
    value
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=crate::router::metrics::RETAIN_MINUTES).contains(m))
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "minutes must be a whole number from 1 to {}, not {value:?}",
                crate::router::metrics::RETAIN_MINUTES
            ))
        })
}

impl Route {
    /// Whether the route may be called without a token.
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            Route::Health | Route::UploadSlugBlob { .. } | Route::AttachDyno { .. }
        )
    }

    /// Finds the route for a request, or says why there is none.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Route, ApiError> {
        let segments: Vec<&str> = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        let not_found = || ApiError::NotFound("Not found.".to_owned());
        let app = |s: &str| {
            AppRef::parse(s).map_err(|_| ApiError::NotFound("Couldn't find that app.".to_owned()))
        };
        let release = |s: &str| {
            ReleaseRef::parse(s)
                .map_err(|_| ApiError::NotFound("Couldn't find that release.".to_owned()))
        };
        let dyno = |s: &str| {
            DynoName::parse(s)
                .map_err(|_| ApiError::NotFound("Couldn't find that dyno.".to_owned()))
        };
        let domain = |s: &str| {
            // A wildcard's `*` may arrive percent-encoded; it is the one
            // character of a hostname that clients encode.
            DomainRef::parse(&s.replace("%2A", "*").replace("%2a", "*"))
                .map_err(|_| ApiError::NotFound("Couldn't find that domain.".to_owned()))
        };
        let wrong_method = |allowed: &'static str| ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed,
        };
        let m = method;
        match segments.as_slice() {
            ["health"] => match *m {
                Method::GET => Ok(Route::Health),
                _ => Err(wrong_method("GET")),
            },
            ["account"] => match *m {
                Method::GET => Ok(Route::Account),
                _ => Err(wrong_method("GET")),
            },
            // Heroku's CLI lists apps through the user's collection; a Corral
            // host has one tenant, so it is the same list.
            ["users", "~", "apps"] => match *m {
                Method::GET => Ok(Route::ListApps),
                _ => Err(wrong_method("GET")),
            },
            ["apps"] => match *m {
                Method::GET => Ok(Route::ListApps),
                Method::POST => Ok(Route::CreateApp),
                _ => Err(wrong_method("GET, POST")),
            },
            ["apps", a] => match *m {
                Method::GET => Ok(Route::GetApp(app(a)?)),
                Method::PATCH => Ok(Route::UpdateApp(app(a)?)),
                Method::DELETE => Ok(Route::DeleteApp(app(a)?)),
                _ => Err(wrong_method("GET, PATCH, DELETE")),
            },
            ["apps", a, "settings"] => match *m {
                Method::GET => Ok(Route::GetAppSettings(app(a)?)),
                Method::PATCH => Ok(Route::UpdateAppSettings(app(a)?)),
                _ => Err(wrong_method("GET, PATCH")),
            },
            ["apps", a, "metrics"] => match *m {
                Method::GET => Ok(Route::AppMetrics {
                    app: app(a)?,
                    minutes: metrics_minutes(query)?,
                }),
                _ => Err(wrong_method("GET")),
            },
            ["apps", a, "config-vars"] => match *m {
                Method::GET => Ok(Route::GetConfigVars(app(a)?)),
                Method::PATCH => Ok(Route::UpdateConfigVars(app(a)?)),
                _ => Err(wrong_method("GET, PATCH")),
            },
            ["apps", a, "releases"] => match *m {
                Method::GET => Ok(Route::ListReleases(app(a)?)),
                Method::POST => Ok(Route::CreateRelease(app(a)?)),
                _ => Err(wrong_method("GET, POST")),
            },
            ["apps", a, "slugs"] => match *m {
                Method::POST => Ok(Route::CreateSlug(app(a)?)),
                _ => Err(wrong_method("POST")),
            },
            ["apps", a, "slugs", id] => match *m {
                Method::GET => Ok(Route::GetSlug(
                    app(a)?,
                    Uuid::parse_str(id)
                        .map_err(|_| ApiError::NotFound("Couldn't find that slug.".to_owned()))?,
                )),
                _ => Err(wrong_method("GET")),
            },
            ["apps", a, "dynos"] => match *m {
                Method::GET => Ok(Route::ListDynos(app(a)?)),
                Method::POST => Ok(Route::CreateDyno(app(a)?)),
                Method::DELETE => Ok(Route::RestartDynos(app(a)?, DynoSelector::All)),
                _ => Err(wrong_method("GET, POST, DELETE")),
            },
            ["apps", a, "dynos", d] => match *m {
                Method::DELETE => Ok(Route::RestartDynos(app(a)?, DynoSelector::parse(d)?)),
                _ => Err(wrong_method("DELETE")),
            },
            // Heroku's per-type forms (the CLI's `--process-type`).
            ["apps", a, "formations", t] => match *m {
                Method::DELETE => Ok(Route::RestartDynos(app(a)?, DynoSelector::parse_type(t)?)),
                _ => Err(wrong_method("DELETE")),
            },
            ["apps", a, "formations", t, "actions", "stop"] => match *m {
                Method::POST => Ok(Route::StopDynos(app(a)?, DynoSelector::parse_type(t)?)),
                _ => Err(wrong_method("POST")),
            },
            ["apps", a, "dynos", d, "actions", "stop"] => match *m {
                Method::POST => Ok(Route::StopDynos(app(a)?, DynoSelector::parse(d)?)),
                _ => Err(wrong_method("POST")),
            },
            ["apps", a, "dynos", d, "attach"] => match *m {
                Method::GET => {
                    let secret = query
                        .unwrap_or("")
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("secret="))
                        .filter(|s| !s.is_empty())
                        .ok_or_else(not_found)?;
                    Ok(Route::AttachDyno {
                        app: app(a)?,
                        dyno: dyno(d)?,
                        secret: secret.to_owned(),
                    })
                }
                _ => Err(wrong_method("GET")),
            },
            ["blobs", "slugs", id] => match *m {
                Method::PUT => {
                    let slug = Uuid::parse_str(id).map_err(|_| not_found())?;
                    let signature = query
                        .unwrap_or("")
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("signature="))
                        .filter(|s| !s.is_empty())
                        .ok_or_else(not_found)?;
                    Ok(Route::UploadSlugBlob {
                        slug,
                        signature: signature.to_owned(),
                    })
                }
                _ => Err(wrong_method("PUT")),
            },
            ["apps", a, "releases", r] => match *m {
                Method::GET => Ok(Route::GetRelease(app(a)?, release(r)?)),
                _ => Err(wrong_method("GET")),
            },
            ["apps", a, "releases", r, "config-vars"] => match *m {
                Method::GET => Ok(Route::GetReleaseConfigVars(app(a)?, release(r)?)),
                _ => Err(wrong_method("GET")),
            },
            ["apps", a, "formation"] => match *m {
                Method::GET => Ok(Route::ListFormation(app(a)?)),
                Method::PATCH => Ok(Route::UpdateFormationBatch(app(a)?)),
                _ => Err(wrong_method("GET, PATCH")),
            },
            ["apps", a, "formation", t] => {
                let t = ProcessType::parse(t).map_err(|_| {
                    ApiError::NotFound("Couldn't find that process type.".to_owned())
                })?;
                match *m {
                    Method::GET => Ok(Route::GetFormation(app(a)?, t)),
                    Method::PATCH => Ok(Route::UpdateFormation(app(a)?, t)),
                    _ => Err(wrong_method("GET, PATCH")),
                }
            }
            ["apps", a, "log-sessions"] => match *m {
                Method::POST => Ok(Route::CreateLogSession(app(a)?)),
                _ => Err(wrong_method("POST")),
            },
            ["apps", a, "builds"] => match *m {
                Method::GET => Ok(Route::ListBuilds(app(a)?)),
                _ => Err(wrong_method("GET (builds start with git push)")),
            },
            ["apps", a, "builds", b] => match *m {
                Method::GET => Ok(Route::GetBuild(
                    app(a)?,
                    Uuid::parse_str(b)
                        .map_err(|_| ApiError::NotFound("Couldn't find that build.".to_owned()))?,
                )),
                _ => Err(wrong_method("GET")),
            },
            ["apps", a, "build-cache"] => match *m {
                Method::DELETE => Ok(Route::PurgeBuildCache(app(a)?)),
                _ => Err(wrong_method("DELETE")),
            },
            ["apps", a, "buildpack-installations"] => match *m {
                Method::GET => Ok(Route::ListBuildpacks(app(a)?)),
                Method::PUT => Ok(Route::SetBuildpacks(app(a)?)),
                _ => Err(wrong_method("GET, PUT")),
            },
            ["apps", a, "domains"] => match *m {
                Method::GET => Ok(Route::ListDomains(app(a)?)),
                Method::POST => Ok(Route::CreateDomain(app(a)?)),
                _ => Err(wrong_method("GET, POST")),
            },
            ["apps", a, "domains", d] => match *m {
                Method::GET => Ok(Route::GetDomain(app(a)?, domain(d)?)),
                Method::DELETE => Ok(Route::DeleteDomain(app(a)?, domain(d)?)),
                _ => Err(wrong_method("GET, DELETE")),
            },
            ["apps", a, "sni-endpoints"] => match *m {
                Method::GET => Ok(Route::ListSniEndpoints(app(a)?)),
                Method::POST => Ok(Route::CreateSniEndpoint(app(a)?)),
                _ => Err(wrong_method("GET, POST")),
            },
            ["apps", a, "sni-endpoints", e] => {
                let e = SniEndpointRef::parse(e).map_err(|_| {
                    ApiError::NotFound("Couldn't find that SNI endpoint.".to_owned())
                })?;
                match *m {
                    Method::GET => Ok(Route::GetSniEndpoint(app(a)?, e)),
                    Method::PATCH => Ok(Route::UpdateSniEndpoint(app(a)?, e)),
                    Method::DELETE => Ok(Route::DeleteSniEndpoint(app(a)?, e)),
                    _ => Err(wrong_method("GET, PATCH, DELETE")),
                }
            }
            ["apps", a, "log-drains"] => match *m {
                Method::GET => Ok(Route::ListLogDrains(app(a)?)),
                Method::POST => Ok(Route::CreateLogDrain(app(a)?)),
                _ => Err(wrong_method("GET, POST")),
            },
            ["apps", a, "log-drains", d] => {
                // A URL arrives percent-encoded (its slashes must be).
                let d = crate::logs::drain::url::percent_decode(d)
                    .map_err(|_| ApiError::NotFound("Couldn't find that log drain.".to_owned()))?;
                match *m {
                    Method::GET => Ok(Route::GetLogDrain(app(a)?, DrainRef::parse(&d))),
                    Method::DELETE => Ok(Route::DeleteLogDrain(app(a)?, DrainRef::parse(&d))),
                    _ => Err(wrong_method("GET, DELETE")),
                }
            }
            ["apps", a, "addons" | "collaborators"] => match *m {
                Method::GET => Ok(Route::EmptyCollection(app(a)?)),
                _ => Err(not_found()),
            },
            _ => Err(not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_drains_are_named_by_id_or_encoded_url() {
        let r = Route::parse(
            &Method::DELETE,
            "/apps/demo/log-drains/syslog%3A%2F%2Flogs.example.com%3A514",
            None,
        )
        .expect("route");
        assert!(matches!(
            r,
            Route::DeleteLogDrain(_, DrainRef::Key(ref k)) if k == "syslog://logs.example.com:514"
        ));
        let id = uuid::Uuid::new_v4();
        let r = Route::parse(&Method::GET, &format!("/apps/demo/log-drains/{id}"), None)
            .expect("route");
        assert_eq!(
            r,
            Route::GetLogDrain(
                AppRef::Name(crate::model::AppName::parse("demo").expect("name")),
                DrainRef::Id(id)
            )
        );
        assert!(matches!(
            Route::parse(&Method::POST, "/apps/demo/log-drains", None),
            Ok(Route::CreateLogDrain(_))
        ));
    }

    #[test]
    fn parses_typed_routes() {
        let metrics = |q| Route::parse(&Method::GET, "/apps/demo/metrics", q);
        assert!(matches!(
            metrics(None),
            Ok(Route::AppMetrics { minutes: 10, .. })
        ));
        assert!(matches!(
            metrics(Some("minutes=60")),
            Ok(Route::AppMetrics { minutes: 60, .. })
        ));
        for bad in ["minutes=0", "minutes=61", "minutes=x", "minutes="] {
            assert!(metrics(Some(bad)).is_err(), "{bad}");
        }
        let r = Route::parse(&Method::GET, "/apps/demo/releases/v2", None).expect("route");
        assert!(matches!(
            r,
            Route::GetRelease(AppRef::Name(_), ReleaseRef::Version(_))
        ));
        let r = Route::parse(&Method::PATCH, "/apps/demo/formation/web", None).expect("route");
        assert!(matches!(r, Route::UpdateFormation(_, ref t) if t.as_str() == "web"));
        let id = uuid::Uuid::new_v4();
        let r = Route::parse(&Method::GET, &format!("/apps/{id}"), None).expect("route");
        assert_eq!(r, Route::GetApp(AppRef::Id(id)));
        assert!(Route::parse(&Method::GET, "/health", None)
            .expect("route")
            .is_public());
        assert!(!Route::parse(&Method::GET, "/apps", None)
            .expect("route")
            .is_public());
        assert_eq!(
            Route::parse(&Method::GET, "/users/~/apps", None).expect("route"),
            Route::ListApps
        );
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/demo/releases/3/config-vars", None),
            Ok(Route::GetReleaseConfigVars(_, ReleaseRef::Version(_)))
        ));
        assert!(Route::parse(&Method::GET, "/apps/demo/pipeline-couplings", None).is_err());
    }

    #[test]
    fn dyno_actions_take_a_dyno_or_a_process_type() {
        let route = |m: &Method, p: &str| Route::parse(m, p, None).expect("route");
        let Route::RestartDynos(_, which) = route(&Method::DELETE, "/apps/demo/dynos/web.1") else {
            panic!("restart");
        };
        assert_eq!(
            which,
            DynoSelector::Dyno(DynoName::parse("web.1").expect("dyno"))
        );
        let Route::RestartDynos(_, which) = route(&Method::DELETE, "/apps/demo/formations/web")
        else {
            panic!("restart a type");
        };
        assert!(which.matches(&DynoName::parse("web.3").expect("dyno")));
        assert!(!which.matches(&DynoName::parse("worker.1").expect("dyno")));
        assert!(matches!(
            route(&Method::POST, "/apps/demo/dynos/run.4211/actions/stop"),
            Route::StopDynos(_, DynoSelector::Dyno(_))
        ));
        assert!(matches!(
            route(&Method::POST, "/apps/demo/formations/worker/actions/stop"),
            Route::StopDynos(_, DynoSelector::Type(_))
        ));
        assert!(matches!(
            route(&Method::DELETE, "/apps/demo/dynos"),
            Route::RestartDynos(_, DynoSelector::All)
        ));
        assert!(Route::parse(&Method::DELETE, "/apps/demo/dynos/Web.1", None).is_err());
    }

    #[test]
    fn blob_uploads_need_a_signature_and_are_public() {
        let id = uuid::Uuid::new_v4();
        let path = format!("/blobs/slugs/{id}");
        let r = Route::parse(&Method::PUT, &path, Some("x=1&signature=abc")).expect("route");
        assert_eq!(
            r,
            Route::UploadSlugBlob {
                slug: id,
                signature: "abc".to_owned()
            }
        );
        assert!(r.is_public());
        for query in [None, Some(""), Some("signature="), Some("sig=abc")] {
            assert!(
                Route::parse(&Method::PUT, &path, query).is_err(),
                "{query:?}"
            );
        }
        assert!(
            Route::parse(&Method::PUT, "/blobs/slugs/not-a-uuid", Some("signature=a")).is_err()
        );
    }

    #[test]
    fn one_off_dyno_routes() {
        assert!(matches!(
            Route::parse(&Method::POST, "/apps/demo/dynos", None),
            Ok(Route::CreateDyno(AppRef::Name(_)))
        ));
        assert!(matches!(
            Route::parse(&Method::POST, "/apps/demo/dynos/run.4211/actions/stop", None),
            Ok(Route::StopDynos(_, DynoSelector::Dyno(ref d))) if d.to_string() == "run.4211"
        ));
        let attach = Route::parse(
            &Method::GET,
            "/apps/demo/dynos/run.4211/attach",
            Some("secret=abc"),
        )
        .expect("route");
        assert!(
            matches!(&attach, Route::AttachDyno { dyno, secret, .. } if dyno.to_string() == "run.4211" && secret == "abc")
        );
        assert!(attach.is_public());
        for query in [None, Some("secret="), Some("signature=abc")] {
            assert!(
                Route::parse(&Method::GET, "/apps/demo/dynos/run.1/attach", query).is_err(),
                "{query:?}"
            );
        }
        assert!(Route::parse(
            &Method::GET,
            "/apps/demo/dynos/nope/attach",
            Some("secret=a")
        )
        .is_err());
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/demo/dynos/run.1/actions/stop", None),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn domain_routes_take_an_id_or_a_hostname() {
        let route = |m: &Method, p: &str| Route::parse(m, p, None);
        assert!(matches!(
            route(&Method::GET, "/apps/demo/domains"),
            Ok(Route::ListDomains(AppRef::Name(_)))
        ));
        assert!(matches!(
            route(&Method::POST, "/apps/demo/domains"),
            Ok(Route::CreateDomain(AppRef::Name(_)))
        ));
        let id = uuid::Uuid::new_v4();
        assert!(matches!(
            route(&Method::DELETE, &format!("/apps/demo/domains/{id}")),
            Ok(Route::DeleteDomain(_, DomainRef::Id(found))) if found == id
        ));
        for (path, host) in [
            ("/apps/demo/domains/WWW.Example.com", "www.example.com"),
            ("/apps/demo/domains/example.com.", "example.com"),
            ("/apps/demo/domains/*.example.com", "*.example.com"),
            ("/apps/demo/domains/%2A.example.com", "*.example.com"),
        ] {
            let Ok(Route::GetDomain(_, DomainRef::Hostname(h))) = route(&Method::GET, path) else {
                panic!("{path}");
            };
            assert_eq!(h.as_str(), host, "{path}");
        }
        assert!(matches!(
            route(&Method::GET, "/apps/demo/domains/not_a_host"),
            Err(ApiError::NotFound(m)) if m.contains("domain")
        ));
        assert!(matches!(
            route(&Method::PATCH, "/apps/demo/domains/www.example.com"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&Method::PUT, "/apps/demo/domains"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        // Heroku's domains:add asks for SNI endpoints first.
        assert!(matches!(
            route(&Method::GET, "/apps/demo/sni-endpoints"),
            Ok(Route::ListSniEndpoints(_))
        ));
        assert!(matches!(
            route(&Method::PATCH, "/apps/demo/sni-endpoints/quiet-river-4821"),
            Ok(Route::UpdateSniEndpoint(_, SniEndpointRef::Name(n))) if n == "quiet-river-4821"
        ));
        let id = uuid::Uuid::new_v4();
        assert!(matches!(
            route(&Method::DELETE, &format!("/apps/demo/sni-endpoints/{id}")),
            Ok(Route::DeleteSniEndpoint(_, SniEndpointRef::Id(found))) if found == id
        ));
        assert!(matches!(
            route(&Method::GET, "/apps/demo/sni-endpoints/Not_A_Name"),
            Err(ApiError::NotFound(m)) if m.contains("SNI endpoint")
        ));
        assert!(matches!(
            route(&Method::PUT, "/apps/demo/sni-endpoints"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn refuses_unknown_paths_bad_names_and_methods() {
        assert!(matches!(
            Route::parse(&Method::GET, "/nope", None),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/Bad_Name", None),
            Err(ApiError::NotFound(m)) if m.contains("app")
        ));
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/demo/releases/latest", None),
            Err(ApiError::NotFound(m)) if m.contains("release")
        ));
        assert!(matches!(
            Route::parse(&Method::PUT, "/apps", None),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }
}
