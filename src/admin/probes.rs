//! The read-only endpoints: `/healthz` (the scheduler loop is ticking),
//! `/readyz` (config loaded, stores and providers answered at start-up, the
//! state answers, not shutting down), `/metrics` (Prometheus text, or OpenMetrics when the
//! scraper's `Accept` asks for it) and `/v1/status` (the JSON of
//! `rekey status --json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Admin, error};
use crate::daemon::{Readiness, UNHEALTHY_AFTER};
use crate::metrics::Exposition;

pub async fn healthz(State(admin): State<Arc<Admin>>) -> Response {
    let since = admin.daemon.since_last_tick();
    let body = json!({
        "live": since <= UNHEALTHY_AFTER,
        "seconds_since_last_tick": since.as_secs(),
    });
    let status = if since <= UNHEALTHY_AFTER {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn readyz(State(admin): State<Arc<Admin>>) -> Response {
    let not_ready = |reason: String| {
        let body = json!({ "ready": false, "reason": reason });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    if admin.daemon.is_shutting_down() {
        return not_ready("shutting down".into());
    }
    let state = admin.daemon.app().state.clone();
    if let Some(why) = state.unavailable() {
        // No lease can be taken, so no rotation starts here until it answers.
        return not_ready(format!("state {} unavailable: {why}", state.describe()));
    }
    match admin.daemon.readiness() {
        Readiness::Ready => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Readiness::Probing => {
            not_ready("start-up probe of stores and providers still running".into())
        }
        Readiness::Failed(reason) => not_ready(reason),
    }
}

pub async fn metrics(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    scrape(&admin.daemon.app().observer.metrics, &headers)
}

/// The metrics in the format the scraper's `Accept` header prefers.
pub fn scrape(metrics: &crate::metrics::Metrics, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::from_accept(accept);
    match metrics.encode(format) {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn status(State(admin): State<Arc<Admin>>) -> Response {
    let app = admin.daemon.app();
    let now = app.clock.now();
    match crate::status::collect(&app.config.policies, Some(app.state.as_ref()), now).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
