//! The small rules a pass applies to one policy: a rotation already
//! running, a cooldown after a failure or a busy lease, the start-up
//! catch-up jitter, and what an unreadable journal means.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tracing::{error, warn};

use super::{Mode, Shared};
use crate::app::App;
use crate::policy::Policy;
use crate::rotation::Decision;
use crate::state::Trigger;

/// A journal that cannot be read: the policy is skipped (and fails a
/// `--once` pass). One a newer rekey wrote is not corrupt: it
/// is neither flagged nor alerted as such, only named with what to do.
pub(super) fn journal_unreadable(
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
pub(super) fn catch_up_delay(app: &App, decision: &Decision, first_pass: bool) -> Duration {
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

pub(super) fn cooling_down(
    shared: &Shared,
    policy: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
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
