//! The admin HTTP API, served by `rekey run` on `daemon.admin_listen`
//! (loopback by default): liveness, readiness, Prometheus metrics, the
//! status of every policy, and a bearer-token-protected rotate trigger.
//! `serve(listener, admin, shutdown)` in mini-redis style, so tests bind
//! port 0 and decide when it stops.

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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

/// A path no route serves: a JSON 404 like every other error, not axum's
/// empty body.
async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("no route {method} {}", uri.path());
    coded(StatusCode::NOT_FOUND, "not_found", message)
}

/// A known path asked with the wrong method.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    coded(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
}

/// `{"error": "<code>", "message": "..."}` for answers with no handler of
/// their own.
fn coded(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    (status, axum::Json(body)).into_response()
}
