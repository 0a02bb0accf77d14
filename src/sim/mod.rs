//! In-memory provider simulator speaking the OpenRouter API of PROVIDERS.md
//! over real HTTP, with fault knobs. Used by `rekey sim`, `rekey dev` and the
//! tests. Key bookkeeping lives in `state`, fault decisions in `faults`, the
//! HTTP surface in `routes` (provider API) and `control` (`/_sim`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

mod control;
mod faults;
mod routes;
mod state;

use faults::FaultState;
use state::State;

/// Fault knobs. Endpoint names: `create`, `list`, `get`, `update`, `delete`,
/// `whoami`, `models`, `chat`; `*` applies to every endpoint without its own entry.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub latency_ms: BTreeMap<String, u64>,
    pub error_rate: BTreeMap<String, f64>,
    /// endpoint -> (count of next calls answered 429, Retry-After seconds)
    pub rate_limit: BTreeMap<String, RateLimitFault>,
    pub propagation_delay_ms: u64,
    pub reject_new_keys: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RateLimitFault {
    pub count: u32,
    pub retry_after_secs: u64,
}

/// A key as the simulator holds it, secret included (it is a test tool).
#[derive(Clone, serde::Serialize)]
pub struct SimKey {
    pub hash: String,
    pub name: String,
    pub label: String,
    pub disabled: bool,
    pub secret: String,
    pub usage: f64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A cheap handle on one simulated provider; clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    state: State,
    faults: FaultState,
}

/// A simulator serving in the background; dropping the handle stops it.
pub struct SimHandle {
    pub base_url: String,
    pub sim: Simulator,
    _shutdown: oneshot::Sender<()>,
}

impl Simulator {
    pub fn new(management_key: &str) -> Self {
        let inner = Inner {
            state: State::new(management_key),
            faults: FaultState::default(),
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
        axum::Router::new()
            .nest("/api/v1", routes::router())
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
        let base_url = format!("http://{}/api/v1", listener.local_addr()?);
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
            sim: self,
            _shutdown: tx,
        })
    }

    /// Keys that still exist (deleted ones are gone), with their secrets.
    pub fn keys(&self) -> Vec<SimKey> {
        self.lock().state.sim_keys()
    }

    /// Every secret ever issued (for "no secret in any log" tests).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().state.issued().to_vec()
    }

    /// Whether a chat call with this secret would succeed right now (exists,
    /// enabled, propagated), ignoring random faults.
    pub fn key_works(&self, secret: &str) -> bool {
        self.lock().state.authenticate_normal(secret).is_ok()
    }

    /// Seeds a pre-existing, already working key; returns (hash, secret).
    pub fn insert_key(&self, name: &str) -> (String, String) {
        self.lock().state.seed(name)
    }

    /// Number of requests received per endpoint name, faulted ones included.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.lock().state.calls().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation completes within one lock scope without panicking
        // half-way, so the state behind a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
