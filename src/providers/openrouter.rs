//! OpenRouter key management (`/keys`) and verification, per PROVIDERS.md.
//! Owns the wire shapes of that API; what a failure means is decided in `http`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{self, Caller, Quote};
use super::{CreatedKey, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

/// `GET /keys` pages hold this many keys; a shorter page is the last one.
const PAGE_SIZE: usize = 100;
/// Stops paging through a provider that never returns a short page.
const MAX_PAGES: usize = 10_000;

pub struct OpenRouter {
    entry: String,
    base_url: String,
    management_key: SecretString,
    http: reqwest::Client,
}

impl OpenRouter {
    pub fn new(
        config: &ProviderConfig,
        management_key: SecretString,
    ) -> Result<Self, ProviderError> {
        let http = super::http_client(&config.name, config.request_timeout)?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        Ok(Self {
            entry: config.name.clone(),
            base_url,
            management_key,
            http,
        })
    }

    fn request(&self, method: Method, path: &str, key: &SecretString) -> RequestBuilder {
        let url = format!("{}{path}", self.base_url);
        self.http
            .request(method, url)
            .bearer_auth(key.expose_secret())
    }

    fn management(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, &self.management_key)
    }

    async fn send(&self, op: &str, request: RequestBuilder) -> Result<Response, ProviderError> {
        request
            .send()
            .await
            .map_err(|err| http::transport(&self.entry, op, &err))
    }

    /// The body of a successful response; any other status becomes an error.
    async fn success_body(
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

    /// A management call whose answer is `{ "data": Key }`; `None` on 404.
    async fn key_call(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<Option<KeyInfo>, ProviderError> {
        let response = self.send(op, request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let (status, body) = self
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let parsed: DataEnvelope<KeyObject> = parse(&self.entry, op, status, &body)?;
        let key = parsed
            .data
            .ok_or_else(|| http::malformed(&self.entry, op, status, "missing data"))?;
        key.into_info()
            .map(Some)
            .map_err(|what| http::malformed(&self.entry, op, status, what))
    }

    async fn list_page(&self, offset: usize) -> Result<Vec<KeyInfo>, ProviderError> {
        let op = "list keys";
        let path = format!("/keys?offset={offset}&include_disabled=true");
        let response = self.send(op, self.management(Method::GET, &path)).await?;
        let (status, body) = self
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let parsed: DataEnvelope<Vec<KeyObject>> = parse(&self.entry, op, status, &body)?;
        let keys = parsed
            .data
            .ok_or_else(|| http::malformed(&self.entry, op, status, "missing data"))?;
        let keys = keys
            .into_iter()
            .map(KeyObject::into_info)
            .collect::<Result<Vec<_>, _>>();
        keys.map_err(|what| http::malformed(&self.entry, op, status, what))
    }
}

/// Parses a management response; serde's message is left out because it can
/// quote values from the body.
fn parse<'a, T: Deserialize<'a>>(
    entry: &str,
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
        http::malformed(entry, op, status, &what)
    })
}

#[derive(Serialize)]
struct CreateBody<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_reset: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_byok_in_limit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct KeyObject {
    hash: Option<String>,
    name: Option<String>,
    label: Option<String>,
    disabled: Option<bool>,
    created_at: Option<String>,
}

impl KeyObject {
    fn into_info(self) -> Result<KeyInfo, &'static str> {
        Ok(KeyInfo {
            id: self.hash.ok_or("missing data.hash")?,
            name: self.name.unwrap_or_default(),
            label: self.label.unwrap_or_default(),
            disabled: self.disabled.unwrap_or(false),
            created_at: self.created_at.as_deref().and_then(parse_time),
        })
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The create answer. The secret is read straight into a `SecretString`
/// from wherever the provider put it: top-level `key` or `data.key`.
#[derive(Deserialize)]
struct CreatedEnvelope {
    data: Option<CreatedData>,
    key: Option<SecretString>,
}

#[derive(Deserialize)]
struct CreatedData {
    hash: Option<String>,
    name: Option<String>,
    label: Option<String>,
    key: Option<SecretString>,
}

impl CreatedEnvelope {
    fn into_created(self, requested_name: &str) -> Result<CreatedKey, &'static str> {
        let data = self.data.ok_or("missing data")?;
        let secret = self
            .key
            .or(data.key)
            .ok_or("missing key (neither key nor data.key)")?;
        let id = data.hash.ok_or("missing data.hash")?;
        let label = data.label.filter(|l| !l.is_empty());
        let label = label.unwrap_or_else(|| crate::secret::redacted_label(&secret));
        let name = data.name.unwrap_or_else(|| requested_name.to_string());
        Ok(CreatedKey {
            id,
            name,
            label,
            secret,
        })
    }
}

#[async_trait]
impl Provider for OpenRouter {
    fn entry(&self) -> &str {
        &self.entry
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        let op = "create key";
        let body = CreateBody {
            name: &spec.name,
            limit: spec.limit,
            limit_reset: spec.limit_reset.map(|r| r.as_str()),
            include_byok_in_limit: spec.include_byok_in_limit,
            expires_at: spec.expires_at,
        };
        let response = self
            .send(op, self.management(Method::POST, "/keys").json(&body))
            .await?;
        let (status, mut raw) = self
            .success_body(op, Caller::Management, Quote::Nothing, response)
            .await?;
        // Nothing of serde's error is kept here: it could quote the key.
        let parsed = serde_json::from_slice::<CreatedEnvelope>(&raw)
            .map_err(|_| http::malformed(&self.entry, op, status, "not the expected JSON"));
        raw.zeroize();
        let created = parsed?.into_created(&spec.name);
        created.map_err(|what| http::malformed(&self.entry, op, status, what))
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.list_page(keys.len()).await?;
            let last = page.len() < PAGE_SIZE;
            keys.extend(page);
            if last {
                return Ok(keys);
            }
        }
        Err(http::malformed(
            &self.entry,
            "list keys",
            200,
            "paging never ended",
        ))
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.key_call(
            "get key",
            self.management(Method::GET, &format!("/keys/{id}")),
        )
        .await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        let request = self
            .management(Method::PATCH, &format!("/keys/{id}"))
            .json(&json!({ "disabled": true }));
        // A key that is already gone cannot be used either: the goal is met.
        self.key_call("disable key", request).await?;
        Ok(())
    }

    async fn delete_key(&self, id: &str) -> Result<(), ProviderError> {
        let op = "delete key";
        let response = self
            .send(op, self.management(Method::DELETE, &format!("/keys/{id}")))
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        Ok(())
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        let (op, request) = match mode {
            VerifyMode::Chat { model } => {
                let messages = json!([{ "role": "user", "content": "ping" }]);
                let ping = json!({ "model": model, "messages": messages, "max_tokens": 1 });
                (
                    "verify key (chat)",
                    self.request(Method::POST, "/chat/completions", key)
                        .json(&ping),
                )
            }
            VerifyMode::KeyInfo => (
                "verify key (GET /key)",
                self.request(Method::GET, "/key", key),
            ),
            // Validation does not offer this here: OpenRouter serves /models to anyone.
            VerifyMode::Models => (
                "verify key (GET /models)",
                self.request(Method::GET, "/models", key),
            ),
        };
        let response = self.send(op, request).await?;
        self.success_body(op, Caller::KeyUnderTest, Quote::ProviderMessage, response)
            .await?;
        Ok(())
    }
}
