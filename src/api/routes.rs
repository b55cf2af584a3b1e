//! The route table: method and path in, a typed route out.
//!
//! Handlers never see a raw path. Identifiers are parsed here into the
//! model's newtypes, so a malformed one is refused before any handler runs.

use http::Method;

use super::error::ApiError;
use crate::model::ProcessType;
use crate::state::{AppRef, ReleaseRef};

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
    /// `GET /apps/{app}/formation`.
    ListFormation(AppRef),
    /// `PATCH /apps/{app}/formation`.
    UpdateFormationBatch(AppRef),
    /// `GET /apps/{app}/formation/{type}`.
    GetFormation(AppRef, ProcessType),
    /// `PATCH /apps/{app}/formation/{type}`.
    UpdateFormation(AppRef, ProcessType),
    /// `GET /apps/{app}/{collection}` for collections Heroku's CLI reads
    /// but Corral does not have yet (add-ons, collaborators, ...): an
    /// empty list for an existing app, so `apps:info` works. (Pipeline
    /// couplings are deliberately absent: Heroku answers 404 for an app
    /// without one, and its CLI relies on that.)
    EmptyCollection(AppRef),
}

impl Route {
    /// Whether the route may be called without a token.
    pub fn is_public(&self) -> bool {
        matches!(self, Route::Health)
    }

    /// Finds the route for a request, or says why there is none.
    pub fn parse(method: &Method, path: &str) -> Result<Route, ApiError> {
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
            ["apps", a, "config-vars"] => match *m {
                Method::GET => Ok(Route::GetConfigVars(app(a)?)),
                Method::PATCH => Ok(Route::UpdateConfigVars(app(a)?)),
                _ => Err(wrong_method("GET, PATCH")),
            },
            ["apps", a, "releases"] => match *m {
                Method::GET => Ok(Route::ListReleases(app(a)?)),
                _ => Err(wrong_method("GET")),
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
            ["apps", a, "addons"
            | "collaborators"
            | "domains"
            | "dynos"
            | "buildpack-installations"
            | "log-drains"
            | "sni-endpoints"] => match *m {
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
    fn parses_typed_routes() {
        let r = Route::parse(&Method::GET, "/apps/demo/releases/v2").expect("route");
        assert!(matches!(
            r,
            Route::GetRelease(AppRef::Name(_), ReleaseRef::Version(_))
        ));
        let r = Route::parse(&Method::PATCH, "/apps/demo/formation/web").expect("route");
        assert!(matches!(r, Route::UpdateFormation(_, ref t) if t.as_str() == "web"));
        let id = uuid::Uuid::new_v4();
        let r = Route::parse(&Method::GET, &format!("/apps/{id}")).expect("route");
        assert_eq!(r, Route::GetApp(AppRef::Id(id)));
        assert!(Route::parse(&Method::GET, "/health")
            .expect("route")
            .is_public());
        assert!(!Route::parse(&Method::GET, "/apps")
            .expect("route")
            .is_public());
    }

    #[test]
    fn refuses_unknown_paths_bad_names_and_methods() {
        assert!(matches!(
            Route::parse(&Method::GET, "/nope"),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/Bad_Name"),
            Err(ApiError::NotFound(m)) if m.contains("app")
        ));
        assert!(matches!(
            Route::parse(&Method::GET, "/apps/demo/releases/latest"),
            Err(ApiError::NotFound(m)) if m.contains("release")
        ));
        assert!(matches!(
            Route::parse(&Method::PUT, "/apps"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }
}
