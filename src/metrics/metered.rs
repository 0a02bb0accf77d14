//! Provider and store clients that count every call they pass on
//! (`rekey_provider_requests_total`, `rekey_store_requests_total`) by
//! operation and result: `ok` or the error's `kind()`. Wrapped around a
//! rotation's clients in `App::ctx`, so retries and recovery calls count too.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::Metrics;
use crate::policy::{Policy, Target, VerifyMode};
use crate::providers::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::stores::{Base, Pending, Promoted, SecretStore, StoreError};

pub fn provider(inner: Arc<dyn Provider>, metrics: &Arc<Metrics>) -> Arc<dyn Provider> {
    Arc::new(MeteredProvider {
        inner,
        metrics: metrics.clone(),
    })
}

pub fn store(inner: Arc<dyn SecretStore>, metrics: &Arc<Metrics>) -> Arc<dyn SecretStore> {
    Arc::new(MeteredStore {
        inner,
        metrics: metrics.clone(),
    })
}

pub struct MeteredProvider {
    inner: Arc<dyn Provider>,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    async fn count<T>(
        &self,
        op: &str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let result = call.await;
        let outcome = result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        (self.metrics).provider_request(self.inner.entry(), op, outcome);
        result
    }
}

#[async_trait]
impl Provider for MeteredProvider {
    fn entry(&self) -> &str {
        self.inner.entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        self.count("create", self.inner.create_key(spec)).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        self.count("list", self.inner.list_keys()).await
    }

    async fn probe(&self) -> Result<(), ProviderError> {
        self.count("list", self.inner.probe()).await
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.count("get", self.inner.get_key(id)).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.count("disable", self.inner.disable_key(id)).await
    }

    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        self.count("delete", self.inner.delete_key(id)).await
    }

    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        self.count("verify", self.inner.verify_key(key, mode)).await
    }

    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        self.count("archive", self.inner.archive_key(id)).await
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

    fn for_policy(&self, policy: &Policy) -> Option<Arc<dyn Provider>> {
        let scoped = self.inner.for_policy(policy)?;
        Some(provider(scoped, &self.metrics))
    }
}

pub struct MeteredStore {
    inner: Arc<dyn SecretStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    async fn count<T>(
        &self,
        op: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = call.await;
        let outcome = result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        (self.metrics).store_request(self.inner.entry(), op, outcome);
        result
    }
}

#[async_trait]
impl SecretStore for MeteredStore {
    fn placement(&self, target: &Target) -> String {
        self.inner.placement(target)
    }

    fn entry(&self) -> &str {
        self.inner.entry()
    }

    async fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        self.count("read_current", self.inner.read_current(target))
            .await
    }

    async fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        self.count("read_previous", self.inner.read_previous(target))
            .await
    }

    async fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        self.count("read_pending", self.inner.read_pending(target))
            .await
    }

    async fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError> {
        self.count("stage", self.inner.stage(target, token, key))
            .await
    }

    async fn stage_from(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
        base: &Base,
    ) -> Result<String, StoreError> {
        let staged = self.inner.stage_from(target, token, key, base);
        self.count("stage", staged).await
    }

    async fn promote(&self, target: &Target, version_id: &str) -> Result<(), StoreError> {
        self.count("promote", self.inner.promote(target, version_id))
            .await
    }

    async fn base(&self, target: &Target) -> Result<Base, StoreError> {
        self.count("read_current", self.inner.base(target)).await
    }

    async fn promote_if(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError> {
        self.count("promote", self.inner.promote_if(target, version_id, base))
            .await
    }

    async fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
        self.count("read_current", self.inner.current_version(target))
            .await
    }

    async fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        self.count("drop_pending", self.inner.drop_pending(target))
            .await
    }
}
