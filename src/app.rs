//! `App::build(config)`: the one way the daemon is assembled — by `rekey run`,
//! `rekey dev` and the tests alike. Resolves credentials, connects providers,
//! stores and the state journal. `App::build_for` assembles only what one
//! policy needs (`rekey rotate`), so an unrelated provider's credential
//! cannot stop it. A credential that cannot be read is
//! [`BuildError::Credentials`], naming every such reference at once: a
//! runtime failure a later attempt may not hit (an unset variable, a file
//! not yet mounted, AWS unreachable), never a config error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::secret_ref::{Unreadable, describe, resolve, unreadable};
use crate::config::{Config, SecretRef, StateLocation};
use crate::metrics::{Metrics, metered};
use crate::names::{ProviderName, StoreName};
use crate::observer::{Observer, ObserverError};
use crate::policy::Policy;
use crate::providers::limited::{self, Pace};
use crate::providers::{self, Provider, ProviderError};
use crate::rotation::Ctx;
use crate::state::dynamodb::DynamoStateStore;
use crate::state::file::FileStateStore;
use crate::state::{StateError, StateStore};
use crate::stores::{self, SecretStore, StoreError};

pub struct App {
    pub config: Arc<Config>,
    pub providers: BTreeMap<ProviderName, Arc<dyn Provider>>,
    pub stores: BTreeMap<StoreName, Arc<dyn SecretStore>>,
    pub state: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    /// Cancelled on shutdown; rotations stop at their next step boundary.
    pub cancel: CancellationToken,
    /// Where rotation events go: audit log, metrics, notifiers.
    pub observer: Arc<Observer>,
    /// For verification through `verify.base_url` gateways.
    gateway_http: reqwest::Client,
    hook_http: reqwest::Client,
    /// Replicas sharing each provider's rate limit, read by every limiter;
    /// carried over by [`App::rebuild`], so a reload keeps the last count.
    replicas: limited::Replicas,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Never empty; shown as `path: why; path: why`.
    #[error("{}", describe(.0))]
    Credentials(Vec<Unreadable>),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Observer(#[from] ObserverError),
}

/// Per-request timeout of verification calls through a `verify.base_url` gateway.
const GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl App {
    pub async fn build(config: Config) -> Result<App, BuildError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Only what `policy` needs: its provider entry, its store and its
    /// notifiers (`rekey rotate`). An unknown policy name builds no
    /// provider, store or notifier at all.
    pub async fn build_for(config: Config, policy: &str) -> Result<App, BuildError> {
        Self::build(scoped(config, policy)).await
    }

    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<App, BuildError> {
        let notify_problems = unreadable_notify_urls(&config).await;
        let unpaced = build_providers(&config, notify_problems).await?;
        let stores = build_stores(&config).await?;
        let state: Arc<dyn StateStore> = match &config.daemon.state {
            StateLocation::File(dir) => Arc::new(FileStateStore::open(dir)?),
            StateLocation::DynamoDb(table) => Arc::new(DynamoStateStore::open(table).await?),
        };
        let observer = Arc::new(Observer::build(&config).await?);
        let replicas: limited::Replicas = Arc::new(AtomicUsize::new(1));
        let providers = paced(unpaced, &config, &observer.metrics, &replicas);
        let gateway_http = providers::http_client("verify.base_url", GATEWAY_TIMEOUT)?;
        Ok(App {
            config: Arc::new(config),
            providers,
            stores,
            state,
            clock,
            cancel: CancellationToken::new(),
            observer,
            gateway_http,
            hook_http: providers::http_client(
                "on_promote",
                crate::config::bounds::MAX_HOOK_TIMEOUT,
            )?,
            replicas,
        })
    }

    /// The app for a reloaded config: providers and stores are built anew
    /// (credentials read again); the journal, clock, shutdown token and
    /// observer carry over, so metrics keep their history and one shutdown
    /// stops rotations started under either config. The caller has checked
    /// that `daemon.state` did not change.
    pub async fn rebuild(&self, config: Config) -> Result<App, BuildError> {
        Ok(App {
            // The observer carries over: its webhook URLs are not read again.
            // A new pace per entry: a reload starts every limiter afresh.
            providers: paced(
                build_providers(&config, Vec::new()).await?,
                &config,
                &self.observer.metrics,
                &self.replicas,
            ),
            stores: build_stores(&config).await?,
            config: Arc::new(config),
            state: self.state.clone(),
            clock: self.clock.clone(),
            cancel: self.cancel.clone(),
            observer: self.observer.clone(),
            gateway_http: self.gateway_http.clone(),
            hook_http: self.hook_http.clone(),
            replicas: self.replicas.clone(),
        })
    }

    /// Tells every provider limiter, of this app and of the apps a reload
    /// builds from it, that `n` replicas share each provider's
    /// `rate_limit` (from [`StateStore::heartbeat`]); 0 counts as 1. Cheap
    /// and idempotent: one atomic store, read at each call's reservation.
    pub fn set_replicas(&self, n: usize) {
        self.replicas.store(n.max(1), Ordering::Relaxed);
    }

    /// How many replicas the limiters divide each rate by.
    pub fn replicas(&self) -> usize {
        self.replicas.load(Ordering::Relaxed)
    }

    /// The app with `cancel` as its shutdown token, for a caller that
    /// listened for signals before the app existed (`rekey run` waiting for
    /// credentials). Call before the app is shared: nothing holds the old token yet.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> App {
        self.cancel = cancel;
        self
    }

    /// The rotation context of one policy. Validation guarantees its provider and store exist.
    pub fn ctx(&self, policy: &Policy) -> Ctx {
        let provider = providers::for_policy(
            &self.providers[&policy.provider],
            policy,
            &self.gateway_http,
        );
        let metrics = &self.observer.metrics;
        Ctx {
            provider: metered::provider(provider, metrics),
            store: metered::store(self.stores[&policy.target.store].clone(), metrics),
            state: self.state.clone(),
            clock: self.clock.clone(),
            backoff: self.config.daemon.failure_backoff,
            sweep_timeout: self.config.daemon.sweep_timeout,
            cancel: self.cancel.clone(),
            observer: self.observer.clone(),
            provider_span: self.config.providers[&policy.provider].request_timeout,
            store_span: self.config.stores[&policy.target.store].request_timeout,
            lease: None,
            hook_http: self.hook_http.clone(),
            usage_poll: self.config.daemon.usage_poll,
        }
    }
}

/// Reads every management key first, so that all unreadable ones are
/// named at once, together with `unreadable` found before (webhook URLs).
async fn build_providers(
    config: &Config,
    mut unreadable: Vec<Unreadable>,
) -> Result<BTreeMap<ProviderName, Arc<dyn Provider>>, BuildError> {
    let mut keys = Vec::new();
    for (name, entry) in &config.providers {
        match resolve(&entry.management_key).await {
            Ok(key) => keys.push((name, entry, key)),
            Err(message) => unreadable.push(Unreadable {
                path: format!("providers.{name}.management_key"),
                message,
            }),
        }
    }
    if !unreadable.is_empty() {
        return Err(BuildError::Credentials(unreadable));
    }
    let mut map = BTreeMap::new();
    for (name, entry, key) in keys {
        map.insert(name.clone(), providers::build(entry, key)?);
    }
    Ok(map)
}

/// Each entry's client behind its own limiter (`providers::limited`), built
/// once here so that every policy's client and the readiness probe share it.
fn paced(
    providers: BTreeMap<ProviderName, Arc<dyn Provider>>,
    config: &Config,
    metrics: &Arc<Metrics>,
    replicas: &limited::Replicas,
) -> BTreeMap<ProviderName, Arc<dyn Provider>> {
    (providers.into_iter())
        .map(|(name, client)| {
            let limits = (config.providers.get(&name)).map_or_else(Default::default, |e| e.limits);
            let metrics = metrics.clone();
            let count: limited::WaitCounter =
                Arc::new(move |entry, waited| metrics.provider_throttled(entry, waited));
            let pace = Pace::new(name.as_str(), limits, Some(count)).shared(replicas.clone());
            let client = limited::wrap(client, Arc::new(pace));
            (name, client)
        })
        .collect()
}

/// Webhook URLs are read again by the notifier; reading them here first
/// lets an unreadable one count as a credential problem, named with the
/// others, rather than a generic build failure.
async fn unreadable_notify_urls(config: &Config) -> Vec<Unreadable> {
    let references: Vec<(String, &SecretRef)> = (config.notify.iter())
        .map(|(name, entry)| (format!("notify.{name}.url"), &entry.url))
        .collect();
    unreadable(&references).await
}

/// `config` cut down to one policy and the provider entry, store and
/// notifiers it names; daemon settings are kept.
fn scoped(mut config: Config, policy: &str) -> Config {
    config.policies.retain(|p| p.name == policy);
    let Some(kept) = config.policies.first() else {
        config.providers.clear();
        config.stores.clear();
        config.notify.clear();
        return config;
    };
    let (provider, store) = (kept.provider.clone(), kept.target.store.clone());
    let notify = kept.notify.clone();
    config.providers.retain(|name, _| *name == provider);
    config.stores.retain(|name, _| *name == store);
    config.notify.retain(|name, _| notify.contains(name));
    config
}

async fn build_stores(
    config: &Config,
) -> Result<BTreeMap<StoreName, Arc<dyn SecretStore>>, BuildError> {
    let mut map = BTreeMap::new();
    for (name, entry) in &config.stores {
        map.insert(name.clone(), stores::build(entry).await?);
    }
    Ok(map)
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
