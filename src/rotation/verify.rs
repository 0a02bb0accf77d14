//! Verification attempts: the new key — the store's pending version, or a
//! first key still in memory — is tried at the provider with backoff while
//! it propagates, up to `verify.timeout`; a refusal that cannot pass ends it.
//! The pending version is read once per verification (again only while
//! reading it fails): promote makes that version id current, not whatever
//! is pending later, and a Secrets Manager version never changes its value.

use std::time::Duration;

use secrecy::SecretString;
use tracing::info;

use super::run::Run;
use super::steps::Verified;
use crate::backoff::Backoff;
use crate::providers::ProviderError;

/// Pauses between verification attempts: 250 ms doubling to 10 s, exact —
/// one key propagating, nothing to spread out.
const VERIFY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));

impl Run<'_> {
    /// Verification attempts until one works, one fails for good or
    /// `verify.timeout` passes: with `key` (a first key, not written yet) or
    /// with the store's pending version.
    pub(super) async fn verify_attempts(&self, key: Option<&SecretString>) -> Verified {
        let deadline = tokio::time::Instant::now() + self.policy.verify.timeout;
        let mut attempts = 0u32;
        let mut known = key.cloned();
        loop {
            attempts += 1;
            let read = match known.take() {
                Some(key) => Ok(key),
                None => self.read_pending_key().await,
            };
            let result = match read {
                Ok(key) => {
                    let result = self.verify_key(&key).await;
                    known = Some(key);
                    result
                }
                Err(e) => Err(e),
            };
            let observer = &self.ctx.observer;
            observer.verify_attempt(&self.policy.name, &self.policy.provider, result.is_ok());
            let (reason, wait) = match result {
                Ok(()) => break,
                Err(Attempt::Final(reason)) => return Verified::No(reason),
                Err(Attempt::Retry(reason, after)) => {
                    (reason, after.unwrap_or(VERIFY_BACKOFF.delay(attempts - 1)))
                }
            };
            if tokio::time::Instant::now() + wait > deadline {
                let timeout = humantime::format_duration(self.policy.verify.timeout);
                let attempts = crate::text::plural(attempts, "attempt", "attempts");
                return Verified::No(format!(
                    "no success within {timeout} ({attempts}); last: {reason}"
                ));
            }
            info!(attempt = attempts, retry_in_ms = wait.as_millis() as u64, %reason, "new key not working yet");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.ctx.cancel.cancelled() => return Verified::Stopped,
            }
        }
        info!(attempts, "verified new key at the provider");
        Verified::Yes
    }

    /// The key in this rotation's pending version.
    async fn read_pending_key(&self) -> Result<SecretString, Attempt> {
        let expected = self.rotation_ref().version_id.clone();
        let pending = match self.ctx.store.read_pending(&self.policy.target).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(Attempt::Final(
                    "the pending version is gone from the store".into(),
                ));
            }
            Err(e) if e.is_retryable() => return Err(Attempt::Retry(e.to_string(), None)),
            Err(e) => return Err(Attempt::Final(e.to_string())),
        };
        if expected.as_deref() != Some(pending.version_id.as_str()) {
            return Err(Attempt::Final(format!(
                "the pending version is {} instead of this rotation's {}",
                pending.version_id,
                expected.unwrap_or_default()
            )));
        }
        Ok(pending.key)
    }

    async fn verify_key(&self, key: &SecretString) -> Result<(), Attempt> {
        match self
            .ctx
            .provider
            .verify_key(key, &self.policy.verify.mode)
            .await
        {
            Ok(()) => Ok(()),
            Err(e @ ProviderError::KeyRejected { .. }) => Err(Attempt::Retry(e.to_string(), None)),
            Err(e) if e.is_retryable() => Err(Attempt::Retry(e.to_string(), e.retry_after())),
            Err(e) => Err(Attempt::Final(e.to_string())),
        }
    }
}

enum Attempt {
    Retry(String, Option<Duration>),
    Final(String),
}
