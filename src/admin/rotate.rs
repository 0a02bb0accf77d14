//! `POST /v1/policies/{name}/rotate[?grace=30s]` (or a JSON body
//! `{"grace": "30s"}`): rotates a policy now, in the daemon, under its
//! concurrency limit. Needs `Authorization: Bearer <daemon.admin_token>`,
//! compared in constant time; off when no token is configured.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{Admin, error};
use crate::daemon::Refusal;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceParam {
    grace: Option<String>,
}

pub async fn rotate(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    query: Result<Query<GraceParam>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = &admin.token else {
        return error(
            StatusCode::FORBIDDEN,
            "the rotate endpoint is off: set daemon.admin_token to enable it",
        );
    };
    if !authorized(&headers, token.expose_secret().as_bytes()) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <daemon.admin_token>)",
        );
        let challenge = header::HeaderValue::from_static("Bearer");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        return response;
    }
    let grace = match grace(query, &body) {
        Ok(grace) => grace,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match admin.daemon.request_rotation(&name, grace).await {
        Ok(()) => accepted(&name, grace),
        Err(refusal) => {
            let status = match &refusal {
                Refusal::UnknownPolicy(_) => StatusCode::NOT_FOUND,
                Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Running(_) | Refusal::LeaseHeld(_) | Refusal::InGrace { .. } => {
                    StatusCode::CONFLICT
                }
                Refusal::Journal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, refusal.to_string())
        }
    }
}

fn accepted(policy: &str, grace: Option<Duration>) -> Response {
    let body = serde_json::json!({
        "policy": policy,
        "accepted": true,
        "trigger": "api",
        "grace": grace.map(|g| humantime::format_duration(g).to_string()),
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Whether the request carries `Bearer <expected>`.
fn authorized(headers: &HeaderMap, expected: &[u8]) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(presented) => constant_time_eq(presented, expected),
        None => false,
    }
}

/// Compares every byte of `presented` whatever it holds, so the time taken
/// says nothing about how much of the token was right; a length mismatch is
/// folded into the result instead of returning early, and `expected` is read
/// cyclically, so its length is not probed by bounds checks either.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    // `secret_ref::resolve` refuses empty credentials; guard the modulo anyway.
    if expected.is_empty() {
        return false;
    }
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, byte) in presented.iter().enumerate() {
        diff |= byte ^ expected[i % expected.len()];
    }
    std::hint::black_box(diff) == 0
}

/// The optional grace, from the query or the JSON body (not both).
fn grace(
    query: Result<Query<GraceParam>, QueryRejection>,
    body: &[u8],
) -> Result<Option<Duration>, String> {
    let Query(from_query) = query.map_err(|e| format!("query: {}", e.body_text()))?;
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        GraceParam::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| format!("body: expected {{\"grace\": \"30s\"}}: {e}"))?
    };
    let (raw, field) = match (from_query.grace, from_body.grace) {
        (Some(_), Some(_)) => {
            return Err("grace: give it in the query or in the body, not both".into());
        }
        (Some(g), None) => (g, "grace (query)"),
        (None, Some(g)) => (g, "grace (body)"),
        (None, None) => return Ok(None),
    };
    // The same parser and bound as `revoke.grace`; the text is not repeated.
    crate::config::bounds::parse_grace(&raw)
        .map(Some)
        .map_err(|e| format!("{field}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_compares_equal() {
        let token = b"s3cret-token";
        assert!(constant_time_eq(b"s3cret-token", token));
        assert!(!constant_time_eq(b"s3cret-tokeN", token));
        assert!(!constant_time_eq(b"s3cret-token2", token), "longer");
        assert!(!constant_time_eq(b"s3cret-toke", token), "a prefix");
        assert!(!constant_time_eq(b"", token));
        assert!(!constant_time_eq(b"", b""), "an empty token never matches");
        assert!(!constant_time_eq(b"tok", b"toktok"), "a prefix of a repeat");
        assert!(!constant_time_eq(b"toktok", b"tok"), "the token twice");
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_token_must_come_as_a_bearer_credential() {
        assert!(authorized(&headers("Bearer tok"), b"tok"));
        assert!(!authorized(&headers("Basic tok"), b"tok"));
        assert!(!authorized(&headers("tok"), b"tok"));
        assert!(!authorized(&HeaderMap::new(), b"tok"));
    }

    fn query(grace: Option<&str>) -> Result<Query<GraceParam>, QueryRejection> {
        Ok(Query(GraceParam {
            grace: grace.map(str::to_string),
        }))
    }

    #[test]
    fn grace_comes_from_the_query_or_the_body() {
        assert_eq!(grace(query(None), b""), Ok(None));
        assert_eq!(
            grace(query(Some("30s")), b""),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            grace(query(None), br#"{"grace": "0s"}"#),
            Ok(Some(Duration::ZERO))
        );
        assert_eq!(grace(query(None), b"{}"), Ok(None));
    }

    #[test]
    fn a_grace_past_the_bound_is_refused_naming_the_field() {
        for huge in ["300000y", "18446744073709551615s", "91d"] {
            let err = grace(query(Some(huge)), b"").unwrap_err();
            assert_eq!(err, "grace (query): must be at most 90d");
            let body = format!(r#"{{"grace": "{huge}"}}"#);
            let err = grace(query(None), body.as_bytes()).unwrap_err();
            assert_eq!(err, "grace (body): must be at most 90d");
        }
        assert_eq!(
            grace(query(Some("90d")), b""),
            Ok(Some(crate::config::bounds::MAX_GRACE))
        );
    }

    #[test]
    fn a_bad_grace_names_where_it_came_from() {
        let bad_query = grace(query(Some("soon")), b"").unwrap_err();
        assert!(
            bad_query.starts_with("grace (query): not a duration"),
            "{bad_query}"
        );
        assert!(!bad_query.contains("soon"), "{bad_query}");
        let bad_body = grace(query(None), br#"{"grace": "-1s"}"#).unwrap_err();
        assert!(bad_body.starts_with("grace (body):"), "{bad_body}");
        let both = grace(query(Some("1s")), br#"{"grace": "1s"}"#).unwrap_err();
        assert!(both.starts_with("grace:"), "{both}");
        let unknown = grace(query(None), br#"{"grase": "1s"}"#).unwrap_err();
        assert!(unknown.contains("unknown field `grase`"), "{unknown}");
        let not_json = grace(query(None), b"grace=1s").unwrap_err();
        assert!(not_json.starts_with("body:"), "{not_json}");
    }
}
