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
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let retry_after = http::retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let message = http::error_message(&body);
        let kind = serde_json::from_slice::<TypedError>(&body)
            .ok()
            .and_then(|b| b.error.kind);
        Err(match kind.filter(|kind| lasting(status, kind)) {
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
        })
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

/// The chat ping body every OpenAI-compatible API takes: one token, on `model`.
pub(crate) fn chat_ping(model: &str) -> serde_json::Value {
    let messages = serde_json::json!([{ "role": "user", "content": "ping" }]);
    serde_json::json!({ "model": model, "messages": messages, "max_tokens": 1 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_encoded_into_a_single_segment() {
        assert_eq!(super::encode("key_abc-1.2~"), "key_abc-1.2~");
        assert_eq!(super::encode("../a b?c"), "..%2Fa%20b%3Fc");
    }
}
