//! `/_sim`: control and inspection for tests running in another process
//! than the simulator (`rekey sim --listen ADDR`). Unauthenticated on purpose:
//! it is a local test tool, and these endpoints hand out secrets.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::openrouter::Failure;
use super::record::ApiError;
use super::{Api, Faults, Simulator};

pub(super) fn router() -> Router<Simulator> {
    Router::new()
        .route("/state", get(state))
        .route("/faults", put(set_faults))
        .route("/keys", post(seed_key))
}

async fn state(State(sim): State<Simulator>) -> Response {
    let body = json!({
        "keys": sim.keys(),
        "issued": sim.issued_secrets(),
        "calls": sim.call_counts(),
        "throttled": sim.throttled_count(),
        "gateway_calls": sim.gateway_calls(),
    });
    Json(body).into_response()
}

async fn set_faults(State(sim): State<Simulator>, body: Bytes) -> Result<StatusCode, Failure> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|err| ApiError::new(400, format!("Invalid faults: {err}")))?;
    sim.set_faults(faults);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SeedRequest {
    name: String,
    /// `openrouter` (default), `arouter`, `openai`, `litellm`, `anthropic`.
    api: Option<String>,
}

async fn seed_key(State(sim): State<Simulator>, body: Bytes) -> Result<Response, Failure> {
    let req: SeedRequest = serde_json::from_slice(&body)
        .map_err(|err| ApiError::new(400, format!("Invalid seed request: {err}")))?;
    let api = match req.api.as_deref() {
        None => Api::OpenRouter,
        Some(name) => Api::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| ApiError::new(400, format!("unknown api {name:?}")))?,
    };
    let (hash, key) = sim.insert_key_in(api, &req.name);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "hash": hash, "key": key })),
    )
        .into_response())
}
