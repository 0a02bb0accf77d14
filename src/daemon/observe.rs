//! The daemon's view of each policy for the observer's per-policy gauges
//! (key age, next due, in progress...): after every pass and every run,
//! never for a policy a reload has removed.

use chrono::{DateTime, Utc};

use super::Shared;
use crate::app::App;
use crate::policy::Policy;
use crate::rotation::next_due;
use crate::state::PolicyState;

/// The policy's journal after a run, for the observer's per-policy gauges.
pub(super) async fn snapshot_after_run(shared: &Shared, app: &App, policy: &Policy) {
    if let Ok(state) = app.state.load(&policy.name).await {
        observe(shared, app, policy, &state, app.clock.now());
    }
}

/// Feeds the observer's per-policy gauges — unless a reload has removed the
/// policy since `app` was current (its series must stay gone).
pub(super) fn observe(
    shared: &Shared,
    app: &App,
    policy: &Policy,
    state: &PolicyState,
    now: DateTime<Utc>,
) {
    let _gate = shared.gate.lock().expect("snapshot gate poisoned");
    let current = shared.app.read().expect("app lock poisoned").clone();
    // The same app is the common case; looking the name up is only for a
    // pass or a run that a reload overtook.
    let kept = std::ptr::eq(current.as_ref(), app) || current.config.policy(&policy.name).is_some();
    if kept {
        let due = next_due(policy, state);
        app.observer.policy_snapshot(policy, state, due, now);
    }
}
