//! OpenRouter key management (`/keys`) and verification, per PROVIDERS.md.
//! The key-management wire shapes it shares with ARouter live in
//! `keys_api`; this module owns the create body and the verification calls.
//! A provider entry's `workspace_id` goes on every listing and create:
//! without it OpenRouter lists (and creates in) the default workspace only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;

use super::client::{self, Client};
use super::keys_api::{IdField, KeysApi};
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

pub struct OpenRouter {
    keys: KeysApi,
    workspace_id: Option<String>,
}

impl OpenRouter {
    pub fn new(
        config: &ProviderConfig,
        management_key: SecretString,
    ) -> Result<Self, ProviderError> {
        let client = Client::new(config)?;
        let workspace_id = config.workspace_id.clone();
        let keys = KeysApi::new(client, management_key, "/keys", IdField::Hash)
            .in_workspace(workspace_id.as_deref());
        Ok(Self { keys, workspace_id })
    }

    fn client(&self) -> &Client {
        self.keys.client()
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
}

#[async_trait]
impl Provider for OpenRouter {
    fn entry(&self) -> &str {
        self.client().entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        let body = CreateBody {
            name: &spec.name,
            limit: spec.limit,
            limit_reset: spec.limit_reset.map(|r| r.as_str()),
            include_byok_in_limit: spec.include_byok_in_limit,
            expires_at: spec.expires_at,
            workspace_id: self.workspace_id.as_deref(),
        };
        self.keys.create(&spec.name, &body).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        self.keys.list().await
    }

    /// The first page of the key list only.
    async fn probe(&self) -> Result<(), ProviderError> {
        self.keys.probe().await
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.keys.get(id).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.keys.disable(id).await
    }

    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        self.keys.delete(id).await
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        let client = self.client();
        let (op, request) = match mode {
            VerifyMode::Chat { model } => (
                "verify key (chat)",
                client
                    .request(Method::POST, "/chat/completions", key)
                    .json(&client::chat_ping(model)),
            ),
            VerifyMode::KeyInfo => (
                "verify key (GET /key)",
                client.request(Method::GET, "/key", key),
            ),
            // Validation does not offer this here: OpenRouter serves /models to anyone.
            VerifyMode::Models => (
                "verify key (GET /models)",
                client.request(Method::GET, "/models", key),
            ),
        };
        client.verify(op, request).await
    }
}
