//! AWS Secrets Manager through `aws-sdk-secretsmanager`. (Filled in by the store work.)

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Pending, SecretStore, StoreError};
use crate::policy::Target;

pub struct AwsSecretsManager {
    entry: String,
}

impl AwsSecretsManager {
    pub async fn connect(entry: &str, _region: &str, _endpoint_url: Option<&str>) -> Self {
        Self {
            entry: entry.to_string(),
        }
    }
}

#[async_trait]
impl SecretStore for AwsSecretsManager {
    fn entry(&self) -> &str {
        &self.entry
    }
    async fn read_current(&self, _t: &Target) -> Result<Option<SecretString>, StoreError> {
        todo!()
    }
    async fn read_previous(&self, _t: &Target) -> Result<Option<SecretString>, StoreError> {
        todo!()
    }
    async fn read_pending(&self, _t: &Target) -> Result<Option<Pending>, StoreError> {
        todo!()
    }
    async fn stage(
        &self,
        _t: &Target,
        _token: &str,
        _key: &SecretString,
    ) -> Result<String, StoreError> {
        todo!()
    }
    async fn promote(&self, _t: &Target, _version_id: &str) -> Result<(), StoreError> {
        todo!()
    }
    async fn drop_pending(&self, _t: &Target) -> Result<(), StoreError> {
        todo!()
    }
}
