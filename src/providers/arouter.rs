//! ARouter key management and verification, per PROVIDERS.md. Its key API
//! is OpenRouter's (`keys_api`) in one of two documented shapes: the API
//! reference (`/api/v1/keys`, `hash`, `limit`) or the rotation guide
//! (`/v1/keys`, `id`, `spending_limit`). Inference lives under `/v1`.
//! Listings send `page_size` and page by token or offset to the end; there
//! is no get-by-id in either shape, so a key is found by listing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;

use super::client::{self, Client, Rejection};
use super::keys_api::{IdField, KeysApi, Paging};
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::{ApiShape, ProviderConfig};
use crate::policy::VerifyMode;

pub struct ARouter {
    keys: KeysApi,
    shape: ApiShape,
}

impl ARouter {
    pub fn new(
        config: &ProviderConfig,
        management_key: SecretString,
    ) -> Result<Self, ProviderError> {
        let client = Client::new(config)?;
        let (default_path, id_field) = match config.api {
            ApiShape::Reference => ("/api/v1/keys", IdField::Hash),
            ApiShape::Guide => ("/v1/keys", IdField::Id),
        };
        let path = config.keys_path.as_deref().unwrap_or(default_path);
        Ok(Self {
            keys: KeysApi::new(client, management_key, path, id_field).with_paging(Paging::Sized),
            shape: config.api,
        })
    }

    fn client(&self) -> &Client {
        self.keys.client()
    }
}

/// A 403 whose type says the key may not reach a provider or model
/// (`provider_not_allowed`, `model_not_allowed`) will not fix itself by waiting.
fn lasting(status: u16, kind: &str) -> bool {
    status == 403 && kind.ends_with("_not_allowed")
}

/// ARouter's answer when the account's quota is used up (PROVIDERS.md):
/// no retry helps, a person must act. The docs put it in `error.type`,
/// the Go SDK reads `error.code`: either counts.
const QUOTA_EXCEEDED: &str = "quota_exceeded";

fn quota_exceeded(rejection: &Rejection) -> bool {
    let named = |field: &Option<String>| field.as_deref() == Some(QUOTA_EXCEEDED);
    rejection.status == 403 && (named(&rejection.kind) || named(&rejection.code))
}

/// What a failed verification call means; an exhausted quota is
/// permanent and says what to do, unlike a 403 on a key still propagating.
fn judged(client: &Client, op: &str, rejection: Rejection) -> ProviderError {
    if !quota_exceeded(&rejection) {
        return client.rejected(op, rejection, lasting);
    }
    let detail = rejection.message.as_deref().unwrap_or("no error message");
    ProviderError::Permanent {
        provider: client.entry().to_string(),
        status: Some(403),
        message: format!(
            "{op}: HTTP 403 {QUOTA_EXCEEDED} ({detail}): the ARouter account's quota is used up; raise the quota or add credits — not retried"
        ),
    }
}

/// Both shapes' create body: the spending cap is `limit` in the API
/// reference and `spending_limit` in the rotation guide.
#[derive(Serialize)]
struct CreateBody<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spending_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_reset: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_providers: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_models: Option<&'a [String]>,
}

#[async_trait]
impl Provider for ARouter {
    fn entry(&self) -> &str {
        self.client().entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        let (limit, spending_limit) = match self.shape {
            ApiShape::Reference => (spec.limit, None),
            ApiShape::Guide => (None, spec.limit),
        };
        let body = CreateBody {
            name: &spec.name,
            limit,
            spending_limit,
            limit_reset: spec.limit_reset.map(|r| r.as_str()),
            expires_at: spec.expires_at,
            allowed_providers: spec.allowed_providers.as_deref(),
            allowed_models: spec.allowed_models.as_deref(),
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

    /// Neither shape has `GET /keys/{id}` (PROVIDERS.md): a key not in the
    /// listing is gone.
    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.keys.find(id).await
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
            VerifyMode::KeyInfo => (
                "verify key (GET /api/v1/key)",
                client.request(Method::GET, "/api/v1/key", key),
            ),
            // Unlike OpenRouter's, ARouter's model list requires a valid key.
            VerifyMode::Models => (
                "verify key (GET /v1/models)",
                client.request(Method::GET, "/v1/models", key),
            ),
            VerifyMode::Chat { model } => (
                "verify key (chat)",
                client
                    .request(Method::POST, "/v1/chat/completions", key)
                    .json(&client::chat_ping(model)),
            ),
        };
        let response = client.send(op, request).await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(judged(client, op, Rejection::read(response).await))
    }
}
