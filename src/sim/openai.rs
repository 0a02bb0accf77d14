//! The OpenAI surface (`/openai/v1`): the organization admin API for a
//! project's service accounts and their keys (admin key only), and
//! `/models` and `/chat/completions` for the keys themselves, each of which
//! sets the key's `last_used_at` in the project key list. Every error
//! has OpenAI's shape `{error: {message, type, param, code}}`. What a
//! service account is in the shared `State` lives in `openai/accounts.rs`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::after_effect::CreatedShape;
use super::faults::Endpoint;
use super::http::{bearer, chat_completion, parse, with_status};
use super::record::ApiError;
use super::{Api, Simulator};

mod accounts;

pub(super) use accounts::seed;

/// The project `Simulator::insert_key_in(Api::OpenAi, ..)` seeds service accounts in.
pub const SIM_OPENAI_PROJECT: &str = "proj_rekeysim";
/// The organization's Default project: it cannot hold service accounts.
pub const SIM_OPENAI_DEFAULT_PROJECT: &str = "proj_default";

const API: Api = Api::OpenAi;
const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];

pub(super) fn router() -> Router<Simulator> {
    let accounts = "/organization/projects/{project}/service_accounts";
    Router::new()
        .route(accounts, post(create).get(list_accounts))
        .route(
            &format!("{accounts}/{{id}}"),
            get(get_account).delete(delete_account),
        )
        .route("/organization/projects/{project}/api_keys", get(list_keys))
        .route("/models", get(models))
        .route("/chat/completions", post(chat))
        .fallback(|| async { Failure::from(ApiError::new(404, "Invalid URL")) })
}

/// An error response in OpenAI's shape; `type` follows from status and code.
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let e = &self.0;
        let kind = match (e.status, e.code.as_deref()) {
            (429, Some("insufficient_quota")) => "insufficient_quota",
            (429, _) => "requests",
            (500..=599, _) => "server_error",
            _ => "invalid_request_error",
        };
        let body = json!({ "error": {
            "message": e.message, "type": kind, "param": Value::Null, "code": e.code,
        }});
        with_status(e, body)
    }
}

type Reply = Result<Response, Failure>;

/// Admin endpoints: only the admin key gets through; a project key is
/// recognised and refused for lack of scopes.
async fn admit_admin(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    sim.admit(API, endpoint).await?;
    let inner = sim.lock();
    let state = &inner.states[&API];
    match bearer(headers) {
        Some(token) if token == state.management_key => Ok(()),
        Some(token) if state.authenticate_normal(token).is_ok() => Err(ApiError::new(
            403,
            "You have insufficient permissions for this operation. Missing scopes: api.management.read.",
        )
        .into()),
        token => Err(incorrect_key(token).into()),
    }
}

/// Inference endpoints: a project key that exists and has propagated, in
/// an organization that still has quota. Returns the key.
async fn admit_key<'h>(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &'h HeaderMap,
) -> Result<&'h str, Failure> {
    sim.admit(API, endpoint).await?;
    let token = bearer(headers);
    let mut inner = sim.lock();
    let quota_exhausted = inner.faults.quota_exhausted();
    let state = inner.api(API);
    let found = token.and_then(|t| Some((t, state.authenticate_normal(t).ok()?)));
    let (token, index) = found.ok_or_else(|| incorrect_key(token))?;
    state.note_use(index);
    if quota_exhausted {
        let message =
            "You exceeded your current quota, please check your plan and billing details.";
        return Err(ApiError::new(429, message)
            .with_code("insufficient_quota")
            .into());
    }
    Ok(token)
}

/// OpenAI's 401 shows a redacted form of the key it was given, never all of it.
fn incorrect_key(token: Option<&str>) -> ApiError {
    let message = match token {
        None => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string(),
        Some(t) => format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            crate::secret::redacted_label(&SecretString::from(t))
        ),
    };
    ApiError::new(401, message).with_code("invalid_api_key")
}

#[derive(Deserialize)]
struct CreateRequest {
    name: Option<String>,
}

async fn create(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Bytes,
) -> Reply {
    admit_admin(&sim, Endpoint::Create, &headers).await?;
    let req: CreateRequest = parse(&body)?;
    let name = req.name.filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| ApiError::new(400, "Missing required parameter: 'name'."))?;
    let make =
        |account: &mut _, delay, reject| accounts::create(account, &project, &name, delay, reject);
    let failure = |e: ApiError| Failure(e).into_response();
    Ok(sim.create_and_answer(API, &CREATED, make, failure).await?)
}

/// Where the create answer keeps the key's value and the service account's id.
const CREATED: CreatedShape = CreatedShape {
    status: StatusCode::OK,
    secret: "/api_key/value",
    id: "/id",
};

/// `limit` (1-100, default 20) and `after` (the last id of the previous page).
#[derive(Deserialize)]
struct ListParams {
    limit: Option<String>,
    after: Option<String>,
}

impl ListParams {
    fn read(
        query: Result<Query<ListParams>, QueryRejection>,
    ) -> Result<(usize, Option<String>), ApiError> {
        let Query(params) = query.map_err(|e| ApiError::new(400, e.body_text()))?;
        params.bounds()
    }

    fn bounds(self) -> Result<(usize, Option<String>), ApiError> {
        let params = self;
        let limit = match params.limit.as_deref() {
            None => 20,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| ApiError::new(400, "limit must be an integer between 1 and 100"))?,
        };
        Ok((limit, params.after))
    }
}

async fn list_accounts(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(project): Path<String>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Reply {
    admit_admin(&sim, Endpoint::List, &headers).await?;
    let (limit, after) = ListParams::read(query)?;
    let mut inner = sim.lock();
    let listing = inner.faults.listing(API, after.is_none(), limit);
    let page = accounts::list_accounts(inner.api(API), &project, limit, after.as_deref(), listing)?;
    Ok(Json(page).into_response())
}

/// The key listing's parameters: paging plus its documented filter.
#[derive(Deserialize)]
struct KeysParams {
    limit: Option<String>,
    after: Option<String>,
    owner_project_access: Option<String>,
}

async fn list_keys(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(project): Path<String>,
    query: Result<Query<KeysParams>, QueryRejection>,
) -> Reply {
    admit_admin(&sim, Endpoint::List, &headers).await?;
    let Query(params) = query.map_err(|e| ApiError::new(400, e.body_text()))?;
    let access = accounts::OwnerAccess::parse(params.owner_project_access.as_deref())?;
    let paging = ListParams {
        limit: params.limit,
        after: params.after,
    };
    let (limit, after) = paging.bounds()?;
    let mut inner = sim.lock();
    let listing = inner.faults.listing(API, after.is_none(), limit);
    let query = (limit, after.as_deref(), access);
    let page = accounts::list_keys(inner.api(API), &project, query, listing)?;
    Ok(Json(page).into_response())
}

async fn get_account(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Reply {
    admit_admin(&sim, Endpoint::Get, &headers).await?;
    let account = accounts::get(sim.lock().api(API), &project, &id)?;
    Ok(Json(account).into_response())
}

async fn delete_account(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> Reply {
    admit_admin(&sim, Endpoint::Delete, &headers).await?;
    let mut inner = sim.lock();
    let exists = accounts::get(inner.api(API), &project, &id).is_ok();
    if exists && inner.faults.after_delete() {
        return Err(accounts::no_account(&id).into());
    }
    let deleted = accounts::delete(inner.api(API), &project, &id)?;
    Ok(Json(deleted).into_response())
}

/// Unlike OpenRouter's, this one needs a working key: it is a free check.
async fn models(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    admit_key(&sim, Endpoint::Models, &headers).await?;
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 1_686_935_002, "owned_by": "system" }))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })).into_response())
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Value>,
    max_tokens: Option<Value>,
}

/// Whether OpenAI serves `model` as a reasoning model, which refuses the
/// deprecated `max_tokens` (PROVIDERS.md): the o-series (`o1`, `o3-mini`,
/// `o4-mini`, dated snapshots too) and `gpt-5` and later. The simulator's
/// rule from the model's name, with or without a gateway's `openai/` prefix.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let name = model.strip_prefix("openai/").unwrap_or(model);
    let o_series = name
        .strip_prefix('o')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    let gpt = name.strip_prefix("gpt-").and_then(|rest| {
        let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
        major.parse::<u32>().ok()
    });
    o_series || gpt.is_some_and(|major| major >= 5)
}

/// OpenAI's 400 for `max_tokens` sent to a reasoning model, in its shape
/// (`param` names the field), as OpenAI and a gateway in front of it answer.
pub(crate) fn refuse_max_tokens(model: &str, body: &[u8]) -> Option<Response> {
    let req: ChatRequest = serde_json::from_slice(body).ok()?;
    if req.max_tokens.is_none() || !is_reasoning_model(model) {
        return None;
    }
    let message = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.";
    let body = json!({ "error": {
        "message": message, "type": "invalid_request_error",
        "param": "max_tokens", "code": "unsupported_parameter",
    }});
    Some((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

async fn chat(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Reply {
    let token = admit_key(&sim, Endpoint::Chat, &headers).await?;
    let req: ChatRequest = parse(&body)?;
    let model = req.model.filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| ApiError::new(400, "you must provide a model parameter"))?;
    if let Some(refused) = refuse_max_tokens(&model, &body) {
        return Ok(refused);
    }
    if req.messages.is_empty() {
        return Err(ApiError::new(400, "[] is too short - 'messages'").into());
    }
    sim.lock().api(API).charge_chat(token)?;
    Ok(Json(chat_completion("chatcmpl-sim", &model, 8)).into_response())
}

#[cfg(test)]
mod tests {
    use super::is_reasoning_model;

    #[test]
    fn reasoning_models_are_the_o_series_and_gpt_5_on() {
        for model in [
            "o1",
            "o1-mini",
            "o3",
            "o4-mini",
            "openai/o3",
            "gpt-5",
            "gpt-5-nano",
            "gpt-6",
        ] {
            assert!(is_reasoning_model(model), "{model}");
        }
        for model in [
            "gpt-4o-mini",
            "gpt-4.1",
            "omni-moderation-latest",
            "o",
            "gpt-3.5-turbo",
            "",
        ] {
            assert!(!is_reasoning_model(model), "{model}");
        }
    }
}
