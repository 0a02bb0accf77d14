//! The Anthropic HTTP surface (`/anthropic`): the Admin API's key list, get
//! and status update under `/v1/organizations/api_keys` (admin key only) and
//! `/v1/models` for a normal key, all authenticated by `x-api-key` and
//! requiring `anthropic-version`. There is no create or delete: keys come
//! from `Simulator::insert_key_in(Api::Anthropic, ..)`, as if a person had
//! made them in the Console. A key's `status` lives in the record's `extra`
//! (`active` until changed); `disabled` follows it, so an `inactive` or
//! `archived` key no longer authenticates.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::Endpoint;
use super::http::{parse, with_status};
use super::record::{ApiError, KeyRecord, not_found};
use super::state::State as Account;
use super::{Api, Simulator};

const API: Api = Api::Anthropic;
const STATUSES: [&str; 3] = ["active", "inactive", "archived"];
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

pub(super) fn router() -> Router<Simulator> {
    Router::new()
        .route("/v1/organizations/api_keys", get(list_keys))
        .route(
            "/v1/organizations/api_keys/{id}",
            get(get_key).post(update_key),
        )
        .route("/v1/models", get(models))
        .fallback(|| async { Failure::from(ApiError::new(404, "Not found")) })
}

/// An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let kind = error_type(self.0.status);
        let body = json!({ "type": "error", "error": { "type": kind, "message": self.0.message } });
        with_status(&self.0, body)
    }
}

fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

type Reply = Result<Response, Failure>;

/// Fault knobs first, then the headers every Anthropic call needs.
async fn admit<'h>(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &'h HeaderMap,
) -> Result<&'h str, Failure> {
    sim.admit(API, endpoint).await?;
    if headers.get("anthropic-version").is_none() {
        return Err(ApiError::new(400, "anthropic-version: header is required").into());
    }
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let key = key.map(str::trim).filter(|k| !k.is_empty());
    key.ok_or_else(|| ApiError::new(401, "x-api-key header is required").into())
}

async fn admit_admin(
    sim: &Simulator,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    let key = admit(sim, endpoint, headers).await?;
    Ok(sim.lock().api(API).authorize_management(Some(key))?)
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    after_id: Option<String>,
    status: Option<String>,
}

async fn list_keys(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Reply {
    admit_admin(&sim, Endpoint::List, &headers).await?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(400, format!("limit must be between 1 and {MAX_LIMIT}")).into());
    }
    let mut inner = sim.lock();
    let keys = &inner.api(API).keys;
    let start = match &query.after_id {
        None => 0,
        Some(id) => {
            1 + keys
                .iter()
                .position(|k| &k.hash == id)
                .ok_or_else(|| ApiError::new(400, "after_id does not name a key"))?
        }
    };
    let matching: Vec<&KeyRecord> = (keys.iter().skip(start))
        .filter(|k| query.status.as_deref().is_none_or(|s| s == status(k)))
        .collect();
    let page: Vec<Value> = matching.iter().take(limit).map(|k| key_object(k)).collect();
    Ok(Json(json!({
        "data": page,
        "has_more": matching.len() > limit,
        "first_id": page.first().map(|k| k["id"].clone()),
        "last_id": page.last().map(|k| k["id"].clone()),
    }))
    .into_response())
}

async fn get_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    admit_admin(&sim, Endpoint::Get, &headers).await?;
    let mut inner = sim.lock();
    let key = find(inner.api(API), &id)?;
    Ok(Json(key_object(key)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    name: Option<String>,
    status: Option<String>,
}

async fn update_key(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    admit_admin(&sim, Endpoint::Update, &headers).await?;
    let req: UpdateRequest = parse(&body)?;
    let mut inner = sim.lock();
    let account = inner.api(API);
    let index = account.keys.iter().position(|k| k.hash == id);
    let key = &mut account.keys[index.ok_or_else(not_found)?];
    if let Some(new) = req.status {
        set_status(key, &new)?;
    }
    if let Some(name) = req.name {
        key.name = name;
    }
    key.updated_at = Some(chrono::Utc::now());
    Ok(Json(key_object(key)).into_response())
}

/// Archived is final: an archived key accepts only `archived` again.
fn set_status(key: &mut KeyRecord, new: &str) -> Result<(), ApiError> {
    if !STATUSES.contains(&new) {
        return Err(ApiError::new(
            400,
            "status must be one of active, inactive, archived",
        ));
    }
    if status(key) == "archived" && new != "archived" {
        return Err(ApiError::new(400, "an archived API key cannot be modified"));
    }
    key.extra.insert("status".into(), json!(new));
    key.disabled = new != "active";
    Ok(())
}

/// Free; needs an active normal key (the admin key cannot call models).
async fn models(State(sim): State<Simulator>, headers: HeaderMap) -> Reply {
    let key = admit(&sim, Endpoint::Models, &headers).await?;
    let mut inner = sim.lock();
    let account = inner.api(API);
    let index = account.authenticate_normal(key)?;
    // Kept for the tests' view only: Anthropic's key object shows no use.
    account.note_use(index);
    drop(inner);
    let ids = ["claude-sonnet-4-5", "claude-haiku-4-5"];
    let data: Vec<Value> = (ids.iter())
        .map(|id| json!({ "type": "model", "id": id, "display_name": id, "created_at": "2025-10-01T00:00:00Z" }))
        .collect();
    Ok(Json(json!({
        "data": data,
        "has_more": false,
        "first_id": ids[0],
        "last_id": ids[ids.len() - 1],
    }))
    .into_response())
}

fn find<'a>(account: &'a Account, id: &str) -> Result<&'a KeyRecord, ApiError> {
    account
        .keys
        .iter()
        .find(|k| k.hash == id)
        .ok_or_else(not_found)
}

fn status(key: &KeyRecord) -> &str {
    key.extra
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or(if key.disabled { "inactive" } else { "active" })
}

/// The Admin API key object; the secret shows only as `partial_key_hint`.
fn key_object(key: &KeyRecord) -> Value {
    json!({
        "id": key.hash,
        "type": "api_key",
        "name": key.name,
        "workspace_id": null,
        "created_at": key.created_at,
        "created_by": { "id": "user_sim", "type": "user" },
        "partial_key_hint": partial_key_hint(&key.secret),
        "status": status(key),
    })
}

/// `sk-ant-api03-R2D...igAA`: the first 16 and last 4 characters.
pub(super) fn partial_key_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 24 {
        return "***".into();
    }
    let head: String = chars[..16].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn the_hint_matches_its_own_key_and_no_other() {
        let mut account = Account::new(API, "sk-ant-admin01-x");
        let (_, one) = account.seed("a");
        let (_, two) = account.seed("b");
        assert!(one.starts_with("sk-ant-api03-") && one.ends_with("AA"));
        let hint = partial_key_hint(&one);
        assert_eq!(hint.len(), 16 + 3 + 4);
        let matches =
            |s: &str| crate::secret::label_matches(&hint, &SecretString::from(s.to_string()));
        assert!(matches(&one));
        assert!(!matches(&two));
    }

    #[test]
    fn an_archived_key_stays_archived() {
        let mut account = Account::new(API, "sk-ant-admin01-x");
        account.seed("a");
        let key = &mut account.keys[0];
        assert_eq!(status(key), "active");
        set_status(key, "inactive").unwrap();
        assert!(key.disabled);
        set_status(key, "active").unwrap();
        assert!(!key.disabled);
        set_status(key, "archived").unwrap();
        set_status(key, "archived").unwrap();
        assert_eq!(set_status(key, "active").unwrap_err().status, 400);
        assert_eq!(set_status(key, "revoked").unwrap_err().status, 400);
    }
}
