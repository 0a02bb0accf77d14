//! Anthropic Admin API key management and verification, per PROVIDERS.md. (Stub: being built.)

use async_trait::async_trait;
use secrecy::SecretString;

use super::{CreatedKey, KeyInfo, KeySpec, Provider, ProviderError};
use crate::config::ProviderConfig;
use crate::policy::VerifyMode;

pub struct Anthropic {
    entry: String,
}

impl Anthropic {
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
impl Provider for Anthropic {
    fn entry(&self) -> &str {
        &self.entry
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        Err(self.unsupported("create key", &spec.name))
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        Err(self.unsupported("list keys", "-"))
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        Err(self.unsupported("get key", id))
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        Err(self.unsupported("disable key", id))
    }

    async fn delete_key(&self, id: &str) -> Result<(), ProviderError> {
        Err(self.unsupported("delete key", id))
    }

    async fn verify_key(
        &self,
        _key: &SecretString,
        _mode: &VerifyMode,
    ) -> Result<(), ProviderError> {
        Err(self.unsupported("verify key", "-"))
    }
}
