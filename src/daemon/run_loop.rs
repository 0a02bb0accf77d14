//! One pass of the daemon loop and the sleep between passes: which policies
//! are due, held back (start-up catch-up jitter) or cooling down, and what is
//! logged when the loop stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tracing::{error, info, warn};

use super::observe::observe;
use super::task::spawn_rotation;
use super::{Daemon, MAX_SLEEP, Mode, Shared, Summary};
use crate::app::App;
use crate::names::PolicyName;
use crate::policy::Policy;
use crate::rotation::{Decision, Request, WaitReason, decide};
use crate::state::Trigger;

/// Whether a reload added or changed `policy` since its last decision (asked once).
fn touched_by_reload(shared: &Shared, policy: &str) -> bool {
    (shared.touched_by_reload.lock())
        .expect("reload set poisoned")
        .remove(policy)
}

/// The loop itself: one pass over every policy, then sleep (see the module doc).
pub(super) async fn run_loop(daemon: &Daemon, mode: Mode) -> Summary {
    let shared = daemon.shared.clone();
    let tracker = daemon.tracker.clone();
    let mut app = daemon.app();
    let mut held_back: HashMap<PolicyName, DateTime<Utc>> = HashMap::new();
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
        // With leases that expire, a rotation left in flight by a crashed
        // replica is looked for once per lease period.
        let pass_every = app.state.lease_period().unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        let mut wake = now + pass_every;
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
    match e {
        crate::state::StateError::NewerFormat { .. } => {
            error!(policy = %policy.name, error = %e, kind = e.kind(), "this policy is not rotated by this rekey");
            return;
        }
        // Not the journal's fault (a table throttled or out of reach, a
        // permission): nothing to repair in it, so nothing flagged corrupt.
        crate::state::StateError::Io { .. } | crate::state::StateError::LeaseLost { .. } => {
            warn!(policy = %policy.name, error = %e, kind = e.kind(), "cannot read the journal now; the policy is passed over until it can be");
            return;
        }
        crate::state::StateError::Corrupt { .. } => {}
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

pub(super) fn is_running(shared: &Shared, policy: &str) -> bool {
    shared
        .running
        .lock()
        .expect("running set poisoned")
        .contains(policy)
}
