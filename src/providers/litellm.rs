//! LiteLLM proxy key management (`/key/*`, master key as bearer) and
//! verification (`/v1/models`, `/v1/chat/completions`), per PROVIDERS.md.
//! A key's id is its `token` (the proxy's hash of the key) and its name its
//! `key_alias`, which carries the rotation id for the orphan sweep.

use std::collections::HashSet;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{self, Client};
use super::http::parse_time;
use super::http::{Caller, Quote};
use super::{CreatedKey, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

/// `/key/list` page size: the most the proxy accepts.
const PAGE_SIZE: usize = 100;
/// Stops paging through a proxy whose page count never ends.
const MAX_PAGES: usize = 1_000;

pub struct LiteLlm {
    client: Client,
    master_key: SecretString,
}

impl LiteLlm {
    pub fn new(config: &ProviderConfig, master_key: SecretString) -> Result<Self, ProviderError> {
        Ok(Self {
            client: Client::new(config)?,
            master_key,
        })
    }

    fn management(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, path, &self.master_key)
    }

    /// A management call's body once it succeeded.
    async fn call(
        &self,
        op: &str,
        request: RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        let response = self.client.send(op, request).await?;
        (self.client)
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await
    }

    async fn list_page(&self, page: usize) -> Result<ListPage, ProviderError> {
        let op = "list keys";
        let path = format!("/key/list?return_full_object=true&page={page}&size={PAGE_SIZE}");
        let (status, body) = self.call(op, self.management(Method::GET, &path)).await?;
        self.client.parse(op, status, &body)
    }
}

#[derive(Serialize)]
struct GenerateBody<'a> {
    key_alias: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_budget: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_duration: Option<&'a str>,
    metadata: serde_json::Value,
}

/// The `/key/generate` answer; the secret goes straight into a `SecretString`.
#[derive(Deserialize)]
struct Generated {
    key: Option<SecretString>,
    token: Option<String>,
    key_alias: Option<String>,
    key_name: Option<String>,
}

impl Generated {
    fn into_created(self, requested_alias: &str) -> Result<CreatedKey, &'static str> {
        let secret = self.key.ok_or("missing key")?;
        let id = self.token.ok_or("missing token (the key's hashed id)")?;
        let label = self.key_name.filter(|l| !l.is_empty());
        Ok(CreatedKey {
            id,
            name: self
                .key_alias
                .unwrap_or_else(|| requested_alias.to_string()),
            label: label.unwrap_or_else(|| crate::secret::redacted_label(&secret)),
            secret,
        })
    }
}

#[derive(Deserialize)]
struct ListPage {
    keys: Vec<KeyObject>,
    total_pages: Option<usize>,
}

/// A key as `/key/list` (full objects) and `/key/info` describe it.
#[derive(Deserialize)]
struct KeyObject {
    token: Option<String>,
    key_alias: Option<String>,
    /// The proxy's redacted form of the key (`sk-...abcd`).
    key_name: Option<String>,
    blocked: Option<bool>,
    created_at: Option<String>,
}

impl KeyObject {
    fn into_info(self, known_token: Option<&str>) -> Result<KeyInfo, &'static str> {
        let id = self.token.or(known_token.map(str::to_string));
        Ok(KeyInfo {
            id: id.ok_or("missing token")?,
            name: self.key_alias.unwrap_or_default(),
            label: self.key_name.unwrap_or_default(),
            disabled: self.blocked.unwrap_or(false),
            created_at: self.created_at.as_deref().and_then(parse_time),
        })
    }
}

#[derive(Deserialize)]
struct InfoAnswer {
    info: Option<KeyObject>,
}

/// A 401 typed `key_model_access_denied` (the key may not call that model)
/// or a 400 `budget_exceeded` will not fix itself by waiting.
fn lasting(_status: u16, kind: &str) -> bool {
    kind.ends_with("access_denied") || kind == "budget_exceeded"
}

#[async_trait]
impl Provider for LiteLlm {
    fn entry(&self) -> &str {
        self.client.entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        let op = "create key";
        let body = GenerateBody {
            key_alias: &spec.name,
            models: spec.models.as_deref(),
            max_budget: spec.max_budget,
            budget_duration: spec.budget_duration.as_deref(),
            metadata: json!({ "created_by": "rekey" }),
        };
        let request = self.management(Method::POST, "/key/generate").json(&body);
        let response = self.client.send(op, request).await?;
        let (status, mut raw) = (self.client)
            .success_body(op, Caller::Management, Quote::Nothing, response)
            .await?;
        // Nothing of serde's error is kept here: it could quote the key.
        let parsed = serde_json::from_slice::<Generated>(&raw)
            .map_err(|_| self.client.malformed(op, status, "not the expected JSON"));
        raw.zeroize();
        let created = parsed?.into_created(&spec.name);
        created.map_err(|what| self.client.malformed(op, status, what))
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let (mut keys, mut seen) = (Vec::new(), HashSet::new());
        for page in 1..=MAX_PAGES {
            let answer = self.list_page(page).await?;
            let short = answer.keys.len() < PAGE_SIZE;
            let last = answer.total_pages.map_or(short, |total| page >= total);
            for key in answer.keys {
                let info = key.into_info(None);
                let info = info.map_err(|what| self.client.malformed("list keys", 200, what))?;
                if seen.insert(info.id.clone()) {
                    keys.push(info);
                }
            }
            if last || short {
                return Ok(keys);
            }
        }
        Err(self
            .client
            .malformed("list keys", 200, "paging never ended"))
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        let op = "get key";
        let request = self.management(
            Method::GET,
            &format!("/key/info?key={}", client::encode(id)),
        );
        let response = self.client.send(op, request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let (status, body) = (self.client)
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await?;
        let answer: InfoAnswer = self.client.parse(op, status, &body)?;
        let info = answer
            .info
            .ok_or_else(|| self.client.malformed(op, status, "missing info"))?;
        let info = info.into_info(Some(id));
        info.map(Some)
            .map_err(|what| self.client.malformed(op, status, what))
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        // Validation offers only `delete` for LiteLLM.
        Err(self.unsupported("disable key", id))
    }

    /// A key the proxy no longer holds counts as deleted: versions differ in
    /// how they say so (404, or a 400/500 "failed to delete"), so a refusal
    /// is checked against `/key/info` before it is reported.
    async fn delete_key(&self, id: &str) -> Result<(), ProviderError> {
        let op = "delete key";
        let request = self
            .management(Method::POST, "/key/delete")
            .json(&json!({ "keys": [id] }));
        let response = self.client.send(op, request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let refused = match (self.client)
            .success_body(op, Caller::Management, Quote::ProviderMessage, response)
            .await
        {
            Ok(_) => return Ok(()),
            Err(err @ (ProviderError::Unauthorized { .. } | ProviderError::RateLimited { .. })) => {
                return Err(err);
            }
            Err(err) => err,
        };
        match self.get_key(id).await {
            Ok(None) => Ok(()),
            _ => Err(refused),
        }
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        let (op, request) = match mode {
            VerifyMode::Chat { model } => (
                "verify key (chat)",
                (self.client)
                    .request(Method::POST, "/v1/chat/completions", key)
                    .json(&client::chat_ping(model)),
            ),
            // The proxy's model list requires a valid key; validation
            // offers no key-info check here, so it asks the same.
            VerifyMode::Models | VerifyMode::KeyInfo => (
                "verify key (GET /v1/models)",
                self.client.request(Method::GET, "/v1/models", key),
            ),
        };
        self.client.verify_typed(op, request, lasting).await
    }
}
