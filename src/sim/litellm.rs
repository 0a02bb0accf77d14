//! The LiteLLM proxy HTTP surface (`/litellm`): virtual keys made with the
//! master key (`/key/generate`, `/key/delete`, `/key/list`, `/key/info`), a
//! key's id being its `token` (the sha256 hex of the key, as the proxy's
//! `hash_token`; `/key/info` leaves it out of `info`) and its name its
//! `key_alias`; inference at `/v1/models` (needs a key) and
//! `/v1/chat/completions`, where a key's `models` and `max_budget` are
//! enforced. A call a key authenticates sets its `last_active`; a chat
//! also adds to its `spend`. Errors are `{error: {message, type, param, code}}`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::after_effect::{self, CreatedShape, ListAnswer};
use super::faults::Endpoint;
use super::http::{bearer, chat_completion, parse, with_status};
use super::record::{ApiError, KeyRecord};
use super::state::State as Account;
use super::{Api, Simulator};

const API: Api = Api::LiteLlm;
/// The models this proxy's config routes to.
const MODELS: [&str; 3] = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b"];

pub(super) fn router() -> Router<Simulator> {
    Router::new()
        .route("/key/generate", post(generate))
        .route("/key/delete", post(delete))
        .route("/key/list", get(list))
        .route("/key/info", get(info))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .fallback(|| async { Failure::from(ApiError::new(404, "Not Found")) })
}

/// An error response in LiteLLM's shape (its `code` is a string).
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let kind = self.0.code.as_deref().unwrap_or(match status {
            400 => "bad_request_error",
            401 | 403 => "auth_error",
            404 => "not_found_error",
            429 => "throttling_error",
            _ => "internal_server_error",
        });
        let body = json!({ "error": {
            "message": self.0.message,
            "type": kind,
            "param": "None",
            "code": status.to_string(),
        }});
        with_status(&self.0, body)
    }
}

type Reply = Result<Response, Failure>;

fn ok(body: Value) -> Reply {
    Ok(Json(body).into_response())
}

/// Admits a call made with a virtual key and returns the key's index.
async fn admit_key(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<(String, usize), Failure> {
    sim.admit(API, endpoint).await?;
    let token = bearer(headers).unwrap_or_default();
    let mut inner = sim.lock();
    let state = inner.api(API);
    let index = state
        .authenticate_normal(token)
        .map_err(|_| invalid(token))?;
    state.note_use(index);
    Ok((token.to_string(), index))
}

/// The proxy's 401 for a key it does not (yet) know: it quotes the key's
/// last 4 characters and its token, the sha256 of the key.
fn invalid(key: &str) -> ApiError {
    let start = key.char_indices().rev().nth(3).map_or(0, |(at, _)| at);
    let tail = &key[start..];
    let message = format!(
        "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...{tail}, \
         Key Hash (Token) ={}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
        token_of(key)
    );
    ApiError::new(401, message).with_code("token_not_found_in_db")
}

#[derive(Deserialize)]
struct GenerateBody {
    key_alias: Option<String>,
    models: Option<Vec<String>>,
    max_budget: Option<f64>,
    budget_duration: Option<String>,
    metadata: Option<Value>,
}

async fn generate(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    sim.admit_management(API, Endpoint::Create, &headers)
        .await?;
    let body: GenerateBody = parse(&body)?;
    if let Some(period) = body.budget_duration.as_deref().filter(|d| !is_duration(d)) {
        return Err(ApiError::new(400, format!("Invalid budget_duration: {period}")).into());
    }
    let make = |account: &mut Account, delay, reject| {
        let alias = body.key_alias.unwrap_or_default();
        let key = account.issue(&alias, delay, reject);
        let fields = [
            ("models", json!(body.models.unwrap_or_default())),
            ("max_budget", json!(body.max_budget)),
            ("budget_duration", json!(body.budget_duration)),
            ("metadata", body.metadata.unwrap_or_else(|| json!({}))),
        ];
        for (field, value) in fields {
            key.extra.insert(field.into(), value);
        }
        let mut answer = render(key);
        answer["key"] = json!(key.secret);
        Ok(answer)
    };
    let failure = |e: ApiError| Failure(e).into_response();
    Ok(sim.create_and_answer(API, &CREATED, make, failure).await?)
}

/// Where LiteLLM's `/key/generate` answer keeps the secret and the key's id.
const CREATED: CreatedShape = CreatedShape {
    status: StatusCode::OK,
    secret: "/key",
    id: "/token",
};

/// A virtual key as the proxy makes one: `sk-` + `secrets.token_urlsafe(16)`,
/// 22 characters of URL-safe base64, `-` and `_` included.
pub(super) fn new_key() -> String {
    const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let random: String = (0..22)
        .map(|_| char::from(URL_SAFE[rng.random_range(0..URL_SAFE.len())]))
        .collect();
    format!("sk-{random}")
}

/// The proxy's `token` for a key: the sha256 of the key, in hex.
pub(super) fn token_of(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `30s`, `30m`, `1h`, `30d`.
fn is_duration(text: &str) -> bool {
    let digits = text.trim_end_matches(['s', 'm', 'h', 'd']);
    text.len() == digits.len() + 1
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// A key as `/key/list` and `/key/info` show it; never the secret.
fn render(key: &KeyRecord) -> Value {
    let extra = |field: &str| key.extra.get(field).cloned().unwrap_or(Value::Null);
    let tail: String = key.secret.chars().skip(key.secret.len() - 4).collect();
    json!({
        "token": key.hash,
        "key_name": format!("sk-...{tail}"),
        "key_alias": key.name,
        "spend": key.usage,
        "last_active": key.last_used_at,
        "max_budget": extra("max_budget"),
        "budget_duration": extra("budget_duration"),
        "models": extra("models"),
        "metadata": extra("metadata"),
        "blocked": key.disabled.then_some(true),
        "expires": null,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
    })
}

/// A key named by its token or by the key itself, as LiteLLM accepts both.
fn find(state: &Account, key: &str) -> Option<usize> {
    (state.keys.iter()).position(|k| k.hash == key || k.secret == key)
}

#[derive(Deserialize)]
struct DeleteBody {
    keys: Vec<String>,
}

async fn delete(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    sim.admit_management(API, Endpoint::Delete, &headers)
        .await?;
    let body: DeleteBody = parse(&body)?;
    let mut inner = sim.lock();
    let exists = body.keys.iter().any(|k| find(inner.api(API), k).is_some());
    if exists && inner.faults.after_delete() {
        return Err(not_all_deleted(body.keys.len(), 0).into());
    }
    let state = inner.api(API);
    let mut deleted = Vec::new();
    for key in &body.keys {
        if let Some(index) = find(state, key) {
            deleted.push(state.keys.remove(index).hash);
        }
    }
    if deleted.len() < body.keys.len() {
        return Err(not_all_deleted(body.keys.len(), deleted.len()).into());
    }
    ok(json!({ "deleted_keys": deleted }))
}

fn not_all_deleted(passed: usize, deleted: usize) -> ApiError {
    let message =
        format!("Failed to delete all keys. Keys passed in: {passed}. Deleted keys: {deleted}");
    ApiError::new(404, message)
}

/// `page` (from 1), `size` (1-100), `return_full_object`.
fn list_params(query: &str) -> Result<(usize, usize, bool), ApiError> {
    let (mut page, mut size, mut full) = (1, 10, false);
    let number = |v: &str, what: &str| {
        (v.parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::new(422, format!("{what} must be a positive integer")))
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("page", v) => page = number(v, "page")?,
            ("size", v) => size = number(v, "size")?,
            ("return_full_object", v) => full = v == "true",
            _ => {}
        }
    }
    if size > 100 {
        return Err(ApiError::new(422, "size must be at most 100"));
    }
    Ok((page, size, full))
}

async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    sim.admit_management(API, Endpoint::List, &headers).await?;
    let (page, size, full) = list_params(q.as_deref().unwrap_or(""))?;
    let mut inner = sim.lock();
    let listing = inner.faults.listing(API, page == 1, size);
    let endless = listing.answer == Some(ListAnswer::Endless);
    let keys = &inner.api(API).keys;
    let phantoms = listing.phantoms.map(|n| after_effect::phantom(API, n));
    let at = (page - 1).saturating_mul(size);
    let shown = after_effect::page(
        listing.answer,
        keys.iter().collect(),
        |_| at,
        size,
        phantoms,
    );
    let shown: Vec<Value> = (shown.iter())
        .map(|k| if full { render(k) } else { json!(k.hash) })
        .collect();
    // An endless listing always claims one full page more than this one.
    let (total_count, total_pages) = match endless {
        true => (
            page.saturating_add(1).saturating_mul(size),
            page.saturating_add(1),
        ),
        false => (keys.len(), keys.len().div_ceil(size)),
    };
    ok(json!({
        "keys": shown,
        "total_count": total_count,
        "current_page": page,
        "total_pages": total_pages,
    }))
}

async fn info(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    sim.admit_management(API, Endpoint::Get, &headers).await?;
    let query = q.unwrap_or_default();
    let wanted = (query.split('&'))
        .find_map(|p| p.strip_prefix("key="))
        .ok_or_else(|| ApiError::new(400, "key is required"))?;
    let mut inner = sim.lock();
    let state = inner.api(API);
    let index = find(state, wanted).ok_or_else(|| ApiError::new(404, "Key not found"))?;
    let mut info = render(&state.keys[index]);
    if let Some(fields) = info.as_object_mut() {
        fields.remove("token");
    }
    ok(json!({ "key": wanted, "info": info }))
}

/// The models a key may call: its own list, or every model when it has none.
fn models_of(key: &KeyRecord) -> Vec<&'static str> {
    let own = key.extra.get("models").and_then(Value::as_array);
    let own = own.filter(|list| !list.is_empty());
    (MODELS.into_iter())
        .filter(|m| own.is_none_or(|list| list.iter().any(|n| n == m)))
        .collect()
}

async fn models(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let (_, index) = admit_key(&sim, Endpoint::Models, &headers).await?;
    let mut inner = sim.lock();
    let key = &inner.api(API).keys[index];
    let data: Vec<Value> = (models_of(key).into_iter())
        .map(|id| json!({ "id": id, "object": "model", "created": 1677610602, "owned_by": "openai" }))
        .collect();
    ok(json!({ "object": "list", "data": data }))
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Value>,
}

async fn chat(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    let (token, index) = admit_key(&sim, Endpoint::Chat, &headers).await?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.unwrap_or_default();
    if !MODELS.contains(&model.as_str()) {
        let message = format!("Invalid model name passed in model={model}");
        return Err(ApiError::new(400, message).into());
    }
    if req.messages.is_empty() {
        return Err(ApiError::new(400, "messages must not be empty").into());
    }
    let mut inner = sim.lock();
    let state = inner.api(API);
    let key = &state.keys[index];
    if !models_of(key).contains(&model.as_str()) {
        let message = format!(
            "key not allowed to access model. This key can only access models={:?}. Tried to access {model}",
            models_of(key)
        );
        return Err(ApiError::new(401, message)
            .with_code("key_model_access_denied")
            .into());
    }
    let budget = key.extra.get("max_budget").and_then(Value::as_f64);
    if let Some(budget) = budget.filter(|b| key.usage >= *b) {
        let message = format!(
            "Budget has been exceeded! Current cost: {}, Max budget: {budget}",
            key.usage
        );
        return Err(ApiError::new(400, message)
            .with_code("budget_exceeded")
            .into());
    }
    state.charge_chat(&token)?;
    ok(chat_completion("chatcmpl-litellm-", &model, 1))
}
