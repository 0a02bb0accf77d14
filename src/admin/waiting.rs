//! The admin API while `rekey run` waits for credentials it cannot read yet
//! (no [`App`](crate::app::App) exists): `/healthz` 200 (the process is
//! alive and retrying), `/readyz` 503 naming every unreadable reference,
//! `/metrics` with nothing rotated yet, `/v1/status` from the journal as
//! `rekey status` shows it, and the rotate trigger refused with 503.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::error;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::StateStore;

/// What the waiting handlers share; the service updates the reason after each attempt.
pub struct Waiting {
    reason: Mutex<String>,
    /// The config as last read (its policies are what `/v1/status` lists).
    config: Mutex<Arc<Config>>,
    /// The journal, if its directory exists already (it is not created while waiting).
    journal: Option<Arc<dyn StateStore>>,
    /// Empty: nothing has been rotated by this process yet.
    metrics: Metrics,
}

impl Waiting {
    pub fn new(config: Arc<Config>, journal: Option<Arc<dyn StateStore>>) -> Waiting {
        Waiting {
            reason: Mutex::new("reading credentials".into()),
            config: Mutex::new(config),
            journal,
            metrics: Metrics::new(),
        }
    }

    /// Why the daemon is not ready (reference paths and causes, never values).
    pub fn set_reason(&self, reason: String) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// The config file was read again while waiting.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    fn config(&self) -> Arc<Config> {
        (self.config.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn reason(&self) -> String {
        (self.reason.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub fn router(waiting: Arc<Waiting>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/policies/{name}/rotate", post(rotate))
        .fallback(super::not_found)
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(axum::middleware::map_response(close_connection))
        .with_state(waiting)
}

/// Every answer closes its connection: the real API takes this socket over
/// once the credentials can be read, and a client reusing a kept-alive
/// connection to this server would have it cut under its next request.
async fn close_connection(mut response: Response) -> Response {
    (response.headers_mut()).insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn healthz() -> Response {
    let body = json!({ "live": true, "waiting_for": "credentials" });
    (StatusCode::OK, Json(body)).into_response()
}

async fn readyz(State(waiting): State<Arc<Waiting>>) -> Response {
    let reason = format!("waiting for credentials: {}", waiting.reason());
    let body = json!({ "ready": false, "reason": reason });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn metrics(State(waiting): State<Arc<Waiting>>, headers: HeaderMap) -> Response {
    super::probes::scrape(&waiting.metrics, &headers)
}

async fn status(State(waiting): State<Arc<Waiting>>) -> Response {
    let journal = waiting.journal.as_deref();
    let now = chrono::Utc::now();
    match crate::status::collect(&waiting.config().policies, journal, now).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn rotate(State(waiting): State<Arc<Waiting>>) -> Response {
    let message = format!("not ready: waiting for credentials: {}", waiting.reason());
    error(StatusCode::SERVICE_UNAVAILABLE, message)
}
