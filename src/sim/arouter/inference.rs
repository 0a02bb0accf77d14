//! ARouter's inference under `/v1`: the model list needs a working key,
//! chat enforces the key's allow-lists and adds a ping to its spend, and the
//! `quota_exhausted` knob answers both with 403 `quota_exceeded`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{API, Reply, admit_normal, ok};
use crate::sim::Simulator;
use crate::sim::faults::Endpoint;
use crate::sim::http::{chat_completion, parse};
use crate::sim::record::{ApiError, KeyRecord};

const MODELS: [&str; 3] = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-haiku",
    "meta-llama/llama-3.1-8b-instruct",
];

/// The `quota_exhausted` knob at ARouter: inference answers 403
/// `quota_exceeded`, which no retry fixes (PROVIDERS.md).
fn check_quota(sim: &Simulator) -> Result<(), ApiError> {
    if !sim.lock().faults.quota_exhausted() {
        return Ok(());
    }
    let message = "Quota exceeded for this account; raise the quota or add credits";
    Err(ApiError::new(403, message).with_code("quota_exceeded"))
}

/// Unlike OpenRouter's, this list needs a working key.
pub(super) async fn models(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let (_, index) = admit_normal(&sim, Endpoint::Models, &headers).await?;
    check_quota(&sim)?;
    let mut inner = sim.lock();
    let key = &inner.api(API).keys[index];
    let data: Vec<Value> = (MODELS.iter())
        .filter(|model| allowed(key, model).is_ok())
        .map(|id| json!({ "id": id, "object": "model" }))
        .collect();
    ok(json!({ "object": "list", "data": data }))
}

/// A key's allow-lists: the provider is the model's prefix (`openai/...`).
fn allowed(key: &KeyRecord, model: &str) -> Result<(), ApiError> {
    let listed = |field: &str, name: &str| match key.extra.get(field) {
        Some(Value::Array(names)) => names.iter().any(|n| n == name),
        _ => true,
    };
    let provider = model.split('/').next().unwrap_or(model);
    if !listed("allowed_providers", provider) {
        return Err(ApiError::new(
            403,
            format!("Provider {provider} is not allowed for this key"),
        )
        .with_code("provider_not_allowed"));
    }
    if !listed("allowed_models", model) {
        return Err(
            ApiError::new(403, format!("Model {model} is not allowed for this key"))
                .with_code("model_not_allowed"),
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Value>,
}

pub(super) async fn chat(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    let (token, index) = admit_normal(&sim, Endpoint::Chat, &headers).await?;
    check_quota(&sim)?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.filter(|m| MODELS.contains(&m.as_str()));
    let model = model.ok_or_else(|| ApiError::new(400, "model is missing or unknown"))?;
    if req.messages.is_empty() {
        return Err(ApiError::new(400, "messages must not be empty").into());
    }
    let mut inner = sim.lock();
    let state = inner.api(API);
    allowed(&state.keys[index], &model)?;
    (state.charge_chat(&token)).map_err(|e| match e.status {
        402 => e.with_code("insufficient_credits"),
        _ => e,
    })?;
    ok(chat_completion("gen-arouter-", &model, 1))
}
