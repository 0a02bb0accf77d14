//! In-memory provider simulator speaking the provider APIs of PROVIDERS.md
//! over real HTTP, with fault knobs. One process serves all of them, each
//! under its own prefix (see [`Api::base_path`]) with its own account.
//! Used by `rekey sim`, `rekey dev` and the tests (cargo feature `sim`).
//! The key record and the shared error live in `record`, key bookkeeping in
//! `state`, fault decisions in `faults`, the "lands, then answers badly"
//! knobs and answers in `after_effect`, the shared HTTP plumbing (bearer
//! token, JSON body, error status) in `http`, each API's HTTP surface in its
//! own module, and test control in `control` (`/_sim`). Imports run one way:
//! `record` ← `after_effect` ← `faults` ← `state` ← the API modules, with
//! `http` beside `state`; this module ties them together.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

mod after_effect;
mod anthropic;
mod arouter;
mod control;
mod faults;
mod gateway;
mod http;
mod litellm;
mod openai;
mod openrouter;
mod record;
mod state;

pub use after_effect::{
    AfterEffect, Counted, CreateAnswer, CreateFault, DeleteAnswer, DeleteFault, ListAnswer,
    ListFault,
};
use faults::{Endpoint, FaultState, Injected};
pub use openai::{SIM_OPENAI_DEFAULT_PROJECT, SIM_OPENAI_PROJECT};
use record::ApiError;
use state::State;

/// The provider APIs the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    OpenRouter,
    ARouter,
    OpenAi,
    LiteLlm,
    Anthropic,
}

impl Api {
    pub const ALL: [Api; 5] = [
        Api::OpenRouter,
        Api::ARouter,
        Api::OpenAi,
        Api::LiteLlm,
        Api::Anthropic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenRouter => "openrouter",
            Api::ARouter => "arouter",
            Api::OpenAi => "openai",
            Api::LiteLlm => "litellm",
            Api::Anthropic => "anthropic",
        }
    }

    /// What a provider entry's `base_url` is, relative to the simulator's
    /// address: the same shape as the real provider's default base URL.
    pub fn base_path(self) -> &'static str {
        match self {
            Api::OpenRouter => "/openrouter/api/v1",
            Api::ARouter => "/arouter",
            Api::OpenAi => "/openai/v1",
            Api::LiteLlm => "/litellm",
            Api::Anthropic => "/anthropic",
        }
    }

    /// A fresh secret in the provider's own format.
    fn new_secret(self) -> String {
        let hex = record::random_hex();
        match self {
            Api::OpenRouter => format!("sk-or-v1-{hex}"),
            Api::ARouter => format!("lr_live_{hex}"),
            Api::OpenAi => format!("sk-svcacct-{hex}"),
            Api::LiteLlm => litellm::new_key(),
            Api::Anthropic => format!("sk-ant-api03-{hex}-{}AA", &hex[..8]),
        }
    }

    /// The id a new key of `secret` gets: LiteLLM's `token` is the key's
    /// sha256, as the proxy's is; the others are random.
    fn key_hash(self, secret: &str) -> String {
        match self {
            Api::LiteLlm => litellm::token_of(secret),
            _ => record::random_hex(),
        }
    }
}

/// Fault knobs. Endpoint names: `create`, `list`, `get`, `update`, `delete`,
/// `whoami`, `models`, `chat`; `*` applies to every endpoint without its own entry.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub latency_ms: BTreeMap<String, u64>,
    pub error_rate: BTreeMap<String, f64>,
    /// endpoint -> (count of next calls answered 429, Retry-After seconds)
    pub rate_limit: BTreeMap<String, RateLimitFault>,
    /// A token bucket over management calls (`create`, `list`, `get`,
    /// `update`, `delete`) of every API together: N per second, burst N;
    /// beyond it a call answers 429 with `Retry-After` (whole seconds,
    /// rounded up). `None`: no limit. Calls made with a key (`whoami`,
    /// `models`, `chat`) are never counted.
    pub management_rate_per_sec: Option<u32>,
    pub propagation_delay_ms: u64,
    pub reject_new_keys: bool,
    /// The account is out of quota: OpenAI's `models` and `chat` answer 429
    /// `insufficient_quota`, ARouter's `models` and `chat` answer 403 `quota_exceeded`.
    pub quota_exhausted: bool,
    /// Calls that take effect, then answer badly (see `after_effect`).
    pub after_effect: AfterEffect,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RateLimitFault {
    pub count: u32,
    pub retry_after_secs: u64,
}

/// A key as the simulator holds it, secret included (it is a test tool).
#[derive(Clone, serde::Serialize)]
pub struct SimKey {
    /// Which API's account holds it (`Api::as_str`).
    pub api: &'static str,
    /// API-specific fields (OpenAI `project_id`/`service_account_id`, Anthropic `status`...).
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub hash: String,
    pub name: String,
    pub label: String,
    pub disabled: bool,
    pub secret: String,
    pub usage: f64,
    /// The last call the key authenticated, whether or not its API shows it.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A cheap handle on one simulated provider; clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// One account per API, all opened with the same management key.
    states: BTreeMap<Api, State>,
    faults: FaultState,
    gateway_calls: gateway::Calls,
}

impl Inner {
    fn api(&mut self, api: Api) -> &mut State {
        self.states.get_mut(&api).expect("every API has a state")
    }
}

/// A simulator serving in the background; dropping the handle stops it.
pub struct SimHandle {
    /// The OpenRouter API (`http://127.0.0.1:PORT/api/v1`).
    pub base_url: String,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    pub sim: Simulator,
    _shutdown: oneshot::Sender<()>,
}

impl SimHandle {
    /// The `base_url` a provider entry of this API uses.
    pub fn url(&self, api: Api) -> String {
        format!("{}{}", self.origin, api.base_path())
    }

    /// The OpenAI-compatible gateway in front of every API (`verify.base_url`).
    pub fn gateway_url(&self) -> String {
        format!("{}{}", self.origin, gateway::PATH)
    }
}

impl Simulator {
    pub fn new(management_key: &str) -> Self {
        let states = (Api::ALL.into_iter())
            .map(|api| (api, State::new(api, management_key)))
            .collect();
        let inner = Inner {
            states,
            faults: FaultState::default(),
            gateway_calls: gateway::Calls::new(),
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    pub fn with_faults(self, faults: Faults) -> Self {
        self.set_faults(faults);
        self
    }

    /// Replaces every knob; rate-limit counts start over from the new values.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = FaultState::new(faults);
    }

    pub fn router(&self) -> axum::Router {
        // `/api/v1` is OpenRouter's own path, kept for `rekey sim` users.
        axum::Router::new()
            .nest("/api/v1", openrouter::router())
            .nest(Api::OpenRouter.base_path(), openrouter::router())
            .nest(Api::ARouter.base_path(), arouter::router())
            .nest(Api::OpenAi.base_path(), openai::router())
            .nest(Api::LiteLlm.base_path(), litellm::router())
            .nest(Api::Anthropic.base_path(), anthropic::router())
            .nest(gateway::PATH, gateway::router())
            .nest("/_sim", control::router())
            .with_state(self.clone())
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds 127.0.0.1:0 and serves in a background task until the returned
    /// handle is dropped; the handle's `base_url` is `http://127.0.0.1:PORT/api/v1`.
    pub async fn spawn(self) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let base_url = format!("{origin}/api/v1");
        let (tx, rx) = oneshot::channel::<()>();
        let server = self.clone();
        tokio::spawn(async move {
            // A dropped sender also resolves `rx`: that is the stop signal.
            let stopped = async move {
                let _ = rx.await;
            };
            if let Err(err) = server.serve(listener, stopped).await {
                tracing::warn!(error = %err, "simulator stopped with an error");
            }
        });
        Ok(SimHandle {
            base_url,
            origin,
            sim: self,
            _shutdown: tx,
        })
    }

    /// Keys that still exist in every API (deleted ones are gone), with their secrets.
    pub fn keys(&self) -> Vec<SimKey> {
        let inner = self.lock();
        inner.states.values().flat_map(State::sim_keys).collect()
    }

    /// Every secret ever issued by any API (for "no secret in any log" tests).
    pub fn issued_secrets(&self) -> Vec<String> {
        let inner = self.lock();
        (inner.states.values())
            .flat_map(|s| s.issued().iter().cloned())
            .collect()
    }

    /// Whether a call with this secret would succeed right now at the API
    /// that issued it (exists, enabled/active, propagated), ignoring random faults.
    pub fn key_works(&self, secret: &str) -> bool {
        let inner = self.lock();
        inner
            .states
            .values()
            .any(|s| s.authenticate_normal(secret).is_ok())
    }

    /// Seeds a pre-existing, already working OpenRouter key; returns (hash, secret).
    pub fn insert_key(&self, name: &str) -> (String, String) {
        self.insert_key_in(Api::OpenRouter, name)
    }

    /// Seeds a pre-existing, already working key of `api`, as a person would
    /// have made it in the provider's console; returns (id, secret).
    pub fn insert_key_in(&self, api: Api, name: &str) -> (String, String) {
        let mut inner = self.lock();
        let state = inner.api(api);
        match api {
            Api::OpenAi => openai::seed(state, name),
            _ => state.seed(name),
        }
    }

    /// Number of requests received per endpoint name (all APIs), faulted ones included.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        let inner = self.lock();
        let mut total = BTreeMap::new();
        for (name, n) in inner.states.values().flat_map(|s| s.calls()) {
            *total.entry(name.clone()).or_default() += n;
        }
        total
    }

    /// Management calls the `management_rate_per_sec` bucket answered 429.
    pub fn throttled_count(&self) -> u64 {
        self.lock().faults.throttled()
    }

    /// Requests the gateway at `/gateway/v1` received, per endpoint name.
    pub fn gateway_calls(&self) -> BTreeMap<String, u64> {
        self.lock().gateway_calls.clone()
    }

    /// Counts the call, waits out the configured latency, then applies the
    /// rate-limit and error-rate knobs. Every API handler starts here.
    pub(crate) async fn admit(&self, api: Api, endpoint: Endpoint) -> Result<(), ApiError> {
        let latency = {
            let mut inner = self.lock();
            inner.api(api).count_call(endpoint);
            inner.faults.latency(endpoint)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match self.lock().faults.decide(endpoint) {
            Injected::None => Ok(()),
            Injected::RateLimited { retry_after_secs } => Err(ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(429, "Rate limit exceeded").with_code("rate_limit_exceeded")
            }),
            Injected::ServerError => Err(ApiError::new(500, "Internal server error")),
        }
    }

    /// Makes a key with `make` (given the account, the propagation delay and
    /// whether new keys are rejected) and answers with the body it returns,
    /// spoiled as the `after_effect.create` knob says. `failure` renders an
    /// error in the API's shape.
    pub(crate) async fn create_and_answer(
        &self,
        api: Api,
        shape: &after_effect::CreatedShape,
        make: impl FnOnce(&mut State, Duration, bool) -> Result<serde_json::Value, ApiError>,
        failure: impl FnOnce(ApiError) -> axum::response::Response,
    ) -> Result<axum::response::Response, ApiError> {
        let (fault, body) = {
            let mut inner = self.lock();
            let delay = inner.faults.propagation_delay();
            let reject = inner.faults.reject_new_keys();
            let body = make(inner.api(api), delay, reject)?;
            (inner.faults.after_create(), body)
        };
        Ok(after_effect::created(fault, shape, body, failure).await)
    }

    /// Admits a management call of an API that takes the management key
    /// as `Authorization: Bearer` (OpenRouter, ARouter, LiteLLM).
    pub(crate) async fn admit_management(
        &self,
        api: Api,
        endpoint: Endpoint,
        headers: &axum::http::HeaderMap,
    ) -> Result<(), ApiError> {
        self.admit(api, endpoint).await?;
        let token = http::bearer(headers);
        self.lock().api(api).authorize_management(token)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation completes within one lock scope without panicking
        // half-way, so the state behind a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
