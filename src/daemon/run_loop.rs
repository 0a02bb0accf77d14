//! The daemon loop: passes (`pass`) and the sleep between them, when a
//! `--once` run is done, and what is logged when the loop stops.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::heap;
use super::pass::Looker;
use super::{Daemon, MAX_SLEEP, Mode, Summary};
use crate::app::App;
use crate::names::PolicyName;

/// The loop itself: a pass over what the index says is due, then sleep
/// (see the module doc).
pub(super) async fn run_loop(daemon: &Daemon, mode: Mode) -> Summary {
    let shared = daemon.shared.clone();
    let tracker = daemon.tracker.clone();
    let mut app = daemon.app();
    let mut looker = Looker::new(&app, mode, app.clock.now());
    let mut ran = 0;
    // Memory freed since the loop last settled (a start, a reload, rotations).
    let mut unsettled = true;
    info!(
        policies = app.config.policies.len(),
        mode = mode.as_str(),
        "daemon started"
    );
    for warning in crate::config::warnings(&app.config) {
        warn!("{warning}");
    }
    loop {
        let current = daemon.app();
        if !Arc::ptr_eq(&current, &app) {
            app = current;
            looker.reloaded(&shared, &app, app.clock.now());
            unsettled = true;
        }
        let now = app.clock.now();
        // A journal that could not be read is tried again this often.
        let retry_in = app.state.lease_period().unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        looker.rotations_ended(&shared, now);
        looker.lease_scan(&app, now).await;
        let passed = looker.pass(&shared, &tracker, &app, now, retry_in).await;
        ran += passed.ran;
        // Counted from outside by the fleet bench (`benches/fleet`).
        tracing::trace!(target: "rekey::daemon::pass", started = passed.ran, "pass");
        looker.refresh_gauges(&shared, &app, app.clock.now());
        daemon.tick(&app);
        unsettled |= passed.ran > 0;
        if unsettled && mode == Mode::Forever && !passed.blocked && daemon.is_idle() {
            heap::release_free_memory();
            unsettled = false;
        }
        if mode == Mode::Once {
            // Every policy is looked at once; what waits for the
            // concurrency limit is looked at when a rotation ends.
            if looker.index.planned() == 0 {
                break;
            }
            tokio::select! {
                _ = shared.finished.notified() => continue,
                _ = shared.cancel.cancelled() => break,
            }
        }
        let wake = looker.wake(&app, passed.blocked);
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
        let in_flight = looker.index.in_flight().cloned();
        let ended = shared.ended.lock().expect("ended set poisoned").clone();
        let mut names: Vec<PolicyName> = in_flight.chain(ended).collect();
        names.sort();
        names.dedup();
        warn_of_live_old_keys(&daemon.app(), &names).await;
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
/// revokes it — the operator must not think "stopped" means "done". Only
/// the journals that can hold one are read: those last seen with a
/// rotation in flight and those of rotations that ended since.
async fn warn_of_live_old_keys(app: &App, candidates: &[PolicyName]) {
    for name in candidates {
        let Some(policy) = app.config.policy(name) else {
            continue;
        };
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
