//! `GET /apps/{app}/metrics` (Corral's own): the routers' request counts and latencies over a window.

use http::StatusCode;

use super::error::ApiError;
use super::request::Call;
use super::respond::{json, ApiResponse};
use super::{types, Api};
use crate::router::metrics::{Percentiles, Window};
use crate::state::AppRef;

impl Api {
    pub(super) async fn app_metrics(
        &self,
        app: AppRef,
        minutes: u32,
        call: &Call,
    ) -> Result<ApiResponse, ApiError> {
        let app = self.store.get_app(app).await.map_err(call.store())?;
        let window = match &self.routes {
            Some(hub) => hub.metrics(&app.name, minutes).await,
            None => Window::default(),
        };
        let app = types::NamedRef {
            id: app.id,
            name: app.name.to_string(),
        };
        Ok(json(StatusCode::OK, &metrics_json(app, minutes, &window)))
    }
}

fn metrics_json(app: types::NamedRef, minutes: u32, window: &Window) -> types::AppMetrics {
    let [informational, success, redirect, client_error, server_error] = window.requests;
    let percentiles = |p: Percentiles| types::Percentiles {
        p50: p.p50,
        p95: p.p95,
        p99: p.p99,
    };
    types::AppMetrics {
        app,
        minutes,
        requests: types::StatusCounts {
            informational,
            success,
            redirect,
            client_error,
            server_error,
        },
        service_ms: percentiles(window.service_ms()),
        queue_ms: percentiles(window.queue_ms()),
    }
}
