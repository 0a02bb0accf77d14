//! Anthropic, per PROVIDERS.md: the Admin API lists keys and sets their
//! status; nothing creates or deletes a key over the API, so rotations are
//! assisted (a person places the new key) and the old key is retired by
//! status (`inactive` or `archived`). Owns the wire shapes of that API and
//! its error body; what a failure means is decided in `http`.

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Caller};
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, KeyUsage, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

const VERSION: &str = "2023-06-01";
const KEYS: &str = "/v1/organizations/api_keys";
/// Keys per list page (the API allows up to 1000).
const PAGE_SIZE: usize = 100;
/// Stops paging through an API that always says `has_more`.
const MAX_PAGES: usize = 10_000;
/// Longest provider error `type` kept in a message.
const MAX_TYPE_CHARS: usize = 40;

pub struct Anthropic {
    entry: String,
    base_url: String,
    admin_key: SecretString,
    http: reqwest::Client,
}

impl Anthropic {
    pub fn new(config: &ProviderConfig, admin_key: SecretString) -> Result<Self, ProviderError> {
        Ok(Self {
            entry: config.name.to_string(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            admin_key,
            http: super::http_client(&config.name, config.request_timeout)?,
        })
    }

    /// Anthropic authenticates with `x-api-key`, not a bearer token.
    fn request(&self, method: Method, path: &str, key: &SecretString) -> RequestBuilder {
        let url = format!("{}{path}", self.base_url);
        let request = self
            .http
            .request(method, url)
            .header("anthropic-version", VERSION);
        match HeaderValue::from_str(key.expose_secret()) {
            Ok(mut value) => {
                value.set_sensitive(true);
                request.header("x-api-key", value)
            }
            // A key with bytes no header may carry cannot authenticate: send none.
            Err(_) => request,
        }
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path, &self.admin_key)
    }

    /// Sends `request`; a 404 is `Ok(None)`, any other failure an error.
    async fn call(
        &self,
        op: &str,
        caller: Caller,
        request: RequestBuilder,
    ) -> Result<Option<(u16, Vec<u8>)>, ProviderError> {
        let response = request
            .send()
            .await
            .map_err(|err| http::transport(&self.entry, op, &err))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.failure(op, caller, response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| http::transport(&self.entry, op, &err))?;
        Ok(Some((status.as_u16(), body.into())))
    }

    /// A non-success answer, classified; the message is `error.type: error.message`.
    async fn failure(&self, op: &str, caller: Caller, response: Response) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let detail = response.bytes().await.ok().and_then(|b| error_detail(&b));
        http::classify(&self.entry, op, caller, status, retry_after, detail)
    }

    /// An Admin API call answering with a key object; `None` on 404.
    async fn key_call(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<Option<KeyInfo>, ProviderError> {
        let Some((status, body)) = self.call(op, Caller::Management, request).await? else {
            return Ok(None);
        };
        let key: KeyObject = http::parse(&self.entry, op, status, &body)?;
        Ok(Some(key.into_info()))
    }

    async fn list_page(&self, after: Option<&str>) -> Result<KeyPage, ProviderError> {
        let op = "list keys";
        let mut path = format!("{KEYS}?limit={PAGE_SIZE}");
        if let Some(id) = after {
            path.push_str(&format!("&after_id={id}"));
        }
        let request = self.admin(Method::GET, &path);
        match self.call(op, Caller::Management, request).await? {
            Some((status, body)) => http::parse(&self.entry, op, status, &body),
            None => Err(http::malformed(
                &self.entry,
                op,
                404,
                "the key list is not found",
            )),
        }
    }

    fn paging(&self, what: &str) -> ProviderError {
        http::malformed(&self.entry, "list keys", 200, what)
    }

    /// Sets a key's status. Gone (404) counts as done: a key that does not
    /// exist cannot be used either; so does a refused change (400) of a key
    /// that is no longer active (an archived key cannot change any more).
    async fn set_status(&self, op: &str, id: &str, status: &str) -> Result<(), ProviderError> {
        let request = self
            .admin(Method::POST, &format!("{KEYS}/{id}"))
            .json(&json!({ "status": status }));
        match self.key_call(op, request).await {
            Err(ProviderError::Permanent {
                status: Some(400), ..
            }) if self.get_key(id).await?.is_none_or(|k| k.disabled) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// `{"type": "error", "error": {"type": "not_found_error", "message": "..."}}`
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorType,
}

#[derive(Deserialize)]
struct ErrorType {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `error.type: error.message`, both bounded; `None` for a body of another shape.
fn error_detail(body: &[u8]) -> Option<String> {
    let message = http::error_message(body)?;
    let kind = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error.kind)
        .filter(|k| {
            k.len() <= MAX_TYPE_CHARS && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
    Some(match kind {
        Some(kind) => format!("{kind}: {message}"),
        None => message,
    })
}

#[derive(Deserialize)]
struct KeyPage {
    data: Vec<KeyObject>,
    #[serde(default)]
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct KeyObject {
    id: String,
    name: Option<String>,
    partial_key_hint: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
}

impl KeyObject {
    fn into_info(self) -> KeyInfo {
        KeyInfo {
            id: self.id,
            name: self.name.unwrap_or_default(),
            label: self.partial_key_hint.unwrap_or_default(),
            disabled: self.status.as_deref() != Some("active"),
            created_at: self.created_at.as_deref().and_then(http::parse_time),
            // Use shows only in the organization usage report
            // (`/v1/organizations/usage_report/messages`), not on the key.
            usage: Some(KeyUsage::no_signal()),
            limit_remaining: None,
            expires_at: None,
        }
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn entry(&self) -> &str {
        &self.entry
    }

    fn assisted(&self) -> bool {
        true
    }

    /// Never called: assisted policies claim a placed key instead.
    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        Err(self.unsupported("create key", &spec.name))
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(after.as_deref()).await?;
            let next = page
                .last_id
                .or_else(|| page.data.last().map(|k| k.id.clone()));
            keys.extend(page.data.into_iter().map(KeyObject::into_info));
            if !page.has_more {
                return Ok(keys);
            }
            // A partial list would make an old key look gone: fail instead.
            match next {
                Some(id) if after.as_ref() != Some(&id) => after = Some(id),
                _ => return Err(self.paging("has_more without a new last_id")),
            }
        }
        Err(self.paging("paging never ended"))
    }

    /// The first page of the key list only.
    async fn probe(&self) -> Result<(), ProviderError> {
        self.list_page(None).await.map(drop)
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        let request = self.admin(Method::GET, &format!("{KEYS}/{id}"));
        self.key_call("get key", request).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.set_status("deactivate key", id, "inactive").await
    }

    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        self.set_status("archive key", id, "archived").await
    }

    /// Never called: an assisted rotation deletes nothing (a person made the key).
    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        Err(self.unsupported("delete key", id))
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        if !matches!(mode, VerifyMode::Models) {
            return Err(self.unsupported("verify key", "only verify.mode = \"models\""));
        }
        let op = "verify key (GET /v1/models)";
        let request = self.request(Method::GET, "/v1/models", key);
        match self.call(op, Caller::KeyUnderTest, request).await? {
            Some(_) => Ok(()),
            None => Err(http::classify(
                &self.entry,
                op,
                Caller::KeyUnderTest,
                404,
                None,
                Some("/v1/models not found: check providers.base_url".into()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_is_named_with_the_message() {
        let body =
            br#"{"type":"error","error":{"type":"not_found_error","message":"no such key"}}"#;
        assert_eq!(
            error_detail(body).as_deref(),
            Some("not_found_error: no such key")
        );
        let odd = br#"{"type":"error","error":{"type":"Weird <b>","message":"m"}}"#;
        assert_eq!(error_detail(odd).as_deref(), Some("m"));
        assert_eq!(error_detail(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn a_key_is_disabled_unless_its_status_is_active() {
        let key = |status: &str| KeyObject {
            id: "apikey_1".into(),
            name: None,
            partial_key_hint: Some("sk-ant-api03-R2D...igAA".into()),
            status: Some(status.into()),
            created_at: Some("2024-10-30T23:58:27.427722Z".into()),
        };
        assert!(!key("active").into_info().disabled);
        assert!(key("inactive").into_info().disabled);
        assert!(key("archived").into_info().disabled);
        let info = key("active").into_info();
        assert_eq!(info.label, "sk-ant-api03-R2D...igAA");
        assert!(info.created_at.is_some());
    }
}
