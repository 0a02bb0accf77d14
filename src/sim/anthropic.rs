//! The Anthropic Admin API and /v1/models HTTP surface. (Stub: being built.)

use axum::Router;

use super::Simulator;

pub(super) fn router() -> Router<Simulator> {
    Router::new()
}
