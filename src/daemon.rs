//! The daemon loop: a deadline loop over all policies (mini-redis'
//! `purge_expired_tasks` shape). Each pass loads every journal, runs what is
//! due under the global concurrency limit, and sleeps until the earliest next
//! due instant — computed from the cron expression in its time zone each time,
//! so daylight-saving changes are honoured — or until a rotation finishes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::app::App;
use crate::policy::Policy;
use crate::rotation::{Decision, Request, RunOutcome, Until, WaitReason, decide, run_policy};
use crate::state::Trigger;

/// The longest the loop sleeps without looking again.
const MAX_SLEEP: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Do everything due now (including pending revokes), then return.
    Once,
    /// Run until the app's cancel token fires.
    Forever,
}

/// What a `--once` pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ran: usize,
    pub failed: usize,
}

struct Shared {
    app: Arc<App>,
    limit: Semaphore,
    running: Mutex<HashSet<String>>,
    finished: Notify,
    failed: Mutex<usize>,
    /// Policies not to try again before an instant: after a failure the
    /// journal could not record (e.g. the store was unreachable), or while
    /// another process holds the secret.
    cooldown: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// How long to leave a secret alone that another process is rotating.
const BUSY_COOLDOWN: Duration = Duration::from_secs(10);
/// How often an assisted policy's store is looked at for a placed key.
const ASSISTED_RECHECK: Duration = Duration::from_secs(30);

pub async fn run(app: Arc<App>, mode: Mode) -> Summary {
    let shared = Arc::new(Shared {
        limit: Semaphore::new(app.config.daemon.max_concurrent_rotations),
        app: app.clone(),
        running: Mutex::new(HashSet::new()),
        finished: Notify::new(),
        failed: Mutex::new(0),
        cooldown: Mutex::new(HashMap::new()),
    });
    let tracker = TaskTracker::new();
    let mut held_back: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut first_pass = true;
    let mut ran = 0;
    info!(
        policies = app.config.policies.len(),
        ?mode,
        "daemon started"
    );
    loop {
        let now = app.clock.now();
        let mut wake = now + MAX_SLEEP;
        for policy in &app.config.policies {
            if is_running(&shared, &policy.name) {
                continue;
            }
            if let Some(until) = cooling_down(&shared, &policy.name, now) {
                wake = wake.min(until);
                continue;
            }
            let state = match app.state.load(&policy.name).await {
                Ok(state) => state,
                Err(e) => {
                    error!(policy = %policy.name, error = %e, "cannot read the journal; skipping this policy");
                    continue;
                }
            };
            let decision = decide(policy, &state, now);
            if let Decision::Wait { until, why } = decision {
                // Assisted policies look for a placed key even when not due.
                let assisted = app.providers[&policy.provider].assisted();
                if !(assisted && why == WaitReason::NotDue) {
                    wake = wake.min(until.unwrap_or(wake));
                    continue;
                }
            }
            if mode == Mode::Forever {
                let start = *held_back
                    .entry(policy.name.clone())
                    .or_insert_with(|| now + catch_up_delay(&app, &decision, first_pass));
                if start > now {
                    wake = wake.min(start);
                    continue;
                }
                held_back.remove(&policy.name);
            }
            ran += 1;
            spawn_rotation(&tracker, &shared, policy.clone());
        }
        first_pass = false;
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
            _ = app.cancel.cancelled() => break,
        }
    }
    tracker.close();
    if mode == Mode::Forever {
        info!("shutting down: no new rotations; waiting for running ones to reach a step boundary");
    }
    tracker.wait().await;
    let failed = *shared.failed.lock().expect("failed counter poisoned");
    Summary { ran, failed }
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

fn spawn_rotation(tracker: &TaskTracker, shared: &Arc<Shared>, policy: Policy) {
    shared
        .running
        .lock()
        .expect("running set poisoned")
        .insert(policy.name.clone());
    let shared = shared.clone();
    tracker.spawn(async move {
        // The semaphore is never closed, so acquire only fails if it were.
        let _permit = shared
            .limit
            .acquire()
            .await
            .expect("rotation semaphore closed");
        let ctx = shared.app.ctx(&policy);
        let result = run_policy(&ctx, &policy, Request::Due, Until::Promoted).await;
        let pause = match &result {
            Ok(RunOutcome::Busy) => Some(BUSY_COOLDOWN),
            Err(_) => Some(shared.app.config.daemon.failure_backoff.min),
            Ok(RunOutcome::AwaitingKey { .. }) => Some(ASSISTED_RECHECK),
            Ok(RunOutcome::NotDue { .. }) if ctx.provider.assisted() => Some(ASSISTED_RECHECK),
            Ok(_) => None,
        };
        if let Some(pause) = pause {
            let until = shared.app.clock.now() + pause;
            shared
                .cooldown
                .lock()
                .expect("cooldown map poisoned")
                .insert(policy.name.clone(), until);
        }
        if !report(&policy, &result) {
            *shared.failed.lock().expect("failed counter poisoned") += 1;
        }
        shared
            .running
            .lock()
            .expect("running set poisoned")
            .remove(&policy.name);
        shared.finished.notify_one();
    });
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
        }) => {
            info!(policy = %name, rotation = %rotation_id, %revoke_after, "promoted; old key revoked after the grace")
        }
        Ok(RunOutcome::RolledBack {
            rotation_id,
            reason,
        }) => {
            error!(policy = %name, rotation = %rotation_id, %reason, "rotation rolled back");
            return false;
        }
        Ok(RunOutcome::Stopped { rotation_id }) => {
            info!(policy = %name, rotation = %rotation_id, "stopped for shutdown")
        }
        Ok(RunOutcome::Busy) => warn!(policy = %name, "secret busy in another process"),
        Ok(RunOutcome::NotDue { .. }) => {}
        Ok(RunOutcome::AwaitingKey { since }) => {
            info!(policy = %name, ?since, "due; waiting for a new key to be placed as pending")
        }
        Err(e) => {
            error!(policy = %name, error = %e, kind = e.kind(), "rotation failed");
            return false;
        }
    }
    true
}
