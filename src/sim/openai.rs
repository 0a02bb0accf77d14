//! The OpenAI organization admin API (projects, service accounts) and /models, /chat/completions HTTP surface. (Stub: being built.)

use axum::Router;

use super::Simulator;

pub(super) fn router() -> Router<Simulator> {
    Router::new()
}
