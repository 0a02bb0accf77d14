//! The daemon keeps when to look at each policy in memory: a catch-up
//! starts rotations as the concurrency limit frees up (never more rotation
//! tasks than it allows), once every policy has its key a pass reads no
//! journal, and a rotation that ends has only its own journal read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rekey::app::App;
use rekey::daemon::{Daemon, Mode};
use rekey::names::{LeaseKey, PolicyName};
use rekey::state::{Lease, PolicyState, StateError, StateStore};

use crate::helpers::{TestEnv, management_key_from_file, policy};

const POLICIES: usize = 30;
const LIMIT: usize = 3;
const DEADLINE: Duration = Duration::from_secs(120);

/// The daemon's state, counting the journal reads per policy.
struct Counting {
    inner: Arc<dyn StateStore>,
    loads: Mutex<HashMap<PolicyName, usize>>,
}

impl Counting {
    fn take(&self) -> HashMap<PolicyName, usize> {
        std::mem::take(&mut *self.loads.lock().unwrap())
    }
}

#[async_trait]
impl StateStore for Counting {
    async fn load(&self, policy: &PolicyName) -> Result<PolicyState, StateError> {
        *self
            .loads
            .lock()
            .unwrap()
            .entry(policy.clone())
            .or_default() += 1;
        self.inner.load(policy).await
    }
    async fn save(&self, state: &PolicyState, lease: &dyn Lease) -> Result<(), StateError> {
        self.inner.save(state, lease).await
    }
    async fn try_lease(
        &self,
        key: &LeaseKey,
        legacy_name: &str,
    ) -> Result<Option<Box<dyn Lease>>, StateError> {
        self.inner.try_lease(key, legacy_name).await
    }
    async fn policies(&self) -> Result<Vec<PolicyName>, StateError> {
        self.inner.policies().await
    }
    async fn in_flight(&self) -> Result<Vec<PolicyName>, StateError> {
        self.inner.in_flight().await
    }
    async fn held_leases(&self) -> Result<Vec<String>, StateError> {
        self.inner.held_leases().await
    }
    async fn import(&self, state: &PolicyState) -> Result<bool, StateError> {
        self.inner.import(state).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The env's config with `POLICIES` policies, at most `LIMIT` rotations at
/// once, the management key read from a file (this process has no env for it).
async fn build(env: &TestEnv) -> (Arc<App>, Arc<Counting>, Arc<dyn StateStore>) {
    let policies: String = (0..POLICIES)
        .map(|i| {
            policy(
                &format!("p{i}"),
                &format!(r#"{{ store = "files", secret_id = "p{i}", create = true }}"#),
                "",
            )
        })
        .collect();
    env.write_config(&policies);
    management_key_from_file(env);
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replacen(
        "[daemon]\n",
        &format!("[daemon]\nmax_concurrent_rotations = {LIMIT}\n"),
        1,
    );
    std::fs::write(env.config_path(), text).unwrap();
    let config = rekey::config::load_file(&env.config_path()).expect("the test config loads");
    let mut app = App::build(config).await.expect("app builds");
    let inner = app.state.clone();
    let counting = Arc::new(Counting {
        inner: inner.clone(),
        loads: Mutex::new(HashMap::new()),
    });
    app.state = counting.clone();
    (Arc::new(app), counting, inner)
}

/// Waits until `done` holds, polling every 5 ms.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many policies have a current key (read without counting).
async fn with_keys(state: &Arc<dyn StateStore>) -> usize {
    let mut n = 0;
    for i in 0..POLICIES {
        let name = PolicyName::parse(format!("p{i}")).unwrap();
        if state.load(&name).await.unwrap().current.is_some() {
            n += 1;
        }
    }
    n
}

/// Makes the loop pass once (a reload notice with the same app) and waits
/// until it has.
async fn one_pass(daemon: &Daemon, app: &Arc<App>) {
    let asked = Instant::now();
    daemon.replace_app(app.clone(), &[], &[]);
    until("a pass", async || {
        daemon.since_last_tick() < asked.elapsed()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_start_as_the_limit_frees_up_and_an_idle_pass_reads_no_journal() {
    let env = TestEnv::new().await;
    let (app, counting, state) = build(&env).await;
    let daemon = Daemon::new(app.clone());
    let loop_task = tokio::spawn({
        let daemon = daemon.clone();
        async move { daemon.run(Mode::Forever).await }
    });

    // The catch-up of every first key: never more rotations than the limit.
    let mut most = 0;
    until("every first key", async || {
        most = most.max(daemon.running().len());
        with_keys(&state).await == POLICIES && daemon.running().is_empty()
    })
    .await;
    assert!(most > 0, "rotations were seen running");
    assert!(
        most <= LIMIT,
        "{most} rotation tasks existed at once; the limit is {LIMIT}"
    );
    // The ended rotations' journals are read once more, then nothing.
    one_pass(&daemon, &app).await;
    counting.take();
    for _ in 0..5 {
        one_pass(&daemon, &app).await;
    }
    let idle = counting.take();
    assert!(
        idle.is_empty(),
        "idle passes read journals: {idle:?} (expected none)"
    );

    // One rotation asked for: only its journal is read.
    let asked = PolicyName::parse("p7").unwrap();
    daemon
        .request_rotation("p7", Some(Duration::ZERO))
        .await
        .expect("the rotation starts");
    until("the asked rotation to end", async || {
        daemon.running().is_empty() && state.load(&asked).await.unwrap().history.len() >= 2
    })
    .await;
    one_pass(&daemon, &app).await;
    one_pass(&daemon, &app).await;
    let reads = counting.take();
    let others: Vec<_> = reads.keys().filter(|name| **name != asked).collect();
    assert!(
        others.is_empty(),
        "journals of other policies read: {others:?}"
    );
    let own = reads.get(&asked).copied().unwrap_or(0);
    assert!(
        (1..=4).contains(&own),
        "the rotated policy's journal was read {own} times (expected 1 to 4)"
    );

    app.cancel.cancel();
    let summary = tokio::time::timeout(DEADLINE, loop_task)
        .await
        .expect("the loop stops")
        .expect("the loop did not panic");
    assert_eq!(summary.failed, 0);
}
