//! OpenRouter key management (`/keys`) and verification, per PROVIDERS.md.

use async_trait::async_trait;
use secrecy::SecretString;

use super::{CreatedKey, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

pub struct OpenRouter {
    entry: String,
}

impl OpenRouter {
    pub fn new(
        config: &ProviderConfig,
        _management_key: SecretString,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            entry: config.name.clone(),
        })
    }
}

#[async_trait]
impl Provider for OpenRouter {
    fn entry(&self) -> &str {
        &self.entry
    }
    async fn create_key(&self, _spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        todo!()
    }
    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        todo!()
    }
    async fn get_key(&self, _id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        todo!()
    }
    async fn disable_key(&self, _id: &str) -> Result<(), ProviderError> {
        todo!()
    }
    async fn delete_key(&self, _id: &str) -> Result<(), ProviderError> {
        todo!()
    }
    async fn verify_key(
        &self,
        _key: &SecretString,
        _mode: &VerifyMode,
    ) -> Result<(), ProviderError> {
        todo!()
    }
}
