//! Readiness: a cheap start-up probe that the stores and providers the
//! config names answer — one read per store entry (of the first secret a
//! policy writes there: it proves the credentials and the way there, not
//! that every secret exists, which each rotation finds out) and one
//! cheap management call per provider entry ([`Provider::probe`]: the first
//! page of its key list, never the whole set), each bounded by a timeout. A
//! provider answering 429 is asked again within that timeout, after its
//! Retry-After (or [`RATE_LIMITED_PAUSE`]) when that still fits.
//! Until it succeeds `/readyz` answers 503 with the reason; a failed probe is
//! retried, so a store that comes up late makes the daemon ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::Daemon;
use crate::app::App;
use crate::backoff::Backoff;
use crate::names::ProviderName;
use crate::providers::{Provider, ProviderError};

/// Each read gets this long (a provider's 429 retries included).
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a 429 that names no Retry-After.
const RATE_LIMITED_PAUSE: Duration = Duration::from_secs(1);
/// Calls per provider per probe: a 429 is retried, but not forever.
const PROVIDER_ATTEMPTS: u32 = 5;
/// Reads in flight at once (a fleet of secrets must not stampede the store).
const CONCURRENCY: usize = 16;
/// Pause before probing again after a failure: every 30 s, no growth.
const RETRY: Backoff = Backoff::constant(Duration::from_secs(30));
/// Problems named in the reason; the rest are counted.
const SHOWN_PROBLEMS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The start-up probe has not finished yet.
    Probing,
    Ready,
    /// The last probe failed; why (store and provider entries named).
    Failed(String),
}

impl Daemon {
    pub fn readiness(&self) -> Readiness {
        self.shared
            .readiness
            .lock()
            .expect("readiness lock poisoned")
            .clone()
    }

    fn set_readiness(&self, readiness: Readiness) {
        *self
            .shared
            .readiness
            .lock()
            .expect("readiness lock poisoned") = readiness;
    }

    /// Probes until the app's stores and providers answer (or shutdown).
    pub async fn probe_until_ready(&self) {
        let mut failures = 0u32;
        loop {
            let reason = match probe(&self.app()).await {
                Ok(()) => {
                    info!("ready: every store and provider answered");
                    self.set_readiness(Readiness::Ready);
                    return;
                }
                Err(reason) => reason,
            };
            let pause = RETRY.delay(failures);
            failures = failures.saturating_add(1);
            warn!(%reason, retry_in_s = pause.as_secs(), "not ready");
            self.set_readiness(Readiness::Failed(reason));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shared.cancel.cancelled() => return,
            }
        }
    }
}

/// One read per store entry and one [`Provider::probe`] per provider entry.
/// `Err` names every entry that did not answer (the first few in full).
pub async fn probe(app: &App) -> Result<(), String> {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut checks = JoinSet::new();
    for (what, policy) in targets(app) {
        // Validation guarantees the store entry exists.
        let store = app.stores[&policy.target.store].clone();
        let target = policy.target.clone();
        let limit = limit.clone();
        checks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            bounded(what, store.read_current(&target)).await
        });
    }
    for (entry, provider) in providers(app) {
        let limit = limit.clone();
        checks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let what = format!("providers.{entry}");
            bounded(what, probe_provider(provider.as_ref(), CHECK_TIMEOUT)).await
        });
    }
    let mut problems: Vec<String> = checks
        .join_all()
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort();
    let more = problems.len().saturating_sub(SHOWN_PROBLEMS);
    problems.truncate(SHOWN_PROBLEMS);
    let mut reason = problems.join("; ");
    if more > 0 {
        reason.push_str(&format!("; and {more} more"));
    }
    Err(reason)
}

/// Each store entry once, with the first policy (in config order) that
/// writes to it: a fleet of 10,000 secrets costs one read per entry.
fn targets(app: &App) -> Vec<(String, &crate::policy::Policy)> {
    let mut seen = BTreeMap::new();
    for policy in &app.config.policies {
        seen.entry(policy.target.store.clone()).or_insert(policy);
    }
    seen.into_iter()
        .map(|(store, policy)| {
            let secret = &policy.target.secret_id;
            (format!("stores.{store} (secret {secret})"), policy)
        })
        .collect()
}

/// Each provider entry once, scoped the way its first policy uses it (OpenAI
/// lists a project's keys); an entry no policy uses is asked as it is.
fn providers(app: &App) -> Vec<(ProviderName, Arc<dyn crate::providers::Provider>)> {
    app.providers
        .iter()
        .map(|(entry, shared)| {
            let client = match app.config.policies.iter().find(|p| &p.provider == entry) {
                Some(policy) => app.ctx(policy).provider,
                None => shared.clone(),
            };
            (entry.clone(), client)
        })
        .collect()
}

/// One [`Provider::probe`], asked again after a 429 while its pause still
/// fits in `budget` (at most [`PROVIDER_ATTEMPTS`] calls): a rate limit says
/// the credential works and the provider is busy, not that it is down.
pub async fn probe_provider(
    provider: &dyn Provider,
    budget: Duration,
) -> Result<(), ProviderError> {
    let deadline = tokio::time::Instant::now() + budget;
    let mut attempt = 1;
    loop {
        let err = match provider.probe().await {
            Ok(()) => return Ok(()),
            Err(e @ ProviderError::RateLimited { .. }) => e,
            Err(other) => return Err(other),
        };
        let pause = err.retry_after().unwrap_or(RATE_LIMITED_PAUSE);
        let fits = tokio::time::Instant::now() + pause < deadline;
        if attempt >= PROVIDER_ATTEMPTS || !fits {
            return Err(err);
        }
        attempt += 1;
        tokio::time::sleep(pause).await;
    }
}

async fn bounded<T, E: std::fmt::Display>(
    what: String,
    call: impl Future<Output = Result<T, E>>,
) -> Result<(), String> {
    within(CHECK_TIMEOUT, call)
        .await
        .map(drop)
        .map_err(|e| format!("{what}: {e}"))
}

/// `call`'s answer if it comes within `limit`, its error as text; a call
/// still open at `limit` is "no answer within Ns".
pub(crate) async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
    }
}
