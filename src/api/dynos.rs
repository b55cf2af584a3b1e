//! `GET /apps/{app}/dynos`, restarts and one-off dynos: systemd's view of an app's dynos.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use super::error::ApiError;
use super::request::base_url;
use super::respond::{json, ApiResponse};
use super::routes::DynoSelector;
use super::{types, Api};
use crate::attach::UPGRADE_PROTOCOL;
use crate::dynos::dyno_id;
use crate::dynos::oneoff::{is_one_off, Created, RUN_TYPE};
use crate::dynos::OneOffRequest;
use crate::model::{ConfigVarName, DynoName};
use crate::state::{self, AppRef};

impl Api {
    pub(super) async fn list_dynos(&self, app: AppRef, rid: &str) -> Result<ApiResponse, ApiError> {
        let (found, records) = self
            .store
            .app_dynos(app)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        let mut dynos = Vec::with_capacity(records.len());
        for record in records {
            let status = self.systemd.unit_status(&record.unit).await;
            let running = status
                .as_ref()
                .ok()
                .and_then(Option::as_ref)
                .filter(|s| s.active_state == "active");
            // The usage read also finds CPU time where systemd has none
            // (cgroup v1 hosts that mount cpuacct apart).
            let usage = match running {
                Some(_) => self.systemd.unit_usage(&record.unit).await.ok().flatten(),
                None => None,
            };
            let memory_bytes = usage.as_ref().and_then(|u| u.memory_current);
            let cpu_seconds = usage
                .as_ref()
                .and_then(|u| u.cpu_usage_nsec)
                .map(|ns| ns as f64 / 1e9);
            let load_avg_1m = running
                .and(self.runtime.as_ref())
                .and_then(|r| r.latest(&record.unit))
                .map(|f| f.load_avg_1m);
            let state = match status {
                Ok(Some(status)) => match status.active_state.as_str() {
                    "active" => "up",
                    "activating" => "starting",
                    "deactivating" => "down",
                    _ if is_one_off(&record.name) => "complete",
                    _ => "crashed",
                },
                // Waiting for its client to attach.
                Ok(None) if is_one_off(&record.name) => "starting",
                Ok(None) => "crashed",
                Err(_) => "unknown",
            };
            dynos.push(types::Dyno {
                attach_url: None,
                command: record.command.clone(),
                created_at: record.started_at,
                id: dyno_id(&record.unit),
                name: record.name.to_string(),
                release: types::ReleaseRef {
                    id: None,
                    version: record.release.0,
                },
                app: types::NamedRef {
                    id: found.id,
                    name: found.name.to_string(),
                },
                size: record.size.to_string(),
                state: state.to_owned(),
                process_type: record.name.process_type().to_string(),
                updated_at: record.started_at,
                memory_bytes,
                memory_quota_bytes: Some(
                    u64::from(self.sizes().memory_mb(&record.size)) * 1024 * 1024,
                ),
                cpu_seconds,
                load_avg_1m,
            });
        }
        Ok(json(StatusCode::OK, &dynos))
    }

    /// Restarts the selected formation dynos through the dyno manager (not
    /// counted as crashes); a selected one-off is stopped. `ps:stop` of a
    /// formation dyno is a restart too, as on Heroku. `verb` is the
    /// platform's log word: "Restarting" or "Stopping".
    pub(super) async fn stop_dynos(
        &self,
        app: AppRef,
        which: DynoSelector,
        verb: &str,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        let (found, records) = self
            .store
            .app_dynos(app)
            .await
            .map_err(|e| ApiError::from_store(e, rid))?;
        if let DynoSelector::Dyno(dyno) = &which {
            if !is_one_off(dyno) {
                return self
                    .stop_formation_dynos(found, records, &which, verb)
                    .await;
            }
            // A one-off cannot start over: restarting one stops it.
            self.oneoffs
                .stop(&found.name, dyno)
                .await
                .map_err(|e| ApiError::from_oneoff(e, rid))?;
            return Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})));
        }
        self.stop_formation_dynos(found, records, &which, verb)
            .await
    }

    /// Restarting all dynos leaves one-offs running: someone's console or
    /// migration should not die with a restart of the formation.
    async fn stop_formation_dynos(
        &self,
        found: crate::state::App,
        records: Vec<state::DynoRecord>,
        which: &DynoSelector,
        verb: &str,
    ) -> Result<ApiResponse, ApiError> {
        let chosen: Vec<_> = records
            .into_iter()
            .filter(|r| which.matches(&r.name) && !is_one_off(&r.name))
            .collect();
        if *which != DynoSelector::All && chosen.is_empty() {
            return Err(ApiError::NotFound("Couldn't find that dyno.".to_owned()));
        }
        for record in &chosen {
            tracing::info!(target: "corral::platform", app = %found.name, dyno = %record.name, "{verb}");
        }
        // The dyno manager restarts them the way it cycles them: web dynos
        // roll (the new one serves before the old one stops), so a restart
        // drops no request.
        self.dynos.restart(chosen.into_iter().map(|r| r.unit));
        Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
    }

    /// `POST /apps/{app}/dynos`: a one-off dyno, started now (detached) or
    /// when its client connects to the `attach_url` of the answer.
    pub(super) async fn create_dyno(
        &self,
        app: AppRef,
        req: types::DynoCreate,
        host: Option<&str>,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        if req.process_type.as_deref().is_some_and(|t| t != RUN_TYPE) {
            return Err(ApiError::Invalid(format!(
                "One-off dynos are of type {RUN_TYPE:?}; leave type out or set it to {RUN_TYPE:?}."
            )));
        }
        let mut env = Vec::new();
        for (name, value) in req.env.unwrap_or_default() {
            env.push((ConfigVarName::parse(&name)?, value));
        }
        let request = OneOffRequest {
            command: req.command,
            attach: req.attach.unwrap_or(false),
            force_no_tty: req.force_no_tty.unwrap_or(false),
            size: req
                .size
                .as_deref()
                .map(|s| self.sizes().parse(s))
                .transpose()?,
            env,
            time_to_live: req.time_to_live.map(Duration::from_secs),
        };
        let Created {
            record,
            app,
            attach_secret,
        } = self
            .oneoffs
            .create(app, request)
            .await
            .map_err(|e| ApiError::from_oneoff(e, rid))?;
        let attach_url = attach_secret.map(|secret| {
            format!(
                "{}/apps/{app}/dynos/{}/attach?secret={secret}",
                base_url(host),
                record.name
            )
        });
        let state = if attach_url.is_some() {
            "starting"
        } else {
            "up"
        };
        let dyno = types::Dyno {
            attach_url,
            command: record.command.clone(),
            created_at: record.started_at,
            id: dyno_id(&record.unit),
            name: record.name.to_string(),
            release: types::ReleaseRef {
                id: None,
                version: record.release.0,
            },
            app: types::NamedRef {
                id: record.app_id,
                name: app.to_string(),
            },
            size: record.size.to_string(),
            state: state.to_owned(),
            process_type: record.name.process_type().to_string(),
            updated_at: record.started_at,
            memory_bytes: None,
            memory_quota_bytes: Some(u64::from(self.sizes().memory_mb(&record.size)) * 1024 * 1024),
            cpu_seconds: None,
            load_avg_1m: None,
        };
        Ok(json(StatusCode::CREATED, &dyno))
    }

    /// `GET` of an attach URL with `Upgrade: corral-attach`: answers `101`
    /// and hands the connection to the one-off dyno's session, which
    /// starts the dyno. The URL works once.
    pub(super) async fn attach_dyno<B>(
        &self,
        app: AppRef,
        dyno: DynoName,
        secret: &str,
        mut req: Request<B>,
        rid: &str,
    ) -> Result<ApiResponse, ApiError> {
        // Checked first: a plain GET must not use the URL up.
        if !(has_token(req.headers(), CONNECTION, "upgrade")
            && has_token(req.headers(), UPGRADE, UPGRADE_PROTOCOL))
        {
            return Err(ApiError::UpgradeRequired(UPGRADE_PROTOCOL));
        }
        let launch = self
            .oneoffs
            .claim(app, &dyno, secret)
            .await
            .map_err(|e| ApiError::from_oneoff(e, rid))?;
        self.oneoffs.attach(launch, hyper::upgrade::on(&mut req));
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
        Ok(response)
    }
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
