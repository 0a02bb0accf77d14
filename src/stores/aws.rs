//! AWS Secrets Manager through `aws-sdk-secretsmanager`: the key lives in
//! the `AWSCURRENT` version, a rotation stages `AWSPENDING` (with the
//! rotation id as `ClientRequestToken`) and moves `AWSCURRENT` onto it, and
//! AWS labels the old version `AWSPREVIOUS`.
//!
//! Every read names its staging label: without one, moto (and AWS caches in
//! front of it) may answer with a stale version.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use secrecy::{ExposeSecret, SecretString};

use super::{Base, Pending, Promoted, SecretStore, StoreError, format};
use crate::policy::Target;

mod errors;
mod promote;

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";
const PREVIOUS: &str = "AWSPREVIOUS";

pub struct AwsSecretsManager {
    entry: String,
    client: Client,
    /// The `endpoint_url` the client was built with, for messages (the
    /// SDK's config does not give it back).
    endpoint: Option<String>,
}

/// One version of a secret: its id and full secret string.
struct Version {
    id: String,
    value: SecretString,
}

/// `VersionIdsToStages` of a secret.
type Stages = HashMap<String, Vec<String>>;

impl AwsSecretsManager {
    /// Builds a client from the default credential chain, for `region`, and
    /// talking to `endpoint_url` instead of AWS when given (tests, moto).
    /// No call (its SDK retries included) outlasts `timeout`.
    pub async fn connect(
        entry: &str,
        region: &str,
        endpoint_url: Option<&str>,
        timeout: Duration,
    ) -> Self {
        let timeouts = TimeoutConfig::builder().operation_timeout(timeout).build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .timeout_config(timeouts);
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let mut store = Self::from_client(entry, Client::new(&loader.load().await));
        store.endpoint = endpoint_url.map(str::to_string);
        store
    }

    pub fn from_client(entry: &str, client: Client) -> Self {
        Self {
            entry: entry.to_string(),
            client,
            endpoint: None,
        }
    }

    /// The version carrying `stage`. `None` both when no version carries it
    /// and when the secret is missing: AWS answers the same to both.
    async fn get(&self, target: &Target, stage: &str) -> Result<Option<Version>, StoreError> {
        let request = self
            .client
            .get_secret_value()
            .secret_id(&target.secret_id)
            .version_stage(stage);
        match request.send().await {
            Ok(out) => self.version(target, out).map(Some),
            Err(e) => match self.error("GetSecretValue", target, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn version(&self, target: &Target, out: GetSecretValueOutput) -> Result<Version, StoreError> {
        let Some(value) = out.secret_string else {
            return Err(format::shape(target, "holds binary data, not a string"));
        };
        let id = out
            .version_id
            .ok_or_else(|| self.permanent(target, "version without a VersionId"))?;
        Ok(Version {
            id,
            value: SecretString::from(value),
        })
    }

    /// `VersionIdsToStages`, or `None` when the secret does not exist.
    async fn stages(&self, target: &Target) -> Result<Option<Stages>, StoreError> {
        match self
            .client
            .describe_secret()
            .secret_id(&target.secret_id)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.version_ids_to_stages.unwrap_or_default())),
            Err(e) => match self.error("DescribeSecret", target, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Creates the secret with no value (so no version yet); losing a race
    /// with another creator is fine.
    async fn create(&self, target: &Target) -> Result<(), StoreError> {
        match self
            .client
            .create_secret()
            .name(&target.secret_id)
            .send()
            .await
        {
            Err(e) if e.code() != Some("ResourceExistsException") => {
                Err(self.error("CreateSecret", target, e))
            }
            _ => Ok(()),
        }
    }

    async fn move_stage(
        &self,
        target: &Target,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_secret_version_stage()
            .secret_id(&target.secret_id)
            .version_stage(stage);
        let request = request.set_move_to_version_id(to.map(str::to_string));
        let request = request.set_remove_from_version_id(from.map(str::to_string));
        request
            .send()
            .await
            .map_err(|e| self.error("UpdateSecretVersionStage", target, e))?;
        Ok(())
    }

    /// Writes `value` as the `AWSPENDING` version `token`; returns its id.
    async fn put_pending(
        &self,
        target: &Target,
        token: &str,
        value: &SecretString,
    ) -> Result<String, StoreError> {
        let request = self
            .client
            .put_secret_value()
            .secret_id(&target.secret_id)
            .client_request_token(token);
        let request = request
            .secret_string(value.expose_secret())
            .version_stages(PENDING);
        let out = request
            .send()
            .await
            .map_err(|e| self.error("PutSecretValue", target, e))?;
        Ok(out.version_id.unwrap_or_else(|| token.to_string()))
    }

    /// The stages of a secret that has version `version_id`.
    async fn existing_version(
        &self,
        target: &Target,
        version_id: &str,
    ) -> Result<Stages, StoreError> {
        let stages = self
            .stages(target)
            .await?
            .ok_or_else(|| self.not_found(target))?;
        if !stages.contains_key(version_id) {
            return Err(self.permanent(target, &format!("version {version_id} does not exist")));
        }
        Ok(stages)
    }

    /// The answer to staging `token` again, when a version with that id exists.
    async fn restage(
        &self,
        target: &Target,
        token: &str,
        labels: &[String],
        key: &SecretString,
    ) -> Result<String, StoreError> {
        if labels.iter().any(|l| l == PENDING) {
            let pending = self.read_pending(target).await?;
            if pending.is_none_or(|p| p.key.expose_secret() != key.expose_secret()) {
                return Err(self.permanent(
                    target,
                    &format!("token {token} was already used to stage a different key"),
                ));
            }
        } else if !labels.iter().any(|l| l == CURRENT) {
            return Err(self.permanent(
                target,
                &format!("version {token} exists but is neither pending nor current"),
            ));
        }
        Ok(token.to_string())
    }
}

fn holder<'a>(stages: &'a Stages, stage: &str) -> Option<&'a str> {
    stages
        .iter()
        .find(|(_, labels)| labels.iter().any(|l| l == stage))
        .map(|(id, _)| id.as_str())
}

#[async_trait]
impl SecretStore for AwsSecretsManager {
    fn entry(&self) -> &str {
        &self.entry
    }

    async fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        match self.get(target, CURRENT).await? {
            Some(version) => format::extract_key(target, Some(version.value.expose_secret())),
            None if target.create || self.stages(target).await?.is_some() => Ok(None),
            None => Err(self.not_found(target)),
        }
    }

    async fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        let version = self.get(target, PREVIOUS).await?;
        format::extract_key(target, version.as_ref().map(|v| v.value.expose_secret()))
    }

    async fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        let Some(version) = self.get(target, PENDING).await? else {
            return Ok(None);
        };
        let key = format::extract_key(target, Some(version.value.expose_secret()))?;
        Ok(key.map(|key| Pending {
            version_id: version.id,
            key,
        }))
    }

    /// On a secret with no versions (just created), AWS attaches `AWSCURRENT`
    /// to the first version whatever the request says, so that key is current
    /// before it is verified; there was no key to keep working anyway.
    async fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError> {
        let current = match self.stages(target).await? {
            Some(stages) => match stages.get(token) {
                Some(labels) => return self.restage(target, token, labels, key).await,
                None => self.get(target, CURRENT).await?.map(|v| v.value),
            },
            None if target.create => {
                self.create(target).await?;
                None
            }
            None => return Err(self.not_found(target)),
        };
        // Built before any write, so a shape error creates no version.
        let value = format::replace_key(target, current.as_ref().map(|v| v.expose_secret()), key)?;
        self.put_pending(target, token, &value).await
    }

    /// One `PutSecretValue` on the normal path: the value is built from
    /// `base` (read by the caller), the token is fresh, so neither the
    /// stages nor the current value need reading again. A base with no
    /// current version (a first key, a secret to create) takes `stage`'s
    /// path, which reads what it needs.
    async fn stage_from(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
        base: &Base,
    ) -> Result<String, StoreError> {
        let (Some(_), Some(current)) = (&base.version, &base.value) else {
            return self.stage(target, token, key).await;
        };
        let value = format::replace_key(target, Some(current.expose_secret()), key)?;
        self.put_pending(target, token, &value).await
    }

    async fn promote(&self, target: &Target, version_id: &str) -> Result<(), StoreError> {
        let stages = self.existing_version(target, version_id).await?;
        self.swap(target, version_id, &stages).await
    }

    async fn base(&self, target: &Target) -> Result<Base, StoreError> {
        let Some(current) = self.get(target, CURRENT).await? else {
            return Ok(Base::default());
        };
        let key = format::extract_key(target, Some(current.value.expose_secret()))?;
        Ok(Base {
            version: Some(current.id),
            value: Some(current.value),
            key,
        })
    }

    async fn promote_if(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError> {
        match base.version.as_deref() {
            Some(old) if old != version_id => self.move_current(target, version_id, old).await,
            _ => self.promote_described(target, version_id, base).await,
        }
    }

    async fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
        let stages = self.stages(target).await?.unwrap_or_default();
        Ok(holder(&stages, CURRENT).map(str::to_string))
    }

    fn placement(&self, target: &Target) -> String {
        format!(
            "run: aws secretsmanager put-secret-value --secret-id {} --secret-string '<new value>' --version-stages {PENDING}{}",
            target.secret_id,
            super::placed_shape(target)
        )
    }

    async fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        let Some(stages) = self.stages(target).await? else {
            return Ok(());
        };
        match holder(&stages, PENDING) {
            Some(pending) => self.move_stage(target, PENDING, None, Some(pending)).await,
            None => Ok(()),
        }
    }
}
