//! The `Provider` seam: creating, listing, verifying and revoking keys at an
//! LLM provider. One implementation per provider API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::config::{ProviderConfig, ProviderKind};
use crate::policy::{LimitReset, Policy, VerifyMode};

pub mod anthropic;
pub mod arouter;
mod client;
pub mod gateway;
mod http;
mod keys_api;
pub mod limited;
pub mod litellm;
pub mod openai;
pub mod openrouter;
pub(crate) mod usage;

pub use usage::{KeyUsage, Spend, UsageSignal};

/// A key just created: the only moment its secret is visible.
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub label: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// What the provider tells about an existing key (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub label: String,
    pub disabled: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// Spend and last use as the provider reported them; `None` when this
    /// answer carried neither (e.g. OpenAI's account lookup, which does not
    /// show its key).
    pub usage: Option<KeyUsage>,
    /// What the key may still spend before its limit (OpenRouter, ARouter);
    /// `None` when it has no limit or the provider does not say.
    pub limit_remaining: Option<f64>,
    /// When the provider expires the key, where it says.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Parameters for a new key. Validation guarantees a provider only gets
/// the parameters it supports (`ProviderKind::key_params`).
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    pub name: String,
    pub limit: Option<f64>,
    pub limit_reset: Option<LimitReset>,
    pub include_byok_in_limit: Option<bool>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_providers: Option<Vec<String>>,
    pub allowed_models: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
}

/// What a successful delete found: the operator's log tells a key rekey
/// deleted from one that was gone before it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Now,
    /// The provider answered 404: nothing was left to delete.
    AlreadyGone,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The `[providers.<name>]` entry this talks for (used in messages).
    fn entry(&self) -> &str;
    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError>;
    /// All keys, including disabled ones, across all pages.
    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError>;
    /// Readiness: one cheap authenticated management call that proves the
    /// credential works, never a walk of the whole key set. Providers with a
    /// one-page listing override it; the default lists (one call for a
    /// provider whose listing is a single page).
    async fn probe(&self) -> Result<(), ProviderError> {
        self.list_keys().await.map(drop)
    }
    /// `Ok(None)` when the provider says 404.
    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError>;
    async fn disable_key(&self, id: &str) -> Result<(), ProviderError>;
    /// Deleting a key that is already gone (404) succeeds, and says so.
    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError>;
    /// One verification attempt with the key itself (not the management key).
    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError>;

    /// Anthropic: status `archived`. Validation only offers it where supported.
    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        Err(self.unsupported("archive a key", id))
    }

    /// Assisted rotation: the provider cannot create keys; a person places
    /// the new key as the store's pending value (`create_key` is never called).
    fn assisted(&self) -> bool {
        false
    }

    /// Whether a 429 of this client's management calls already holds its
    /// next calls (`limited`): a retry then waits on that, not on its own.
    fn paced(&self) -> bool {
        false
    }

    /// How long a management call made now would wait in this client's
    /// limiter before it is sent (`limited`); zero without one.
    fn queue_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// A client scoped to one policy (OpenAI: its `project_id`); `None`: this one serves all.
    fn for_policy(&self, _policy: &Policy) -> Option<Arc<dyn Provider>> {
        None
    }

    /// The error for an operation this provider's API does not offer.
    fn unsupported(&self, op: &str, id: &str) -> ProviderError {
        ProviderError::Permanent {
            provider: self.entry().to_string(),
            status: None,
            message: format!("{op} ({id}): not offered by this provider's API"),
        }
    }
}

/// Errors classified the way callers branch on them.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// 5xx, timeouts, connection failures: retry with backoff.
    /// `never_sent`: the connection was never made, so nothing happened.
    #[error("provider {provider}: transient failure: {message}")]
    Transient {
        provider: String,
        message: String,
        never_sent: bool,
    },
    /// 429/503: retry after `retry_after` when given. A 503 may come from
    /// a proxy after the call reached the API, so only a 429 proves the call
    /// was not carried out.
    #[error("provider {provider}: rate limited (HTTP {status}){}", retry_hint(.retry_after))]
    RateLimited {
        provider: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 401/403 on the management credential: a configuration problem, never retried.
    #[error(
        "provider {provider}: management key rejected (HTTP {status}): {message}; check providers.{provider}.management_key"
    )]
    Unauthorized {
        provider: String,
        status: u16,
        message: String,
    },
    /// The key under test was rejected (401/403 on a normal key): may still be propagating.
    #[error("provider {provider}: key rejected (HTTP {status}): {message}")]
    KeyRejected {
        provider: String,
        status: u16,
        message: String,
    },
    /// Anything else: bad request, out of credits, malformed response.
    #[error("provider {provider}: {message}")]
    Permanent {
        provider: String,
        status: Option<u16>,
        message: String,
    },
}

fn retry_hint(after: &Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

impl ProviderError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Transient { .. } => "transient",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Unauthorized { .. } => "unauthorized",
            ProviderError::KeyRejected { .. } => "key_rejected",
            ProviderError::Permanent { .. } => "permanent",
        }
    }

    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient { .. } | ProviderError::RateLimited { .. }
        )
    }

    /// Whether the call may have been carried out although it answered with
    /// this error: a timeout, a reset, a 5xx or 503, or a success whose body
    /// could not be read. Only an answer that refuses the request (4xx, a
    /// 429, a connection never made) proves nothing happened.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            ProviderError::Transient { never_sent, .. } => !never_sent,
            ProviderError::RateLimited { status, .. } => *status != 429,
            ProviderError::Unauthorized { .. } | ProviderError::KeyRejected { .. } => false,
            ProviderError::Permanent { status, .. } => {
                status.is_some_and(|s| (200..300).contains(&s) || s >= 500)
            }
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Builds the provider client for a config entry; the management key is
/// resolved by the caller (it may live in AWS Secrets Manager).
pub fn build(
    config: &ProviderConfig,
    management_key: SecretString,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match config.kind {
        ProviderKind::OpenRouter => Arc::new(openrouter::OpenRouter::new(config, management_key)?),
        ProviderKind::ARouter => Arc::new(arouter::ARouter::new(config, management_key)?),
        ProviderKind::OpenAi => Arc::new(openai::OpenAi::new(config, management_key)?),
        ProviderKind::LiteLlm => Arc::new(litellm::LiteLlm::new(config, management_key)?),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(config, management_key)?),
    })
}

/// The client a policy's rotations use: scoped to the policy where the
/// provider needs that, and verifying through `verify.base_url` when set.
pub fn for_policy(
    shared: &Arc<dyn Provider>,
    policy: &Policy,
    http: &reqwest::Client,
) -> Arc<dyn Provider> {
    let scoped = shared.for_policy(policy).unwrap_or_else(|| shared.clone());
    match &policy.verify.base_url {
        Some(url) => Arc::new(gateway::GatewayVerify::new(scoped, url, http.clone())),
        None => scoped,
    }
}

/// The HTTP client every provider uses: the configured per-request timeout,
/// and no redirects — a request carrying a key goes only where configured.
pub(crate) fn http_client(
    entry: &str,
    timeout: Duration,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| ProviderError::Permanent {
            provider: entry.to_string(),
            status: None,
            message: format!("cannot build the HTTP client: {err}"),
        })
}
