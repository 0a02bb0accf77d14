//! LiteLLM proxy key management (`/key/*`, master key as bearer) and
//! verification (`/v1/models`, `/v1/chat/completions`), per PROVIDERS.md.
//!
//! A key's id and name are its `key_alias`, which carries the rotation id
//! (the orphan sweep finds keys by it) and which the proxy keeps unique. The
//! proxy's own id, `token`, is the sha256 of the key: next to a label it
//! would let anyone check guesses of the key offline, so it is never
//! recorded, logged or put in an error. Get and delete find the token by
//! listing (`/key/list`, pages of 100) right before the call and drop it
//! after. A key made by hand without alias is named `unaliased@<created_at>`.

use std::collections::HashSet;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{self, Client};
use super::http::parse_time;
use super::http::{Caller, Quote};
use super::usage;
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, KeyUsage, Provider, ProviderError, Spend};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;
use crate::secret::{redacted_label, trimmed_label};

/// `/key/list` page size: the most the proxy accepts.
const PAGE_SIZE: usize = 100;
/// Stops paging through a proxy whose page count never ends.
const MAX_PAGES: usize = 1_000;
/// Starts the id of a key made without `key_alias`; its creation time follows.
const UNALIASED: &str = "unaliased@";

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

    /// Every key across all pages, each once (a key can move between pages
    /// while they are read).
    async fn list_all(&self) -> Result<Vec<Found>, ProviderError> {
        let (mut keys, mut seen) = (Vec::new(), HashSet::new());
        for page in 1..=MAX_PAGES {
            let answer = self.list_page(page).await?;
            let short = answer.keys.len() < PAGE_SIZE;
            let last = answer.total_pages.map_or(short, |total| page >= total);
            for key in answer.keys {
                let found = key.into_found();
                let found = found.map_err(|what| self.client.malformed("list keys", 200, what))?;
                if seen.insert(found.token.clone()) {
                    keys.push(found);
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

    /// The key recorded as `id`, found by listing; `None` when the proxy
    /// holds no such key. Two keys under one id (the proxy enforces unique
    /// aliases, but a key without alias is named by its creation time) are
    /// an error: deleting either could be wrong.
    async fn resolve(&self, op: &str, id: &str) -> Result<Option<Found>, ProviderError> {
        let mut matching: Vec<Found> = (self.list_all().await?.into_iter())
            .filter(|found| is_recorded_as(found, id))
            .collect();
        if matching.len() > 1 {
            return Err(ProviderError::Permanent {
                provider: self.entry().to_string(),
                status: None,
                message: format!(
                    "{op} ({}): {} keys at the proxy carry this id; give each its own key_alias",
                    shown(id),
                    matching.len()
                ),
            });
        }
        Ok(matching.pop())
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

/// The `/key/generate` answer; the secret goes straight into a
/// `SecretString`. Its `token` is not read: the key is known by its alias.
#[derive(Deserialize)]
struct Generated {
    key: Option<SecretString>,
    key_alias: Option<String>,
}

impl Generated {
    fn into_created(self, requested_alias: &str) -> Result<CreatedKey, &'static str> {
        let secret = self.key.ok_or("missing key")?;
        let alias = self.key_alias.filter(|a| !a.is_empty());
        let alias = alias.unwrap_or_else(|| requested_alias.to_string());
        Ok(CreatedKey {
            id: alias.clone(),
            name: alias,
            label: redacted_label(&secret),
            secret,
        })
    }
}

#[derive(Deserialize)]
struct ListPage {
    keys: Vec<KeyObject>,
    total_pages: Option<usize>,
}

/// A key as `/key/list` (full objects) describes it. Its `token` is used
/// to find and delete the key and is dropped right after: it never leaves
/// this module.
#[derive(Deserialize)]
struct KeyObject {
    token: Option<String>,
    key_alias: Option<String>,
    /// The proxy's redacted form of the key (`sk-...abcd`).
    key_name: Option<String>,
    blocked: Option<bool>,
    created_at: Option<String>,
    /// USD spent through the key; read leniently.
    spend: Option<serde_json::Value>,
    /// "When this key was last used"; `null` for never.
    #[serde(default, deserialize_with = "usage::present")]
    last_active: Option<serde_json::Value>,
}

/// A key found at the proxy: the token to call it by, and what rekey may record.
struct Found {
    token: String,
    info: KeyInfo,
}

impl KeyObject {
    /// The id rekey records: the alias, or for a key made without one
    /// (by hand) its creation time, which is as unique and reveals nothing.
    fn id(&self) -> String {
        match self.key_alias.as_deref().filter(|a| !a.is_empty()) {
            Some(alias) => alias.to_string(),
            None => format!(
                "{UNALIASED}{}",
                self.created_at.as_deref().unwrap_or("unknown")
            ),
        }
    }

    /// `spend` and `last_active`: what the proxy knows of the key's use.
    fn usage(
        spend: Option<serde_json::Value>,
        last_active: Option<serde_json::Value>,
    ) -> Option<KeyUsage> {
        let spend = Spend {
            total: usage::amount(spend.as_ref()),
            ..Spend::default()
        };
        KeyUsage::from_parts(spend, Spend::default(), last_active.as_ref())
    }

    fn into_found(self) -> Result<Found, &'static str> {
        let id = self.id();
        let token = self.token.ok_or("missing token")?;
        let info = KeyInfo {
            id,
            name: self.key_alias.unwrap_or_default(),
            label: trimmed_label(self.key_name.as_deref().unwrap_or_default()),
            disabled: self.blocked.unwrap_or(false),
            created_at: self.created_at.as_deref().and_then(parse_time),
            usage: KeyObject::usage(self.spend, self.last_active),
            limit_remaining: None,
            expires_at: None,
        };
        Ok(Found { token, info })
    }
}

/// Whether `found` is the key the journal recorded as `id`: by alias (or
/// creation time, for a key without alias), or by the token itself, which
/// journals written before ids were aliases hold.
fn is_recorded_as(found: &Found, id: &str) -> bool {
    found.info.id == id || found.token == id
}

/// How an id appears in a message: a token recorded by an older version
/// is not repeated.
fn shown(id: &str) -> &str {
    let token_like = id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit());
    if token_like {
        "a key recorded by its token"
    } else {
        id
    }
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

    /// The first page of `/key/list` only.
    async fn probe(&self) -> Result<(), ProviderError> {
        self.list_page(1).await.map(drop)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        let found = self.list_all().await?;
        Ok(found.into_iter().map(|f| f.info).collect())
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        Ok(self.resolve("get key", id).await?.map(|f| f.info))
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        // Validation offers only `delete` for LiteLLM.
        Err(self.unsupported("disable key", shown(id)))
    }

    /// Finds the key's token by listing right before the call. A key the
    /// proxy no longer lists counts as deleted; a refusal (404, or the
    /// 400/500 "failed to delete" some versions answer) is checked against
    /// a fresh listing before it is reported. The proxy's message is not
    /// quoted: it may repeat the token it was given.
    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        let op = "delete key";
        let Some(found) = self.resolve(op, id).await? else {
            return Ok(Deleted::AlreadyGone);
        };
        let request = self
            .management(Method::POST, "/key/delete")
            .json(&json!({ "keys": [found.token] }));
        let response = self.client.send(op, request).await?;
        let refused = match (self.client)
            .success_body(op, Caller::Management, Quote::Nothing, response)
            .await
        {
            Ok(_) => return Ok(Deleted::Now),
            Err(err @ (ProviderError::Unauthorized { .. } | ProviderError::RateLimited { .. })) => {
                return Err(err);
            }
            Err(err) => err,
        };
        match self.resolve(op, id).await {
            // Refused, yet gone now: whoever removed it, it is deleted.
            Ok(None) => Ok(Deleted::Now),
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
