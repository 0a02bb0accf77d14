//! The LiteLLM proxy HTTP surface. (Stub: being built.)

use axum::Router;

use super::Simulator;

pub(super) fn router() -> Router<Simulator> {
    Router::new()
}
