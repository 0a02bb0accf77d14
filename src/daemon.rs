//! The daemon loop: a deadline loop over all policies (mini-redis'
//! `purge_expired_tasks` shape). Each pass loads every journal, runs what is
//! due under the global concurrency limit, and sleeps until the earliest next
//! due instant — computed from the cron expression in its time zone each time,
//! so daylight-saving changes are honoured — or until a rotation finishes.
//!
//! [`Daemon`] is the handle the admin API and the reloader share with the
//! loop: the current [`App`] (a reload swaps it; running rotations keep the
//! one they started with), the set of running rotations, liveness and
//! readiness. Shutdown: the app's cancel token stops the loop; running
//! rotations get `daemon.shutdown_timeout` to reach a step boundary.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::app::App;
use crate::clock::rfc3339;
use crate::policy::Policy;
use crate::rotation::{Decision, Request, RunOutcome, Until, WaitReason, decide, run_policy};
use crate::state::Trigger;

mod observe;
pub mod probe;
mod trigger;

use observe::{observe, snapshot_after_run};

pub use probe::Readiness;
pub use trigger::Refusal;

/// The longest the loop sleeps without looking again: also its liveness
/// heartbeat (`/healthz` fails after [`UNHEALTHY_AFTER`] without a pass).
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// No pass for this long: the loop is stuck.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(3 * MAX_SLEEP.as_secs());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Do everything due now (including pending revokes), then return.
    Once,
    /// Run until the app's cancel token fires.
    Forever,
}

impl Mode {
    /// As the command line says it: `rekey run --once` or `rekey run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::Forever => "continuous",
        }
    }
}

/// What a `--once` pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ran: usize,
    pub failed: usize,
    /// Policies skipped because their journal could not be read.
    pub unreadable: usize,
}

struct Shared {
    /// The app new rotations start with; a reload replaces it.
    app: RwLock<Arc<App>>,
    /// Shutdown: shared by every app a reload builds.
    cancel: CancellationToken,
    limit: Semaphore,
    running: Mutex<HashSet<String>>,
    finished: Notify,
    /// A reload swapped the app: look at the new policies now.
    reloaded: Notify,
    failed: Mutex<usize>,
    unreadable: Mutex<usize>,
    /// Policies not to try again before an instant: after a failure the
    /// journal could not record (e.g. the store was unreachable), or while
    /// another process holds the secret.
    cooldown: Mutex<HashMap<String, DateTime<Utc>>>,
    /// When the loop last finished a pass (monotonic: immune to clock jumps).
    last_tick: Mutex<tokio::time::Instant>,
    readiness: Mutex<Readiness>,
    /// Orders policy snapshots against a reload's forgetting of removed policies.
    gate: Mutex<()>,
    /// Policies a reload added or changed: a rotation the next pass begins
    /// for one of them is recorded with trigger `reload`.
    touched_by_reload: Mutex<HashSet<String>>,
}

/// Whether a reload added or changed `policy` since its last decision (asked once).
fn touched_by_reload(shared: &Shared, policy: &str) -> bool {
    (shared.touched_by_reload.lock())
        .expect("reload set poisoned")
        .remove(policy)
}

/// How long to leave a secret alone that another process is rotating.
const BUSY_COOLDOWN: Duration = Duration::from_secs(10);
/// How often an assisted policy's store is looked at for a placed key.
const ASSISTED_RECHECK: Duration = Duration::from_secs(30);

/// The running daemon, shared by the loop, the admin API and the reloader.
#[derive(Clone)]
pub struct Daemon {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

pub async fn run(app: Arc<App>, mode: Mode) -> Summary {
    Daemon::new(app).run(mode).await
}

impl Daemon {
    pub fn new(app: Arc<App>) -> Daemon {
        let shared = Shared {
            limit: Semaphore::new(app.config.daemon.max_concurrent_rotations),
            cancel: app.cancel.clone(),
            app: RwLock::new(app),
            running: Mutex::new(HashSet::new()),
            finished: Notify::new(),
            reloaded: Notify::new(),
            failed: Mutex::new(0),
            unreadable: Mutex::new(0),
            cooldown: Mutex::new(HashMap::new()),
            last_tick: Mutex::new(tokio::time::Instant::now()),
            readiness: Mutex::new(Readiness::Probing),
            gate: Mutex::new(()),
            touched_by_reload: Mutex::new(HashSet::new()),
        };
        Daemon {
            shared: Arc::new(shared),
            tracker: TaskTracker::new(),
        }
    }

    /// The app new rotations start with.
    pub fn app(&self) -> Arc<App> {
        self.shared.app.read().expect("app lock poisoned").clone()
    }

    /// Switches to a reloaded app; the loop looks at its policies at once.
    /// The observer forgets `removed` policies in the same step, so no late
    /// snapshot of theirs brings their series back.
    pub fn replace_app(&self, app: Arc<App>, removed: &[String], touched: &[String]) {
        let _gate = self.shared.gate.lock().expect("snapshot gate poisoned");
        (self.shared.touched_by_reload.lock())
            .expect("reload set poisoned")
            .extend(touched.iter().cloned());
        *self.shared.app.write().expect("app lock poisoned") = app.clone();
        for name in removed {
            app.observer.forget_policy(name);
        }
        self.shared.reloaded.notify_one();
    }

    /// Policies with a rotation running in this process, sorted.
    pub fn running(&self) -> Vec<String> {
        let running = self.shared.running.lock().expect("running set poisoned");
        let mut names: Vec<String> = running.iter().cloned().collect();
        names.sort();
        names
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Time since the loop last finished a pass.
    pub fn since_last_tick(&self) -> Duration {
        self.shared
            .last_tick
            .lock()
            .expect("tick lock poisoned")
            .elapsed()
    }

    pub async fn run(&self, mode: Mode) -> Summary {
        run_loop(self, mode).await
    }

    /// The loop finished a pass: liveness for `/healthz` and the metrics.
    fn tick(&self, app: &App) {
        *self.shared.last_tick.lock().expect("tick lock poisoned") = tokio::time::Instant::now();
        app.observer.metrics.scheduler_tick(app.clock.now());
    }

    /// Waits for running rotations; once shutdown is requested, for at most
    /// `daemon.shutdown_timeout` — the journal resumes whatever is cut off.
    async fn drain(&self) {
        let timeout = self.app().config.daemon.shutdown_timeout;
        let deadline = async {
            self.shared.cancel.cancelled().await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            _ = self.tracker.wait() => {}
            _ = deadline => {
                let running = self.running();
                warn!(
                    policies = %running.join(","),
                    timeout = %humantime::format_duration(timeout),
                    "shutdown timeout: exiting with rotations still running; the journal resumes them on the next start"
                );
            }
        }
    }
}

/// The loop itself: one pass over every policy, then sleep (see the module doc).
async fn run_loop(daemon: &Daemon, mode: Mode) -> Summary {
    let shared = daemon.shared.clone();
    let tracker = daemon.tracker.clone();
    let mut app = daemon.app();
    let mut held_back: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut first_pass = true;
    let mut ran = 0;
    info!(
        policies = app.config.policies.len(),
        mode = mode.as_str(),
        "daemon started"
    );
    loop {
        let current = daemon.app();
        if !Arc::ptr_eq(&current, &app) {
            // Reloaded: drop the held-back starts of removed policies; overdue
            // work the new config brings is spread out like work found at start-up.
            app = current;
            held_back.retain(|name, _| app.config.policy(name).is_some());
            first_pass = true;
        }
        let now = app.clock.now();
        let mut wake = now + MAX_SLEEP;
        for policy in &app.config.policies {
            let state = match app.state.load(&policy.name).await {
                Ok(state) => state,
                Err(e) => {
                    journal_unreadable(&shared, &app, policy, &e, mode);
                    continue;
                }
            };
            observe(&shared, &app, policy, &state, now);
            if is_running(&shared, &policy.name) {
                continue;
            }
            if let Some(until) = cooling_down(&shared, &policy.name, now) {
                wake = wake.min(until);
                continue;
            }
            let decision = decide(policy, &state, now);
            let request = if touched_by_reload(&shared, &policy.name) {
                Request::DueAfterReload
            } else {
                Request::Due
            };
            if let Decision::Wait { until, why } = decision {
                // Assisted policies look for a placed key even when not due.
                let assisted = app.providers[&policy.provider].assisted();
                if !(assisted && why == WaitReason::NotDue) {
                    wake = wake.min(until.unwrap_or(wake));
                    continue;
                }
            }
            if mode == Mode::Forever {
                let start = *held_back.entry(policy.name.clone()).or_insert_with(|| {
                    crate::clock::later(now, catch_up_delay(&app, &decision, first_pass))
                });
                if start > now {
                    wake = wake.min(start);
                    continue;
                }
                held_back.remove(&policy.name);
            }
            if spawn_rotation(&tracker, &shared, &app, policy.clone(), request, mode) {
                ran += 1;
            }
        }
        first_pass = false;
        daemon.tick(&app);
        if mode == Mode::Once {
            break;
        }
        let sleep = (wake - app.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.finished.notified() => {}
            _ = shared.reloaded.notified() => {}
            _ = shared.cancel.cancelled() => break,
        }
    }
    tracker.close();
    if mode == Mode::Forever {
        info!("shutting down: no new rotations; waiting for running ones to reach a step boundary");
    }
    daemon.drain().await;
    if mode == Mode::Forever {
        warn_of_live_old_keys(&daemon.app()).await;
    }
    let failed = *shared.failed.lock().expect("failed counter poisoned");
    let unreadable = *shared
        .unreadable
        .lock()
        .expect("unreadable counter poisoned");
    Summary {
        ran,
        failed,
        unreadable,
    }
}

/// At shutdown: every old key a rotation in grace leaves working, and what
/// revokes it — the operator must not think "stopped" means "done".
async fn warn_of_live_old_keys(app: &App) {
    for policy in &app.config.policies {
        let Ok(state) = app.state.load(&policy.name).await else {
            continue;
        };
        let Some(rotation) = &state.in_flight else {
            continue;
        };
        if let Some(live) = crate::rotation::LiveOldKey::of(rotation) {
            warn!(policy = %policy.name, rotation = %rotation.id, "stopped: {}", live.message());
        }
    }
}

/// A journal that cannot be read: the policy is skipped (and fails a
/// `--once` pass). One a newer rekey wrote is not corrupt: it
/// is neither flagged nor alerted as such, only named with what to do.
fn journal_unreadable(
    shared: &Shared,
    app: &App,
    policy: &Policy,
    e: &crate::state::StateError,
    mode: Mode,
) {
    if mode == Mode::Once {
        *shared
            .unreadable
            .lock()
            .expect("unreadable counter poisoned") += 1;
    }
    if matches!(e, crate::state::StateError::NewerFormat { .. }) {
        error!(policy = %policy.name, error = %e, kind = e.kind(), "this policy is not rotated by this rekey");
        return;
    }
    error!(policy = %policy.name, error = %e, kind = e.kind(), "cannot read the journal; this policy is not rotated until it is repaired");
    app.observer
        .journal_corrupt(policy, &e.to_string(), app.clock.now());
}

/// Overdue work found at start-up is spread over `catch_up_jitter`, so a
/// fleet of overdue keys does not hit the provider in the same second.
fn catch_up_delay(app: &App, decision: &Decision, first_pass: bool) -> Duration {
    let jitter = app.config.daemon.catch_up_jitter;
    let overdue = matches!(
        decision,
        Decision::Rotate(Trigger::Overdue | Trigger::Schedule)
    );
    if !first_pass || !overdue || jitter.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..jitter)
}

fn cooling_down(shared: &Shared, policy: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut cooldown = shared.cooldown.lock().expect("cooldown map poisoned");
    match cooldown.get(policy) {
        Some(until) if *until > now => Some(*until),
        Some(_) => {
            cooldown.remove(policy);
            None
        }
        None => None,
    }
}

fn is_running(shared: &Shared, policy: &str) -> bool {
    shared
        .running
        .lock()
        .expect("running set poisoned")
        .contains(policy)
}

/// Starts a rotation task unless one runs for this policy already (`false`).
/// The task keeps `app`: a reload does not change a rotation under way.
fn spawn_rotation(
    tracker: &TaskTracker,
    shared: &Arc<Shared>,
    app: &Arc<App>,
    policy: Policy,
    request: Request,
    mode: Mode,
) -> bool {
    let started = shared
        .running
        .lock()
        .expect("running set poisoned")
        .insert(policy.name.clone());
    if !started {
        return false;
    }
    let shared = shared.clone();
    let app = app.clone();
    tracker.spawn(async move {
        // The semaphore is never closed, so acquire only fails if it were.
        let _permit = shared
            .limit
            .acquire()
            .await
            .expect("rotation semaphore closed");
        // Queued behind the limit when shutdown came: do not start.
        if shared.cancel.is_cancelled() {
            return done(&shared, &policy.name);
        }
        let ctx = app.ctx(&policy);
        let rounds = if mode == Mode::Once { ONCE_ROUNDS } else { 1 };
        let result = run_while_due(&ctx, &policy, request, rounds).await;
        let pause = match &result {
            Ok(RunOutcome::Busy) => Some(BUSY_COOLDOWN),
            Err(_) => Some(app.config.daemon.failure_backoff.min),
            Ok(RunOutcome::AwaitingKey { .. }) => Some(ASSISTED_RECHECK),
            Ok(RunOutcome::NotDue { .. }) if ctx.provider.assisted() => Some(ASSISTED_RECHECK),
            Ok(_) => None,
        };
        if let Some(pause) = pause {
            let until = crate::clock::later(app.clock.now(), pause);
            shared
                .cooldown
                .lock()
                .expect("cooldown map poisoned")
                .insert(policy.name.clone(), until);
        }
        if !report(&policy, &result) {
            *shared.failed.lock().expect("failed counter poisoned") += 1;
        }
        snapshot_after_run(&shared, &app, &policy).await;
        done(&shared, &policy.name);
    });
    true
}

/// How many runs a `--once` pass gives one policy: a resumed rotation that
/// finishes may leave the policy due at once (its new key was made before
/// the interruption), and the pass must not exit with work it owes.
const ONCE_ROUNDS: usize = 3;

/// Runs `policy` until it is not due any more, a run does not end in a
/// finished rotation, or `rounds` runs are done. Every finished rotation but
/// the last is reported here; the last result is the caller's.
async fn run_while_due(
    ctx: &crate::rotation::Ctx,
    policy: &Policy,
    request: Request,
    rounds: usize,
) -> Result<RunOutcome, crate::rotation::RotationError> {
    let mut result = run_policy(ctx, policy, request, Until::Promoted).await;
    for _ in 1..rounds {
        if !matches!(result, Ok(RunOutcome::Rotated { .. })) || !still_due(ctx, policy).await {
            break;
        }
        report(policy, &result);
        info!(policy = %policy.name, "still due after finishing the rotation in flight; rotating again");
        result = run_policy(ctx, policy, Request::Due, Until::Promoted).await;
    }
    result
}

/// Whether the journal says `policy` has work to do right now.
async fn still_due(ctx: &crate::rotation::Ctx, policy: &Policy) -> bool {
    match ctx.state.load(&policy.name).await {
        Ok(state) => matches!(
            decide(policy, &state, ctx.clock.now()),
            Decision::Rotate(_) | Decision::Resume
        ),
        Err(_) => false,
    }
}

/// A rotation task ends: the policy may be scheduled again.
fn done(shared: &Shared, policy: &str) {
    shared
        .running
        .lock()
        .expect("running set poisoned")
        .remove(policy);
    shared.finished.notify_one();
}

/// Logs the end of a run; `false` when it failed.
fn report(policy: &Policy, result: &Result<RunOutcome, crate::rotation::RotationError>) -> bool {
    let name = &policy.name;
    match result {
        Ok(RunOutcome::Rotated { rotation_id, .. }) => {
            info!(policy = %name, rotation = %rotation_id, "rotated")
        }
        Ok(RunOutcome::InGrace {
            rotation_id,
            revoke_after,
            ..
        }) => {
            info!(policy = %name, rotation = %rotation_id, revoke_after = %rfc3339(*revoke_after), "promoted; old key revoked after the grace")
        }
        Ok(RunOutcome::RolledBack {
            rotation_id,
            reason,
        }) => {
            error!(policy = %name, rotation = %rotation_id, %reason, "rotation rolled back");
            return false;
        }
        Ok(RunOutcome::Stopped {
            rotation_id,
            live_old_key: None,
        }) => {
            info!(policy = %name, rotation = %rotation_id, "stopped for shutdown")
        }
        Ok(RunOutcome::Stopped {
            rotation_id,
            live_old_key: Some(live),
        }) => {
            warn!(policy = %name, rotation = %rotation_id, "stopped for shutdown: {}", live.message())
        }
        Ok(RunOutcome::Busy) => warn!(policy = %name, "secret busy in another process"),
        Ok(RunOutcome::NotDue { .. }) => {}
        Ok(RunOutcome::AwaitingKey { since }) => {
            let since = since.map(rfc3339);
            info!(policy = %name, since = since.as_deref().unwrap_or("-"), "due; waiting for a new key to be placed as pending")
        }
        Err(e) => {
            error!(policy = %name, error = %e, kind = e.kind(), "rotation failed");
            return false;
        }
    }
    true
}
