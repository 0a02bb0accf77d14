//! Rotation latency benchmark: how long one full rotation (create, stage,
//! verify, promote, revoke with zero grace) takes against the in-process
//! provider simulator when every provider call carries an injected latency
//! `L`, compared with the sum of the injected latencies, plus how many API
//! calls (provider and secret store) one rotation makes.
//!
//! Run with `cargo bench --bench rotation`. It prints one table row per `L`
//! (0, 5, 20, 50 ms), then the calls per rotation broken down by endpoint.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rekey::app::App;
use rekey::policy::{Policy, Target};
use rekey::rotation::{Ctx, Request, RunOutcome, Until, run_policy};
use rekey::sim::{Faults, SimHandle, Simulator};
use rekey::state::Trigger;
use rekey::stores::{Base, Pending, Promoted, SecretStore, StoreError};
use secrecy::SecretString;

/// (injected latency per provider call in ms, rotations measured)
const ROWS: [(u64, usize); 4] = [(0, 100), (5, 20), (20, 20), (50, 20)];

const STORE_METHODS: [&str; 6] = [
    "read_current",
    "read_previous",
    "read_pending",
    "stage",
    "promote",
    "drop_pending",
];

/// Forwards to the real store, counting calls per method.
struct CountingStore {
    inner: Arc<dyn SecretStore>,
    calls: [AtomicU64; 6],
}

impl CountingStore {
    fn new(inner: Arc<dyn SecretStore>) -> Self {
        Self {
            inner,
            calls: Default::default(),
        }
    }

    fn hit(&self, method: usize) {
        self.calls[method].fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        STORE_METHODS
            .iter()
            .zip(&self.calls)
            .map(|(name, n)| (name.to_string(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

#[async_trait]
impl SecretStore for CountingStore {
    fn entry(&self) -> &str {
        self.inner.entry()
    }

    fn placement(&self, target: &Target) -> String {
        self.inner.placement(target)
    }

    async fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        self.hit(0);
        self.inner.read_current(target).await
    }

    async fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        self.hit(1);
        self.inner.read_previous(target).await
    }

    async fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        self.hit(2);
        self.inner.read_pending(target).await
    }

    async fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError> {
        self.hit(3);
        self.inner.stage(target, token, key).await
    }

    async fn stage_from(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
        base: &Base,
    ) -> Result<String, StoreError> {
        self.hit(3);
        self.inner.stage_from(target, token, key, base).await
    }

    async fn promote(&self, target: &Target, version_id: &str) -> Result<(), StoreError> {
        self.hit(4);
        self.inner.promote(target, version_id).await
    }

    async fn base(&self, target: &Target) -> Result<Base, StoreError> {
        self.hit(0);
        self.inner.base(target).await
    }

    async fn promote_if(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError> {
        self.hit(4);
        self.inner.promote_if(target, version_id, base).await
    }

    async fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
        self.hit(0);
        self.inner.current_version(target).await
    }

    async fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        self.hit(5);
        self.inner.drop_pending(target).await
    }
}

/// Provider calls per endpoint, `/_sim` control endpoints excluded.
fn provider_counts(sim: &SimHandle) -> BTreeMap<String, u64> {
    sim.sim
        .call_counts()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("_sim"))
        .collect()
}

/// `after - before` per key.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn write_config(dir: &Path, base_url: &str, mgmt: &str) -> std::path::PathBuf {
    let mgmt_file = dir.join("mgmt-key");
    std::fs::write(&mgmt_file, mgmt).expect("management key written");
    let text = format!(
        r#"[daemon]
state = "file:{state}"

[providers.sim]
kind = "openrouter"
base_url = "{base_url}"
management_key = "file:{mgmt_file}"
request_timeout = "10s"

[stores.files]
kind = "file"
dir = "{secrets}"

[[policy]]
name = "bench"
provider = "sim"
max_age = "30d"
key = {{ name = "bench-{{policy}}-{{rotation}}" }}
target = {{ store = "files", secret_id = "key", format = "raw", create = true }}
verify = {{ mode = "key-info", timeout = "10s" }}
revoke = {{ grace = "0s" }}
"#,
        state = dir.join("state").display(),
        secrets = dir.join("secrets").display(),
        mgmt_file = mgmt_file.display(),
    );
    let path = dir.join("rekey.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

async fn rotate(ctx: &Ctx, policy: &Policy) {
    let outcome = run_policy(
        ctx,
        policy,
        Request::Manual {
            grace: Some(Duration::ZERO),
            trigger: Trigger::Manual,
        },
        Until::Revoked,
    )
    .await
    .expect("rotation succeeds");
    assert!(
        matches!(outcome, RunOutcome::Rotated { .. }),
        "expected a finished rotation"
    );
}

fn faults(latency_ms: u64) -> Faults {
    Faults {
        latency_ms: BTreeMap::from([("*".to_string(), latency_ms)]),
        ..Default::default()
    }
}

struct Row {
    latency_ms: u64,
    rotations: usize,
    mean_ms: f64,
    p95_ms: f64,
    provider_calls: f64,
    store_calls: f64,
    provider_by_endpoint: BTreeMap<String, u64>,
    store_by_method: BTreeMap<String, u64>,
}

fn per_rotation(counts: &BTreeMap<String, u64>, rotations: usize) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={}", *v as f64 / rotations as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn bench() {
    let mgmt = format!("sk-or-v1-mgmt-{:032x}", rand::random::<u128>());
    let sim = Simulator::new(&mgmt)
        .with_faults(faults(0))
        .spawn()
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = write_config(dir.path(), &sim.base_url, &mgmt);
    let config = rekey::config::load_file(&config_path).expect("config is valid");
    let policy = config.policy("bench").expect("policy exists").clone();
    let app = App::build(config).await.expect("app builds");
    let store = Arc::new(CountingStore::new(app.ctx(&policy).store));
    let mut ctx = app.ctx(&policy);
    ctx.store = store.clone();

    // Warm-up: the first run creates the first key, which takes a different path.
    rotate(&ctx, &policy).await;

    let mut rows = Vec::new();
    for (latency_ms, rotations) in ROWS {
        sim.sim.set_faults(faults(latency_ms));
        let provider_before = provider_counts(&sim);
        let store_before = store.counts();
        let mut times = Vec::with_capacity(rotations);
        for _ in 0..rotations {
            let start = Instant::now();
            rotate(&ctx, &policy).await;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let provider_by_endpoint = delta(&provider_before, &provider_counts(&sim));
        let store_by_method = delta(&store_before, &store.counts());
        times.sort_by(f64::total_cmp);
        let p95_index = ((rotations as f64 * 0.95).ceil() as usize).clamp(1, rotations) - 1;
        rows.push(Row {
            latency_ms,
            rotations,
            mean_ms: times.iter().sum::<f64>() / rotations as f64,
            p95_ms: times[p95_index],
            provider_calls: provider_by_endpoint.values().sum::<u64>() as f64 / rotations as f64,
            store_calls: store_by_method.values().sum::<u64>() as f64 / rotations as f64,
            provider_by_endpoint,
            store_by_method,
        });
    }

    println!(
        "Columns: L = injected latency per provider call; wall times are per rotation \
         (create, verify, promote, revoke with grace 0); calls are per rotation; \
         injected = L x provider calls; overhead = mean wall / injected (\"-\" for L = 0)."
    );
    println!(
        "{:>6} {:>9} {:>10} {:>9} {:>14} {:>11} {:>13} {:>9}",
        "L ms",
        "rotations",
        "mean ms",
        "p95 ms",
        "provider calls",
        "store calls",
        "injected ms",
        "overhead"
    );
    for row in &rows {
        let injected = row.latency_ms as f64 * row.provider_calls;
        let overhead = if row.latency_ms == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", row.mean_ms / injected)
        };
        println!(
            "{:>6} {:>9} {:>10.2} {:>9.2} {:>14.2} {:>11.2} {:>13.1} {:>9}",
            row.latency_ms,
            row.rotations,
            row.mean_ms,
            row.p95_ms,
            row.provider_calls,
            row.store_calls,
            injected,
            overhead
        );
    }
    println!();
    println!("Calls per rotation by endpoint:");
    for row in &rows {
        println!(
            "  L={:>2}ms provider: {}",
            row.latency_ms,
            per_rotation(&row.provider_by_endpoint, row.rotations)
        );
        println!(
            "  L={:>2}ms store:    {}",
            row.latency_ms,
            per_rotation(&row.store_by_method, row.rotations)
        );
    }
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench());
}
