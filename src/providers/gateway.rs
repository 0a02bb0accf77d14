//! Verification through an OpenAI-compatible gateway (`verify.base_url`):
//! every call but `verify_key` goes to the wrapped provider. (Stub: being built.)

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::{CreatedKey, KeyInfo, KeySpec, Provider, ProviderError};
use crate::policy::VerifyMode;

pub struct GatewayVerify {
    inner: Arc<dyn Provider>,
    #[allow(dead_code)]
    base_url: String,
    #[allow(dead_code)]
    http: reqwest::Client,
}

impl GatewayVerify {
    pub fn new(inner: Arc<dyn Provider>, base_url: &str, http: reqwest::Client) -> Self {
        Self {
            inner,
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
        }
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

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.inner.get_key(id).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.inner.disable_key(id).await
    }

    async fn delete_key(&self, id: &str) -> Result<(), ProviderError> {
        self.inner.delete_key(id).await
    }

    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        self.inner.archive_key(id).await
    }

    fn assisted(&self) -> bool {
        self.inner.assisted()
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        self.inner.verify_key(key, mode).await
    }
}
