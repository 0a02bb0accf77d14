//! An OpenAI-compatible gateway (`/gateway/v1`) in front of every simulated
//! API, for `verify.base_url`: `GET /models` and `POST /chat/completions`
//! accept any key that works at any simulated API. A chat call with an
//! OpenAI key passes OpenAI's rules through: `max_tokens` on a reasoning
//! model gets OpenAI's 400, as a pass-through gateway relays it. The
//! gateway counts its own calls apart from the APIs' counters, so a test
//! can tell that a verification went through it and not to the provider.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::Endpoint;
use super::http::{bearer, parse};
use super::openrouter::Failure;
use super::record::ApiError;
use super::{Api, Simulator};

/// Where the gateway is mounted.
pub const PATH: &str = "/gateway/v1";

/// Calls per endpoint name (`models`, `chat`).
pub(super) type Calls = BTreeMap<String, u64>;

pub(super) fn router() -> Router<Simulator> {
    Router::new()
        .route("/models", get(models))
        .route("/chat/completions", post(chat))
        .fallback(|| async { Failure::from(ApiError::new(404, "Not found")) })
}

/// Counts the call and finds the API whose account the key belongs to.
fn admit(sim: &Simulator, endpoint: Endpoint, headers: &HeaderMap) -> Result<Api, Failure> {
    let mut inner = sim.lock();
    *inner
        .gateway_calls
        .entry(endpoint.as_str().to_string())
        .or_default() += 1;
    let token = bearer(headers).ok_or_else(|| ApiError::new(401, "Missing API key"))?;
    let found = (inner.states.iter()).find(|(_, s)| s.authenticate_normal(token).is_ok());
    let (api, _) = found.ok_or_else(|| ApiError::new(401, "Invalid API key"))?;
    Ok(*api)
}

async fn models(State(sim): State<Simulator>, headers: HeaderMap) -> Result<Response, Failure> {
    admit(&sim, Endpoint::Models, &headers)?;
    let data = json!([{ "id": "gateway/default", "object": "model" }]);
    Ok(Json(json!({ "object": "list", "data": data })).into_response())
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
}

async fn chat(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let api = admit(&sim, Endpoint::Chat, &headers)?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| ApiError::new(400, "model is required"))?;
    if api == Api::OpenAi
        && let Some(refused) = super::openai::refuse_max_tokens(&model, &body)
    {
        return Ok(refused);
    }
    let token = bearer(&headers).unwrap_or_default();
    sim.lock().api(api).charge_chat(token)?;
    let answer: Value = json!({
        "object": "chat.completion",
        "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "pong" } }],
    });
    Ok(Json(answer).into_response())
}
