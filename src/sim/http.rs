//! The HTTP plumbing every simulated API shares: the bearer token of a
//! request, a JSON body decoded into an `ApiError` on failure, and an error
//! body sent with its status (and `Retry-After`), and the one-token chat
//! completion every inference endpoint answers.

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::record::ApiError;

/// `body` with the error's status and, on 429s, its `Retry-After` header:
/// shared by every API's error shape.
pub(super) fn with_status(error: &ApiError, body: Value) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = error.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The token of an `Authorization: Bearer` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

pub(super) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::new(400, format!("Invalid JSON body: {err}")))
}

/// A chat completion of one token ("pong"), in the OpenAI shape every
/// simulated inference endpoint answers with; `id_prefix` is the provider's
/// id style, `prompt_tokens` what it counts for the ping.
pub(super) fn chat_completion(id_prefix: &str, model: &str, prompt_tokens: u64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "id": format!("{id_prefix}{}", now.timestamp_micros()),
        "object": "chat.completion",
        "created": now.timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "pong" },
            "finish_reason": "length",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 1,
            "total_tokens": prompt_tokens + 1,
        },
    })
}
