//! The HTTP plumbing every provider client shares: building a request with
//! a bearer credential, sending it, turning a non-success answer into a
//! classified `ProviderError` and parsing a body without quoting it.
//! What a status means lives in `http`; the wire shapes live with each API.

use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ProviderError;
use super::http::{self, Caller, Quote};
use crate::config::ProviderConfig;

/// One provider entry's HTTP side: its name (for messages), its base URL
/// (no trailing slash) and the HTTP client built with its timeout.
#[derive(Clone)]
pub(crate) struct Client {
    entry: String,
    base_url: String,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let http = super::http_client(&config.name, config.request_timeout)?;
        Ok(Self::with_http(&config.name, &config.base_url, http))
    }

    pub(crate) fn with_http(entry: &str, base_url: &str, http: reqwest::Client) -> Self {
        Self {
            entry: entry.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub(crate) fn entry(&self) -> &str {
        &self.entry
    }

    /// `{base_url}{path}` with `key` as the bearer credential.
    pub(crate) fn request(&self, method: Method, path: &str, key: &SecretString) -> RequestBuilder {
        let url = format!("{}{path}", self.base_url);
        self.http
            .request(method, url)
            .bearer_auth(key.expose_secret())
    }

    pub(crate) async fn send(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<Response, ProviderError> {
        request
            .send()
            .await
            .map_err(|err| http::transport(&self.entry, op, &err))
    }

    /// The status and body of a successful response; any other status becomes an error.
    pub(crate) async fn success_body(
        &self,
        op: &str,
        caller: Caller,
        quote: Quote,
        response: Response,
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(http::failure(&self.entry, op, caller, quote, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| http::transport(&self.entry, op, &err))?;
        Ok((status, body.into()))
    }

    /// Sends a call made with the key under test; only success matters.
    pub(crate) async fn verify(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<(), ProviderError> {
        self.verify_typed(op, request, |_, _| false).await
    }

    /// Like [`Client::verify`], for APIs whose error bodies carry
    /// `error.type`: a rejection that `lasting(status, type)` says will not
    /// fix itself (a key barred from a model) is permanent, not a key still
    /// propagating that deserves another try.
    pub(crate) async fn verify_typed(
        &self,
        op: &str,
        request: RequestBuilder,
        lasting: fn(u16, &str) -> bool,
    ) -> Result<(), ProviderError> {
        let response = self.send(op, request).await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(self.rejected(op, Rejection::read(response).await, lasting))
    }

    /// What a failed call with the key under test means: permanent when
    /// `lasting(status, error.type)` says so, else the shared classification.
    pub(crate) fn rejected(
        &self,
        op: &str,
        rejection: Rejection,
        lasting: fn(u16, &str) -> bool,
    ) -> ProviderError {
        let Rejection {
            status,
            retry_after,
            message,
            kind,
            ..
        } = rejection;
        match kind.filter(|kind| lasting(status, kind)) {
            Some(kind) => ProviderError::Permanent {
                provider: self.entry.clone(),
                status: Some(status),
                message: format!(
                    "{op}: HTTP {status} ({kind}): {}",
                    message.as_deref().unwrap_or("no error message")
                ),
            },
            None => http::classify(
                &self.entry,
                op,
                Caller::KeyUnderTest,
                status,
                retry_after,
                message,
            ),
        }
    }

    /// Parses a management response without quoting it (`http::parse`).
    pub(crate) fn parse<'a, T: Deserialize<'a>>(
        &self,
        op: &str,
        status: u16,
        body: &'a [u8],
    ) -> Result<T, ProviderError> {
        http::parse(&self.entry, op, status, body)
    }

    pub(crate) fn malformed(&self, op: &str, status: u16, what: &str) -> ProviderError {
        http::malformed(&self.entry, op, status, what)
    }
}

/// An id as one URL path segment or query value: unreserved characters as
/// they are, everything else percent-encoded, so an id from the config
/// (`adopt.key_id`) can never reach another path.
pub(crate) fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A failed answer to a call made with the key under test, read once:
/// the provider's message (scrubbed, bounded), `error.type` and `error.code`.
pub(crate) struct Rejection {
    pub status: u16,
    pub retry_after: Option<std::time::Duration>,
    pub message: Option<String>,
    pub kind: Option<String>,
    /// `error.code` when it is a plain identifier (`http::error_code`).
    pub code: Option<String>,
}

impl Rejection {
    pub(crate) async fn read(response: Response) -> Rejection {
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let kind = serde_json::from_slice::<TypedError>(&body)
            .ok()
            .and_then(|b| b.error.kind);
        Rejection {
            status,
            retry_after,
            message: http::error_message(&body),
            kind,
            code: http::error_code(&body),
        }
    }
}

/// `{ "error": { "type": ... } }`, as ARouter and LiteLLM answer.
#[derive(Deserialize)]
struct TypedError {
    error: TypedErrorDetail,
}

#[derive(Deserialize)]
struct TypedErrorDetail {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The chat ping with `max_tokens: 1`, the cap OpenRouter documents and
/// ARouter's SDKs send (LiteLLM takes it too and renames it for the models
/// that need `max_completion_tokens`).
pub(crate) fn chat_ping(model: &str) -> serde_json::Value {
    let messages = serde_json::json!([{ "role": "user", "content": "ping" }]);
    serde_json::json!({ "model": model, "messages": messages, "max_tokens": 1 })
}

/// The chat ping as OpenAI's current spec has it: `max_completion_tokens: 1`.
/// OpenAI marks `max_tokens` deprecated and its reasoning models (o1, o3,
/// gpt-5...) answer it with 400, which would roll every rotation back.
pub(crate) fn completion_ping(model: &str) -> serde_json::Value {
    let messages = serde_json::json!([{ "role": "user", "content": "ping" }]);
    serde_json::json!({ "model": model, "messages": messages, "max_completion_tokens": 1 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_encoded_into_a_single_segment() {
        assert_eq!(super::encode("key_abc-1.2~"), "key_abc-1.2~");
        assert_eq!(super::encode("../a b?c"), "..%2Fa%20b%3Fc");
    }
}
