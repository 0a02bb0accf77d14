//! The ARouter HTTP surface (`/arouter`): both documented key-management
//! shapes over the same account — the API reference at `/api/v1/keys`
//! (`hash`, `limit`, secret at top-level `key`, DELETE answers
//! `{data: {deleted: true}}`) and the rotation guide at `/v1/keys`
//! (`id` = `key_<hash>`, `spending_limit`, `usage` as an object of
//! periods, `last_used_at`, secret at `data.key`, DELETE answers 204) — plus whoami at `/api/v1/key` and
//! inference under `/v1`, where the model list needs a key and chat
//! enforces a key's allow-lists. Every call a key authenticates (whoami,
//! models, chat) sets its last use; a chat ping also adds to its spend.
//! Errors are `{error: {message, type}}`.
//! Like the official SDKs, neither shape has a get-by-id (`GET
//! /keys/{id}` answers 405), and listings page by `page_size` (default
//! [`DEFAULT_PAGE_SIZE`], at most [`MAX_PAGE_SIZE`]) with `page_token` or
//! `offset`, answering `next_page_token` while more keys follow.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::after_effect::{self, CreatedShape, ListAnswer};
use super::faults::Endpoint;
use super::http::{bearer, parse, with_status};
use super::record::{self, ApiError, KeyRecord};
use super::state::{self, CreateRequest, UpdateRequest};
use super::{Api, Simulator};

mod inference;

const API: Api = Api::ARouter;
/// The page a listing without `page_size` gets: undocumented at ARouter,
/// small in its guide's example.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// A larger `page_size` is cut down to this.
pub const MAX_PAGE_SIZE: usize = 100;

/// Which of ARouter's documents a keys route follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Reference,
    Guide,
}

pub(super) fn router() -> Router<Simulator> {
    keys_routes(Router::new(), "/api/v1/keys", Shape::Reference)
        .route("/api/v1/key", get(whoami))
        .route("/v1/models", get(inference::models))
        .route("/v1/chat/completions", post(inference::chat))
        .fallback(|| async { Failure::from(ApiError::new(404, "Not found")) })
}

fn keys_routes(router: Router<Simulator>, at: &str, shape: Shape) -> Router<Simulator> {
    let router = router
        .route(
            at,
            post(move |State(sim), headers, body| create_key(shape, sim, headers, body)).get(
                move |State(sim), headers, RawQuery(query)| list_keys(shape, sim, headers, query),
            ),
        )
        .route(
            &format!("{at}/{{id}}"),
            patch(move |State(sim), headers, Path(id), body| {
                update_key(shape, sim, headers, id, body)
            })
            .delete(move |State(sim), headers, Path(id)| delete_key(shape, sim, headers, id)),
        );
    match shape {
        Shape::Reference => keys_routes(router, "/v1/keys", Shape::Guide),
        Shape::Guide => router,
    }
}

/// An error response in ARouter's shape, with `Retry-After` on 429s.
pub(super) struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let kind = self.0.code.as_deref().unwrap_or(match self.0.status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            402 => "insufficient_credits",
            403 => "permission_denied",
            404 => "not_found",
            429 => "rate_limit_exceeded",
            _ => "server_error",
        });
        let body = json!({ "error": { "message": self.0.message, "type": kind } });
        with_status(&self.0, body)
    }
}

type Reply = Result<Response, Failure>;

fn ok(body: Value) -> Reply {
    Ok(Json(body).into_response())
}

/// Admits a call made with a normal key and returns the key's index.
async fn admit_normal(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<(String, usize), Failure> {
    sim.admit(API, endpoint).await?;
    let token = bearer(headers).ok_or_else(|| ApiError::new(401, "Missing API key"))?;
    let mut inner = sim.lock();
    let state = inner.api(API);
    let index = state.authenticate_normal(token)?;
    state.note_use(index);
    Ok((token.to_string(), index))
}

/// The create body of both shapes; each refuses the other's limit field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    limit: Option<f64>,
    spending_limit: Option<f64>,
    limit_reset: Option<String>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    allowed_providers: Option<Vec<String>>,
    allowed_models: Option<Vec<String>>,
}

impl CreateBody {
    fn limit(&self, shape: Shape) -> Result<Option<f64>, ApiError> {
        let (wanted, other, wrong) = match shape {
            Shape::Reference => (self.limit, self.spending_limit, "spending_limit"),
            Shape::Guide => (self.spending_limit, self.limit, "limit"),
        };
        match other {
            Some(_) => Err(ApiError::new(400, format!("Unknown field: {wrong}"))),
            None => Ok(wanted),
        }
    }
}

async fn create_key(shape: Shape, sim: Simulator, headers: HeaderMap, body: Bytes) -> Reply {
    sim.admit_management(API, Endpoint::Create, &headers)
        .await?;
    let body: CreateBody = parse(&body)?;
    let req = CreateRequest {
        name: body.name.clone(),
        limit: body.limit(shape)?,
        limit_reset: body.limit_reset.clone(),
        include_byok_in_limit: None,
        expires_at: body.expires_at,
        workspace_id: None,
    };
    let make = |account: &mut state::State, delay, reject| {
        let (_, secret) = account.create(req, delay, reject)?;
        let key = account.keys.last_mut().expect("the key just created");
        for (field, list) in [
            ("allowed_providers", body.allowed_providers),
            ("allowed_models", body.allowed_models),
        ] {
            key.extra.insert(field.into(), json!(list));
        }
        let mut data = render(key, shape);
        Ok(match shape {
            Shape::Reference => json!({ "data": data, "key": secret }),
            Shape::Guide => {
                data["key"] = json!(secret);
                json!({ "data": data })
            }
        })
    };
    let created = match shape {
        Shape::Reference => &CREATED_REFERENCE,
        Shape::Guide => &CREATED_GUIDE,
    };
    let failure = |e: ApiError| Failure(e).into_response();
    Ok(sim.create_and_answer(API, created, make, failure).await?)
}

/// Where each shape's create answer keeps the secret and the key's id.
const CREATED_REFERENCE: CreatedShape = CreatedShape {
    status: StatusCode::CREATED,
    secret: "/key",
    id: "/data/hash",
};
const CREATED_GUIDE: CreatedShape = CreatedShape {
    status: StatusCode::CREATED,
    secret: "/data/key",
    id: "/data/id",
};

/// A key object as `shape` shows it; never the secret.
fn render(key: &KeyRecord, shape: Shape) -> Value {
    let extra = |field: &str| key.extra.get(field).cloned().unwrap_or(Value::Null);
    match shape {
        Shape::Reference => {
            let mut object = key.to_json();
            object["allowed_providers"] = extra("allowed_providers");
            object["allowed_models"] = extra("allowed_models");
            object
        }
        Shape::Guide => json!({
            "id": format!("key_{}", key.hash),
            "name": key.name,
            "label": key.label,
            "disabled": key.disabled,
            "spending_limit": key.limit,
            "limit_reset": key.limit_reset,
            "usage": {
                "total": key.usage,
                "daily": key.usage,
                "weekly": key.usage,
                "monthly": key.usage,
            },
            "allowed_providers": extra("allowed_providers"),
            "allowed_models": extra("allowed_models"),
            "created_at": key.created_at,
            "updated_at": key.updated_at,
            "expires_at": key.expires_at,
            "last_used_at": key.last_used_at,
        }),
    }
}

/// The simulator's hash behind an id of `shape`.
fn hash_of(shape: Shape, id: &str) -> Result<&str, ApiError> {
    match shape {
        Shape::Reference => Ok(id),
        Shape::Guide => id.strip_prefix("key_").ok_or_else(record::not_found),
    }
}

fn find(state: &state::State, hash: &str) -> Result<usize, ApiError> {
    (state.keys.iter())
        .position(|k| k.hash == hash)
        .ok_or_else(record::not_found)
}

/// Where a listing starts and how much it shows.
struct ListParams {
    offset: usize,
    size: usize,
    include_disabled: bool,
}

impl ListParams {
    /// `page_token` (which wins) or `offset`, `page_size`, `include_disabled`.
    fn parse(query: &str) -> Result<Self, ApiError> {
        let mut params = ListParams {
            offset: 0,
            size: DEFAULT_PAGE_SIZE,
            include_disabled: false,
        };
        let mut token = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("offset", v) => params.offset = number(v, "offset")?,
                ("page_size", v) => match number(v, "page_size")? {
                    0 => return Err(ApiError::new(400, "page_size must be at least 1")),
                    n => params.size = n.min(MAX_PAGE_SIZE),
                },
                ("page_token", v) => token = Some(v.to_string()),
                ("include_disabled", v) => params.include_disabled = v == "true",
                _ => {}
            }
        }
        if let Some(token) = token {
            params.offset = offset_of(&token)?;
        }
        Ok(params)
    }
}

fn number(value: &str, field: &str) -> Result<usize, ApiError> {
    (value.parse()).map_err(|_| ApiError::new(400, format!("{field} must be an integer")))
}

/// The token of the page at `offset`: opaque to clients.
fn token_at(offset: usize) -> String {
    format!("pt_{offset:x}")
}

fn offset_of(token: &str) -> Result<usize, ApiError> {
    let hex = token.strip_prefix("pt_");
    let offset = hex.and_then(|h| usize::from_str_radix(h, 16).ok());
    offset.ok_or_else(|| ApiError::new(400, "page_token is not valid"))
}

async fn list_keys(
    shape: Shape,
    sim: Simulator,
    headers: HeaderMap,
    query: Option<String>,
) -> Reply {
    sim.admit_management(API, Endpoint::List, &headers).await?;
    let params = ListParams::parse(query.as_deref().unwrap_or(""))?;
    let (offset, size) = (params.offset, params.size);
    let mut inner = sim.lock();
    let listing = inner.faults.listing(API, offset == 0, size);
    let answer = listing.answer;
    let keys: Vec<&KeyRecord> = (inner.api(API).keys.iter())
        .filter(|k| params.include_disabled || !k.disabled)
        .collect();
    let total = keys.len();
    let phantoms = listing.phantoms.map(|n| after_effect::phantom(API, n));
    let page = after_effect::page(answer, keys, |_| offset, size, phantoms);
    let more = match answer {
        Some(ListAnswer::Endless) => true,
        Some(ListAnswer::Repeating) => !page.is_empty(),
        _ => offset + page.len() < total,
    };
    let data: Vec<Value> = page.iter().map(|k| render(k, shape)).collect();
    let mut body = json!({ "data": data });
    if more {
        body["next_page_token"] = json!(token_at(offset + data.len()));
    }
    ok(body)
}

/// ARouter's PATCH also takes the allow-lists; the rest is OpenRouter's.
#[derive(Deserialize)]
struct AllowLists {
    allowed_providers: Option<Vec<String>>,
    allowed_models: Option<Vec<String>>,
}

async fn update_key(
    shape: Shape,
    sim: Simulator,
    headers: HeaderMap,
    id: String,
    body: Bytes,
) -> Reply {
    sim.admit_management(API, Endpoint::Update, &headers)
        .await?;
    let req: UpdateRequest = parse(&body)?;
    let lists: AllowLists = parse(&body)?;
    let mut inner = sim.lock();
    let state = inner.api(API);
    let hash = hash_of(shape, &id)?;
    state.update(hash, req)?;
    let index = find(state, hash)?;
    let key = &mut state.keys[index];
    for (field, list) in [
        ("allowed_providers", lists.allowed_providers),
        ("allowed_models", lists.allowed_models),
    ] {
        if let Some(list) = list {
            key.extra.insert(field.into(), json!(list));
        }
    }
    ok(json!({ "data": render(key, shape) }))
}

async fn delete_key(shape: Shape, sim: Simulator, headers: HeaderMap, id: String) -> Reply {
    sim.admit_management(API, Endpoint::Delete, &headers)
        .await?;
    let hash = hash_of(shape, &id)?;
    let mut inner = sim.lock();
    if inner.api(API).has(hash) && inner.faults.after_delete() {
        return Err(record::not_found().into());
    }
    inner.api(API).delete(hash)?;
    match shape {
        Shape::Reference => ok(json!({ "data": { "deleted": true } })),
        Shape::Guide => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

async fn whoami(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let (token, _) = admit_normal(&sim, Endpoint::Whoami, &headers).await?;
    ok(sim.lock().api(API).whoami(&token)?)
}
