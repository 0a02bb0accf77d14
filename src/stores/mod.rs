//! The `SecretStore` seam: where applications read their key. A rotation
//! stages the new key as a pending version, promotes it to current (the old
//! one becomes previous) or drops it on rollback.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::{StoreConfig, StoreKind};
use crate::policy::{Format, Target};

pub mod aws;
pub mod file;
pub mod format;

/// A staged, not yet current, version of a secret.
pub struct Pending {
    /// Store-side version id (AWS `VersionId`; equals the staging token).
    pub version_id: String,
    pub key: SecretString,
}

/// What a store held as current when a rotation staged its new key: the
/// compare side of promote's compare-and-swap, and the old key's value for
/// "is the key about to be deleted still current". Kept in memory only (it
/// holds the old value); a rotation resumed after a restart stages again.
#[derive(Default)]
pub struct Base {
    /// The current version's id (AWS), if any.
    pub version: Option<String>,
    /// The whole current value (the file store compares it: a hand edit does
    /// not change its version sidecar).
    pub value: Option<SecretString>,
    /// The key in that value.
    pub key: Option<SecretString>,
}

/// What a compare-and-swap promote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promoted {
    /// The version is current (now, or already was).
    Done,
    /// The current value is no longer the one the pending version was built
    /// from; nothing changed. Stage again from the new current.
    CurrentMoved,
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The `[stores.<name>]` entry this talks for (used in messages).
    fn entry(&self) -> &str;

    /// The key in the current version. `Ok(None)` when there is no key yet
    /// (secret missing with `create = true`, no current version, or the field
    /// absent from the JSON/env document). A missing secret without
    /// `create = true` is [`StoreError::NotFound`]; a current value of the
    /// wrong shape is [`StoreError::Shape`].
    async fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError>;

    /// The key in the previous version (after a promote), if any.
    async fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError>;

    /// The pending version, if any.
    async fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError>;

    /// Stages `key` as the pending version, built from the current value
    /// (JSON/env: only the target field changes). `token` is the rotation id
    /// (AWS `ClientRequestToken`). Returns the version id. Staging again with
    /// the same token and key is a no-op returning the same version id.
    async fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError>;

    /// [`SecretStore::stage`] built from `base`, the current value the
    /// caller read moments ago, instead of reading it again: a store may
    /// skip its own reads (AWS: one `PutSecretValue`). Safe because the
    /// staged value only becomes current through [`SecretStore::promote_if`]
    /// with that same `base`, which refuses when the current value moved
    /// since. The token must be fresh (never staged before): the checks of
    /// a token used again are `stage`'s. Required (no default), like
    /// `placement`: a wrapper that fell back to `stage` would silently add
    /// the reads back.
    async fn stage_from(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
        base: &Base,
    ) -> Result<String, StoreError>;

    /// Makes `version_id` current; the old current becomes previous; no
    /// pending version remains. Promoting the version that is already
    /// current is a no-op (apart from clearing pending).
    async fn promote(&self, target: &Target, version_id: &str) -> Result<(), StoreError>;

    /// The current value as a promote's compare side (read before staging).
    async fn base(&self, target: &Target) -> Result<Base, StoreError>;

    /// [`SecretStore::promote`] as a compare-and-swap: makes `version_id`
    /// current only if the current value is still `base` (AWS:
    /// `RemoveFromVersionId`); an answer that may hide a landed move is
    /// settled by reading the stages back.
    async fn promote_if(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError>;

    /// The id of the version that is current now, read from the store (a
    /// promote whose bookkeeping was cut short counts as done when its move
    /// landed). `None` when there is no current version.
    async fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError>;

    /// Removes the pending version; no-op when there is none.
    async fn drop_pending(&self, target: &Target) -> Result<(), StoreError>;

    /// How a person places a new key as the pending value (assisted
    /// rotation), as an instruction naming this store's exact location.
    /// Required (no default) so that wrappers cannot silently lose it.
    fn placement(&self, target: &Target) -> String;
}

/// What a placed value holds, for formats where it is more than the key.
pub(crate) fn placed_shape(target: &Target) -> String {
    match (&target.format, &target.field) {
        (Format::Raw, _) | (_, None) => String::new(),
        (format, Some(field)) => format!(
            " (the whole {} value as the current one holds it, with the new key in {field})",
            match format {
                Format::Json => "JSON",
                _ => "env",
            }
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `detail`: what the store answered, when it said more than "no"
    /// (Secrets Manager: the one-line error with its region and request id).
    #[error(
        "store {store}: secret {secret_id:?} does not exist (create it, or set create = true in the policy's target){}",
        .detail.as_deref().map(|d| format!("; {d}")).unwrap_or_default()
    )]
    NotFound {
        store: String,
        secret_id: String,
        detail: Option<String>,
    },
    #[error("store {store}: secret {secret_id:?}: {message}")]
    Shape {
        store: String,
        secret_id: String,
        message: String,
    },
    #[error("store {store}: access denied: {message}")]
    Denied { store: String, message: String },
    #[error("store {store}: transient failure: {message}")]
    Transient { store: String, message: String },
    #[error("store {store}: {message}")]
    Permanent { store: String, message: String },
}

impl StoreError {
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::Shape { .. } => "shape",
            StoreError::Denied { .. } => "denied",
            StoreError::Transient { .. } => "transient",
            StoreError::Permanent { .. } => "permanent",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }
}

pub async fn build(config: &StoreConfig) -> Result<Arc<dyn SecretStore>, StoreError> {
    match &config.kind {
        StoreKind::AwsSecretsManager {
            region,
            endpoint_url,
        } => Ok(Arc::new(
            aws::AwsSecretsManager::connect(
                &config.name,
                region,
                endpoint_url.as_deref(),
                config.request_timeout,
            )
            .await,
        )),
        StoreKind::File { dir } => Ok(Arc::new(file::FileStore::new(&config.name, dir))),
    }
}
