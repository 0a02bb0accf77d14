//! `App::build(config)`: the one way the daemon is assembled — by `rekey run`,
//! `rekey dev` and the tests alike. Resolves credentials, connects providers,
//! stores and the state journal.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, SecretRef, StateLocation};
use crate::events::Observer;
use crate::metrics::metered;
use crate::policy::Policy;
use crate::providers::{self, Provider, ProviderError};
use crate::rotation::Ctx;
use crate::state::file::FileStateStore;
use crate::state::{StateError, StateStore};
use crate::stores::{self, SecretStore, StoreError};

pub struct App {
    pub config: Arc<Config>,
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    pub stores: BTreeMap<String, Arc<dyn SecretStore>>,
    pub state: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    /// Cancelled on shutdown; rotations stop at their next step boundary.
    pub cancel: CancellationToken,
    /// Where rotation events go: audit log, metrics, notifiers.
    pub observer: Arc<Observer>,
    /// For verification through `verify.base_url` gateways.
    gateway_http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("providers.{entry}.management_key: {message}")]
    Credential { entry: String, message: String },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Observer(String),
}

/// Per-request timeout of verification calls through a `verify.base_url` gateway.
const GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl App {
    pub async fn build(config: Config) -> Result<App, BuildError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<App, BuildError> {
        let providers = build_providers(&config).await?;
        let stores = build_stores(&config).await?;
        let state: Arc<dyn StateStore> = match &config.daemon.state {
            StateLocation::File(dir) => Arc::new(FileStateStore::open(dir)?),
        };
        let observer = Arc::new(Observer::build(&config).await?);
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
        })
    }

    /// The app for a reloaded config: providers and stores are built anew
    /// (credentials read again); the journal, clock, shutdown token and
    /// observer carry over, so metrics keep their history and one shutdown
    /// stops rotations started under either config. The caller has checked
    /// that `daemon.state` did not change.
    pub async fn rebuild(&self, config: Config) -> Result<App, BuildError> {
        Ok(App {
            providers: build_providers(&config).await?,
            stores: build_stores(&config).await?,
            config: Arc::new(config),
            state: self.state.clone(),
            clock: self.clock.clone(),
            cancel: self.cancel.clone(),
            observer: self.observer.clone(),
            gateway_http: self.gateway_http.clone(),
        })
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
        }
    }
}

async fn build_providers(
    config: &Config,
) -> Result<BTreeMap<String, Arc<dyn Provider>>, BuildError> {
    let mut map = BTreeMap::new();
    for (name, entry) in &config.providers {
        let key =
            resolve(&entry.management_key)
                .await
                .map_err(|message| BuildError::Credential {
                    entry: name.clone(),
                    message,
                })?;
        map.insert(name.clone(), providers::build(entry, key)?);
    }
    Ok(map)
}

async fn build_stores(
    config: &Config,
) -> Result<BTreeMap<String, Arc<dyn SecretStore>>, BuildError> {
    let mut map = BTreeMap::new();
    for (name, entry) in &config.stores {
        map.insert(name.clone(), stores::build(entry).await?);
    }
    Ok(map)
}

/// Reads a credential from where the config points. Errors never echo a value.
pub async fn resolve(reference: &SecretRef) -> Result<SecretString, String> {
    let text = match reference {
        SecretRef::Env(var) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        SecretRef::AwsSm { secret_id, field } => {
            read_aws_secret(secret_id, field.as_deref()).await?
        }
    };
    if text.is_empty() {
        return Err("the referenced credential is empty".into());
    }
    Ok(SecretString::from(text))
}

async fn read_aws_secret(secret_id: &str, field: Option<&str>) -> Result<String, String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| {
            crate::stores::aws_error::render_for(&client, "GetSecretValue", secret_id, &e)
        })?;
    let value = out
        .secret_string()
        .ok_or_else(|| format!("AWS secret {secret_id} has no string value"))?;
    let Some(field) = field else {
        return Ok(value.to_string());
    };
    let doc: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| format!("AWS secret {secret_id} is not a JSON object"))?;
    doc.get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("AWS secret {secret_id} has no string field {field:?}"))
}
