//! The admin HTTP API, served by `rekey run` on `daemon.admin_listen`
//! (loopback by default): liveness, readiness, Prometheus metrics, the
//! status of every policy, and a bearer-token-protected rotate trigger.
//! `serve(listener, admin, shutdown)` in mini-redis style, so tests bind
//! port 0 and decide when it stops.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::daemon::Daemon;

mod probes;
mod rotate;
pub mod waiting;

/// What the handlers share.
pub struct Admin {
    pub daemon: Daemon,
    /// `daemon.admin_token`, resolved once at start; `None`: rotate is off.
    pub token: Option<SecretString>,
}

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route("/v1/status", get(probes::status))
        .route("/v1/policies/{name}/rotate", post(rotate::rotate))
        .with_state(admin)
}

/// Serves until `shutdown` resolves (then lets open requests finish).
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(admin))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every error answer: `{"error": "..."}` with its status.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}
