//! The OpenRouter HTTP surface under `/api/v1`: each handler admits the
//! request through the fault knobs, checks the credential, decodes the body
//! and hands over to `State`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Simulator;
use super::faults::{Endpoint, Injected};
use super::state::{ApiError, CreateRequest, UpdateRequest};

pub(super) fn router() -> Router<Simulator> {
    Router::new()
        .route("/keys", post(create_key).get(list_keys))
        .route(
            "/keys/{hash}",
            get(get_key).patch(update_key).delete(delete_key),
        )
        .route("/key", get(whoami))
        .route("/models", get(models))
        .route("/chat/completions", post(chat))
        .fallback(|| async { Failure::from(ApiError::new(404, "Not found")) })
}

/// An error response in OpenRouter's shape, with `Retry-After` on 429s.
pub(super) struct Failure {
    error: ApiError,
    retry_after_secs: Option<u64>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({ "error": { "code": self.error.status, "message": self.error.message } });
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

type Reply = Result<Response, Failure>;

impl Simulator {
    /// Counts the call, waits out the configured latency, then applies the
    /// rate-limit and error-rate knobs.
    async fn admit(&self, endpoint: Endpoint) -> Result<(), Failure> {
        let latency = {
            let mut inner = self.lock();
            inner.state.count_call(endpoint);
            inner.faults.latency(endpoint)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match self.lock().faults.decide(endpoint) {
            Injected::None => Ok(()),
            Injected::RateLimited { retry_after_secs } => Err(Failure {
                error: ApiError::new(429, "Rate limit exceeded"),
                retry_after_secs: Some(retry_after_secs),
            }),
            Injected::ServerError => Err(ApiError::new(500, "Internal server error").into()),
        }
    }

    async fn admit_management(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
    ) -> Result<(), Failure> {
        self.admit(endpoint).await?;
        Ok(self.lock().state.authorize_management(bearer(headers))?)
    }

    async fn admit_normal<'h>(
        &self,
        endpoint: Endpoint,
        headers: &'h HeaderMap,
    ) -> Result<&'h str, Failure> {
        self.admit(endpoint).await?;
        bearer(headers).ok_or_else(|| ApiError::new(401, "No auth credentials found").into())
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::new(400, format!("Invalid JSON body: {err}")))
}

fn ok(body: Value) -> Reply {
    Ok(Json(body).into_response())
}

async fn create_key(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    sim.admit_management(Endpoint::Create, &headers).await?;
    let req: CreateRequest = parse(&body)?;
    let mut inner = sim.lock();
    let (delay, reject) = (
        inner.faults.propagation_delay(),
        inner.faults.reject_new_keys(),
    );
    let (key, secret) = inner.state.create(req, delay, reject)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "data": key, "key": secret })),
    )
        .into_response())
}

async fn list_keys(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    sim.admit_management(Endpoint::List, &headers).await?;
    let (offset, include_disabled) = list_params(query.as_deref().unwrap_or(""))?;
    ok(sim.lock().state.list(offset, include_disabled))
}

/// `offset=N` and `include_disabled=true`; other parameters are ignored.
fn list_params(query: &str) -> Result<(usize, bool), ApiError> {
    let (mut offset, mut include_disabled) = (0, false);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("offset", v) => {
                offset = v
                    .parse()
                    .map_err(|_| ApiError::new(400, "offset must be an integer"))?;
            }
            ("include_disabled", v) => include_disabled = v == "true",
            _ => {}
        }
    }
    Ok((offset, include_disabled))
}

async fn get_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Reply {
    sim.admit_management(Endpoint::Get, &headers).await?;
    ok(sim.lock().state.get(&hash)?)
}

async fn update_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Bytes,
) -> Reply {
    sim.admit_management(Endpoint::Update, &headers).await?;
    let req: UpdateRequest = parse(&body)?;
    ok(sim.lock().state.update(&hash, req)?)
}

async fn delete_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Reply {
    sim.admit_management(Endpoint::Delete, &headers).await?;
    ok(sim.lock().state.delete(&hash)?)
}

async fn whoami(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let token = sim.admit_normal(Endpoint::Whoami, &headers).await?;
    ok(sim.lock().state.whoami(token)?)
}

/// Needs no key at all, like the real one: it proves nothing about a key.
async fn models(State(sim): State<Simulator>) -> Reply {
    sim.admit(Endpoint::Models).await?;
    let ids = [
        "openai/gpt-4o-mini",
        "anthropic/claude-3.5-haiku",
        "meta-llama/llama-3.1-8b-instruct",
    ];
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "id": id, "name": id }))
        .collect();
    ok(json!({ "data": data }))
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Value>,
}

async fn chat(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    let token = sim.admit_normal(Endpoint::Chat, &headers).await?;
    sim.lock().state.authenticate_normal(token)?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| ApiError::new(400, "model is required"))?;
    if req.messages.is_empty() {
        return Err(ApiError::new(400, "messages must not be empty").into());
    }
    sim.lock().state.charge_chat(token)?;
    ok(json!({
        "id": format!("gen-sim-{}", chrono::Utc::now().timestamp_micros()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "pong" },
            "finish_reason": "length",
        }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2 },
    }))
}
