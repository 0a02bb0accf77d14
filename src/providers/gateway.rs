//! Verification through an OpenAI-compatible gateway (`verify.base_url`):
//! the key under test is tried where the applications use it (a LiteLLM
//! proxy, an internal gateway), as `GET {base_url}/models` or a one-token
//! `POST {base_url}/chat/completions`. The ping caps the answer with
//! `max_completion_tokens`, as OpenAI's current spec has it: a gateway that
//! passes calls through to OpenAI relays its 400 for `max_tokens` on a
//! reasoning model. Every other call goes to the wrapped provider.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use reqwest::Method;

use super::client::{self, Client};
use super::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::policy::VerifyMode;

pub struct GatewayVerify {
    inner: Arc<dyn Provider>,
    /// Talks for the provider entry (its name is in every message).
    gateway: Client,
}

impl GatewayVerify {
    pub fn new(inner: Arc<dyn Provider>, base_url: &str, http: reqwest::Client) -> Self {
        let gateway = Client::with_http(inner.entry(), base_url, http);
        Self { inner, gateway }
    }
}

#[async_trait]
impl Provider for GatewayVerify {
    fn entry(&self) -> &str {
        self.inner.entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        self.inner.create_key(spec).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        self.inner.list_keys().await
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        self.inner.probe().await
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.inner.get_key(id).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.inner.disable_key(id).await
    }

    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        self.inner.delete_key(id).await
    }

    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        self.inner.archive_key(id).await
    }

    fn assisted(&self) -> bool {
        self.inner.assisted()
    }

    fn paced(&self) -> bool {
        self.inner.paced()
    }

    fn queue_delay(&self) -> std::time::Duration {
        self.inner.queue_delay()
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        let gateway = &self.gateway;
        let (op, request) = match mode {
            VerifyMode::Models => (
                "verify key through verify.base_url (GET /models)",
                gateway.request(Method::GET, "/models", key),
            ),
            VerifyMode::Chat { model } => (
                "verify key through verify.base_url (chat)",
                gateway
                    .request(Method::POST, "/chat/completions", key)
                    .json(&client::completion_ping(model)),
            ),
            // Validation offers only models and chat with a base_url.
            VerifyMode::KeyInfo => {
                return Err(self.unsupported("a key-info check through verify.base_url", "-"));
            }
        };
        gateway.verify(op, request).await
    }
}
