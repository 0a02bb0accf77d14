//! Turning HTTP failures into `ProviderError`s, shared by provider clients:
//! which statuses are retryable, whose credential a 401 blames, and how much
//! of a response body may appear in a message (never the raw body).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

use super::ProviderError;

/// Longest provider-supplied message kept in an error.
const MAX_MESSAGE_CHARS: usize = 200;

/// Whose credential the request carried: decides what a 401/403 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The management key: a rejection is a configuration problem.
    Management,
    /// The key being verified: a rejection may be propagation or a dead key.
    KeyUnderTest,
}

/// Whether the provider's own `error.message` may be quoted. Create
/// responses are never quoted: that body is the one that can carry a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    ProviderMessage,
    Nothing,
}

/// Classifies a non-success HTTP status. `detail` is the provider's message, if any.
pub(crate) fn classify(
    provider: &str,
    op: &str,
    caller: Caller,
    status: u16,
    retry_after: Option<Duration>,
    detail: Option<String>,
) -> ProviderError {
    let provider = provider.to_string();
    let message = detail.unwrap_or_else(|| "no error message".to_string());
    match status {
        429 | 503 => ProviderError::RateLimited {
            provider,
            status,
            retry_after,
        },
        401 | 403 if caller == Caller::Management => ProviderError::Unauthorized {
            provider,
            status,
            message: format!("{op}: {message}"),
        },
        401 | 403 => ProviderError::KeyRejected {
            provider,
            status,
            message: format!("{op}: {message}"),
        },
        500..=599 => ProviderError::Transient {
            provider,
            message: format!("{op}: HTTP {status}: {message}"),
            never_sent: false,
        },
        402 => ProviderError::Permanent {
            provider,
            status: Some(status),
            message: format!("{op}: HTTP 402 (out of credits): {message}"),
        },
        _ => ProviderError::Permanent {
            provider,
            status: Some(status),
            message: format!("{op}: HTTP {status}: {message}"),
        },
    }
}

/// Classifies a response that is not a success, reading its body for the
/// provider's message only when `quote` allows.
pub(crate) async fn failure(
    provider: &str,
    op: &str,
    caller: Caller,
    quote: Quote,
    response: reqwest::Response,
) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let detail = match quote {
        Quote::ProviderMessage => response.bytes().await.ok().and_then(|b| error_message(&b)),
        Quote::Nothing => Some("provider message withheld".to_string()),
    };
    classify(provider, op, caller, status, retry_after, detail)
}

/// Connection failures and timeouts: always worth retrying.
pub(crate) fn transport(provider: &str, op: &str, err: &reqwest::Error) -> ProviderError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The chain names the cause (refused, reset, DNS); it never holds a header value.
    let mut chain = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::Transient {
        provider: provider.to_string(),
        message: format!("{op}: {what}{chain}"),
        // Refused or unresolvable: the request never reached the provider.
        never_sent: err.is_connect(),
    }
}

/// A success status whose body is not what the API promises.
pub(crate) fn malformed(provider: &str, op: &str, status: u16, what: &str) -> ProviderError {
    ProviderError::Permanent {
        provider: provider.to_string(),
        status: Some(status),
        message: format!("{op}: unexpected response: {what}"),
    }
}

/// Parses a response body; serde's message is left out because it can
/// quote values from the body.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(
    provider: &str,
    op: &str,
    status: u16,
    body: &'a [u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|err| {
        let what = format!(
            "not the expected JSON (line {}, column {})",
            err.line(),
            err.column()
        );
        malformed(provider, op, status, &what)
    })
}

/// An RFC 3339 timestamp as providers write `created_at`; `None` if it is not one.
pub(crate) fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `Retry-After` in seconds; the HTTP-date form is treated as absent.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    /// OpenAI: a string like `insufficient_quota`; OpenRouter: the HTTP status.
    code: Option<serde_json::Value>,
}

/// The provider's `error.message`, scrubbed of key-like words (LiteLLM's
/// 401 for a key it does not know yet quotes the key's sha256, "Key Hash
/// (Token) =..."), then cut to a bounded length (cutting first could leave
/// a piece of a key too short to be recognised).
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let message = crate::secret::scrub(&parsed.error.message?);
    let mut cut: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < message.len() {
        cut.push('…');
    }
    Some(cut)
}

/// The provider's `error.code` when it is a short identifier (OpenAI's
/// `insufficient_quota`, `invalid_api_key`): safe to branch on and to show.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let code = parsed.error.code?.as_str()?.to_string();
    let identifier = code.len() <= 64
        && !code.is_empty()
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    identifier.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(caller: Caller, status: u16) -> &'static str {
        classify("or", "op", caller, status, None, None).kind()
    }

    #[test]
    fn statuses_are_classified_the_way_callers_branch() {
        let table = [
            (429, "rate_limited", "rate_limited"),
            (503, "rate_limited", "rate_limited"),
            (500, "transient", "transient"),
            (502, "transient", "transient"),
            (504, "transient", "transient"),
            (401, "unauthorized", "key_rejected"),
            (403, "unauthorized", "key_rejected"),
            (402, "permanent", "permanent"),
            (400, "permanent", "permanent"),
            (404, "permanent", "permanent"),
            (422, "permanent", "permanent"),
        ];
        for (status, management, under_test) in table {
            assert_eq!(
                kind(Caller::Management, status),
                management,
                "management {status}"
            );
            assert_eq!(
                kind(Caller::KeyUnderTest, status),
                under_test,
                "under test {status}"
            );
        }
    }

    #[test]
    fn rate_limits_carry_the_retry_after_given() {
        let wait = Some(Duration::from_secs(9));
        let err = classify("or", "list keys", Caller::Management, 429, wait, None);
        assert_eq!(err.retry_after(), wait);
        assert!(err.is_retryable());
    }

    #[test]
    fn unauthorized_names_the_provider_entry_and_its_setting() {
        let err = classify("or-prod", "list keys", Caller::Management, 401, None, None);
        let text = err.to_string();
        assert!(
            text.contains("or-prod") && text.contains("providers.or-prod.management_key"),
            "{text}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_dates() {
        let header = |v: &str| HeaderMap::from_iter([(RETRY_AFTER, v.parse().unwrap())]);
        assert_eq!(retry_after(&header("12")), Some(Duration::from_secs(12)));
        assert_eq!(
            retry_after(&header(" 1.5 ")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&header("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&header("-3")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn a_key_or_token_quoted_in_a_message_is_scrubbed_before_the_cut() {
        let token = "625ba5bf137fecb2b9186e41766405588994eed0679ec3a047e4131a9f00e3eb";
        let message = format!(
            "Authentication Error, Invalid proxy server token passed. Received API Key = sk-...wxyz, Key Hash (Token) ={token}. Unable to find token"
        );
        let body = serde_json::json!({ "error": { "message": message } }).to_string();
        let kept = error_message(body.as_bytes()).unwrap();
        assert!(kept.contains("Key Hash (Token) =[redacted]."), "{kept}");
        let padded = format!("{} {token}", "word ".repeat(38));
        let body = serde_json::json!({ "error": { "message": padded } }).to_string();
        let kept = error_message(body.as_bytes()).unwrap();
        assert!(!kept.contains(&token[..8]), "{kept}");
    }

    #[test]
    fn only_the_error_message_field_is_kept_and_it_is_bounded() {
        let body =
            br#"{"error":{"code":400,"message":"bad name","metadata":{"raw":"sk-or-v1-x"}}}"#;
        assert_eq!(error_message(body).as_deref(), Some("bad name"));
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(500));
        assert_eq!(
            error_message(long.as_bytes()).map(|m| m.chars().count()),
            Some(201)
        );
        assert_eq!(error_message(b"<html>gateway</html>"), None);
    }

    #[test]
    fn only_an_identifier_like_string_code_is_read() {
        let code = |body: &str| error_code(body.as_bytes());
        let quota =
            r#"{"error":{"message":"m","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(code(quota).as_deref(), Some("insufficient_quota"));
        assert_eq!(code(r#"{"error":{"code":429,"message":"m"}}"#), None);
        assert_eq!(code(r#"{"error":{"code":null}}"#), None);
        assert_eq!(code(r#"{"error":{"code":"sk-abc def"}}"#), None);
        assert_eq!(code("not json"), None);
    }
}
