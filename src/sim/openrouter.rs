//! The OpenRouter HTTP surface (`/openrouter/api/v1`, and `/api/v1`): each
//! handler admits the request through the fault knobs, checks the
//! credential, decodes the body and hands over to `State`. Keys are made in
//! the body's `workspace_id` (else the default workspace), and a listing
//! without `workspace_id` shows the default workspace's keys only, as the
//! official spec says; get, update and delete reach a key in any workspace.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::after_effect::CreatedShape;
use super::faults::Endpoint;
use super::http::{bearer, chat_completion, parse, with_status};
use super::record::{self, ApiError};
use super::state::{self, CreateRequest, PAGE_SIZE, UpdateRequest};
use super::{Api, Simulator};

const API: Api = Api::OpenRouter;

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
pub(super) struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.0.status, "message": self.0.message } });
        with_status(&self.0, body)
    }
}

type Reply = Result<Response, Failure>;

async fn admit_normal<'h>(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &'h HeaderMap,
) -> Result<&'h str, Failure> {
    sim.admit(API, endpoint).await?;
    bearer(headers).ok_or_else(|| ApiError::new(401, "No auth credentials found").into())
}

fn ok(body: Value) -> Reply {
    Ok(Json(body).into_response())
}

async fn create_key(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    sim.admit_management(API, Endpoint::Create, &headers)
        .await?;
    let req: CreateRequest = parse(&body)?;
    let make = |account: &mut state::State, delay, reject| {
        let (key, secret) = account.create(req, delay, reject)?;
        Ok(json!({ "data": key, "key": secret }))
    };
    let failure = |e: ApiError| Failure(e).into_response();
    Ok(sim.create_and_answer(API, &CREATED, make, failure).await?)
}

/// Where OpenRouter's create answer keeps the secret and the key's id.
const CREATED: CreatedShape = CreatedShape {
    status: StatusCode::CREATED,
    secret: "/key",
    id: "/data/hash",
};

async fn list_keys(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    sim.admit_management(API, Endpoint::List, &headers).await?;
    let (offset, include_disabled, workspace) = list_params(query.as_deref().unwrap_or(""))?;
    let mut inner = sim.lock();
    let listing = inner.faults.listing(API, offset == 0, PAGE_SIZE);
    let page = (offset, include_disabled);
    ok(inner.api(API).list(page, workspace.as_deref(), listing))
}

/// `offset=N`, `include_disabled=true` and `workspace_id=W`; other
/// parameters are ignored.
fn list_params(query: &str) -> Result<(usize, bool, Option<String>), ApiError> {
    let (mut offset, mut include_disabled, mut workspace) = (0, false, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("offset", v) => {
                offset = v
                    .parse()
                    .map_err(|_| ApiError::new(400, "offset must be an integer"))?;
            }
            ("include_disabled", v) => include_disabled = v == "true",
            ("workspace_id", v) => workspace = Some(decode(v)?),
            _ => {}
        }
    }
    Ok((offset, include_disabled, workspace))
}

/// A percent-encoded query value.
fn decode(value: &str) -> Result<String, ApiError> {
    let bad = || ApiError::new(400, "workspace_id is not a valid query value");
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'%' => {
                let hex = [rest.next().ok_or_else(bad)?, rest.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                u8::from_str_radix(hex, 16).map_err(|_| bad())?
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

async fn get_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Reply {
    sim.admit_management(API, Endpoint::Get, &headers).await?;
    ok(sim.lock().api(API).get(&hash)?)
}

async fn update_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Bytes,
) -> Reply {
    sim.admit_management(API, Endpoint::Update, &headers)
        .await?;
    let req: UpdateRequest = parse(&body)?;
    ok(sim.lock().api(API).update(&hash, req)?)
}

async fn delete_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Reply {
    sim.admit_management(API, Endpoint::Delete, &headers)
        .await?;
    let mut inner = sim.lock();
    if inner.api(API).has(&hash) && inner.faults.after_delete() {
        return Err(record::not_found().into());
    }
    ok(inner.api(API).delete(&hash)?)
}

async fn whoami(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let token = admit_normal(&sim, Endpoint::Whoami, &headers).await?;
    ok(sim.lock().api(API).whoami(token)?)
}

/// Needs no key at all, like the real one: it proves nothing about a key.
async fn models(State(sim): State<Simulator>) -> Reply {
    sim.admit(API, Endpoint::Models).await?;
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
    let token = admit_normal(&sim, Endpoint::Chat, &headers).await?;
    sim.lock().api(API).authenticate_normal(token)?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| ApiError::new(400, "model is required"))?;
    if req.messages.is_empty() {
        return Err(ApiError::new(400, "messages must not be empty").into());
    }
    sim.lock().api(API).charge_chat(token)?;
    ok(chat_completion("gen-sim-", &model, 1))
}
