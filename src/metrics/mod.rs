//! Prometheus metrics: rotations, steps, verification attempts, provider and
//! store calls, reloads, notifications, and per-policy key age and due
//! times. The families are the contract in `families.rs`; `metered.rs`
//! counts provider and store calls; the registry is hand-rolled (`registry.rs`)
//! to keep the dependency tree lean.

use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::events::{Event, EventOutcome, EventStep};
use crate::policy::Policy;
use crate::state::{OutcomeKind, PolicyState, Step};

pub mod families;
pub mod metered;
mod registry;

use families as f;
use registry::Registry;
pub use registry::{BUCKETS, Family, Kind, escape_label};

/// Results of `rekey_rotations_total`, present at zero once a policy is known
/// so that `increase()` and `rate()` work from the first failure on.
const ROTATION_RESULTS: [&str; 3] = ["rotated", "rolled_back", "failed"];
const NOTIFICATION_RESULTS: [&str; 3] = ["sent", "failed", "dropped"];

pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        registry.set(&f::BUILD_INFO, &[env!("CARGO_PKG_VERSION")], 1.0);
        registry.add(&f::AUDIT_WRITE_FAILURES, &[], 0.0);
        for result in ["applied", "refused"] {
            registry.add(&f::CONFIG_RELOADS, &[result], 0.0);
        }
        Metrics {
            registry: Mutex::new(registry),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One state change: rotation results, step durations, and the in-flight
    /// gauges between two snapshots (so a long verify shows as in progress).
    pub fn record(&self, event: &Event) {
        let mut r = self.lock();
        let policy = event.policy.as_str();
        if let Some(result) = rotation_result(event.outcome) {
            r.add(&f::ROTATIONS, &[policy, &event.provider, result], 1.0);
        }
        if let (Some(step), Some(d)) = (timed_step(event.step), event.duration) {
            r.observe(&f::STEP_DURATION, &[policy, step], d.as_secs_f64());
        }
        let ts = unix(event.time);
        match (event.step, event.outcome) {
            (EventStep::Begin | EventStep::Claim, EventOutcome::Ok) => {
                r.set(&f::IN_PROGRESS, &[policy], 1.0);
                r.set(&f::STARTED, &[policy], ts);
                r.set(&f::DUE, &[policy], 0.0);
            }
            (EventStep::Promote, EventOutcome::Ok) => {
                r.set(&f::IN_PROGRESS, &[policy], 0.0);
                r.set(&f::PENDING_REVOKES, &[policy], 1.0);
            }
            (_, EventOutcome::Rotated) => {
                r.set(&f::LAST_SUCCESS, &[policy], ts);
                idle(&mut r, policy);
            }
            (_, EventOutcome::RolledBack) => idle(&mut r, policy),
            // A failure may leave the rotation in flight or close it: the
            // snapshot after the run tells which.
            _ => {}
        }
    }

    pub fn verify_attempt(&self, policy: &str, _provider: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.lock().add(&f::VERIFY_ATTEMPTS, &[policy, result], 1.0);
    }

    /// `ok`: the new config was applied; otherwise it was refused.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "applied" } else { "refused" };
        self.lock().add(&f::CONFIG_RELOADS, &[result], 1.0);
    }

    /// The per-policy gauges, from the journal: the source of truth that
    /// corrects whatever the events in between suggested.
    pub fn policy_snapshot(
        &self,
        policy: &Policy,
        state: &PolicyState,
        next_due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        let mut r = self.lock();
        let name = policy.name.as_str();
        for result in ROTATION_RESULTS {
            r.add(&f::ROTATIONS, &[name, &policy.provider, result], 0.0);
        }
        let age = state.current.as_ref().map(|k| seconds(now - k.created_at));
        set_or_remove(&mut r, &f::KEY_AGE, name, age);
        let max_age = policy.max_age.map(|d| d.as_secs_f64());
        set_or_remove(&mut r, &f::KEY_MAX_AGE, name, max_age);
        set_or_remove(&mut r, &f::NEXT_ROTATION, name, next_due.map(unix));
        set_or_remove(&mut r, &f::LAST_SUCCESS, name, last_success(state));

        let flight = state.in_flight.as_ref();
        let promoted = flight.is_some_and(|f| f.step == Step::Promoted);
        // No next due time means no key yet: the first key is due now.
        let due = flight.is_none() && next_due.is_none_or(|at| at <= now);
        r.set(&f::DUE, &[name], flag(due));
        r.set(
            &f::IN_PROGRESS,
            &[name],
            flag(flight.is_some() && !promoted),
        );
        r.set(&f::PENDING_REVOKES, &[name], flag(promoted));
        let started = flight.map(|f| unix(f.started_at)).unwrap_or(0.0);
        r.set(&f::STARTED, &[name], started);
        let revoke_failures = flight.map(|f| f.revoke_failures).unwrap_or(0);
        r.set(&f::REVOKE_FAILURES, &[name], f64::from(revoke_failures));
        r.set(&f::JOURNAL_CORRUPT, &[name], 0.0);
    }

    /// The policy's journal cannot be read (`rekey_journal_corrupt` = 1).
    pub fn journal_corrupt(&self, policy: &str) {
        self.lock().set(&f::JOURNAL_CORRUPT, &[policy], 1.0);
    }

    pub fn forget_policy(&self, policy: &str) {
        self.lock().remove_where(&f::PER_POLICY, "policy", policy);
    }

    /// The daemon's loop ran a pass (liveness: `rekey_scheduler_last_tick_timestamp_seconds`).
    pub fn scheduler_tick(&self, now: DateTime<Utc>) {
        self.lock().set(&f::SCHEDULER_TICK, &[], unix(now));
    }

    /// One provider API call; `result` is `ok` or `ProviderError::kind()`.
    pub fn provider_request(&self, provider: &str, op: &str, result: &str) {
        let labels = [provider, op, result];
        self.lock().add(&f::PROVIDER_REQUESTS, &labels, 1.0);
    }

    /// One secret store call; `result` is `ok` or `StoreError::kind()`.
    pub fn store_request(&self, store: &str, op: &str, result: &str) {
        self.lock()
            .add(&f::STORE_REQUESTS, &[store, op, result], 1.0);
    }

    /// A configured notifier: its series start at zero.
    pub fn notifier_configured(&self, notifier: &str) {
        let mut r = self.lock();
        for result in NOTIFICATION_RESULTS {
            r.add(&f::NOTIFICATIONS, &[notifier, result], 0.0);
        }
    }

    /// `result`: sent, failed or dropped.
    pub fn notification(&self, notifier: &str, result: &str) {
        self.lock().add(&f::NOTIFICATIONS, &[notifier, result], 1.0);
    }

    pub fn audit_write_failure(&self) {
        self.lock().add(&f::AUDIT_WRITE_FAILURES, &[], 1.0);
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.lock().render(&f::ALL)
    }
}

fn rotation_result(outcome: EventOutcome) -> Option<&'static str> {
    match outcome {
        EventOutcome::Rotated => Some("rotated"),
        EventOutcome::RolledBack => Some("rolled_back"),
        EventOutcome::Failed => Some("failed"),
        EventOutcome::Ok | EventOutcome::Waiting => None,
    }
}

/// The steps of the step-duration histogram (adopt and await_key are not steps of a rotation).
fn timed_step(step: EventStep) -> Option<&'static str> {
    match step {
        EventStep::Adopt | EventStep::AwaitKey => None,
        other => Some(other.as_str()),
    }
}

/// Nothing in flight any more.
fn idle(r: &mut Registry, policy: &str) {
    r.set(&f::IN_PROGRESS, &[policy], 0.0);
    r.set(&f::PENDING_REVOKES, &[policy], 0.0);
    r.set(&f::STARTED, &[policy], 0.0);
    r.set(&f::REVOKE_FAILURES, &[policy], 0.0);
}

fn last_success(state: &PolicyState) -> Option<f64> {
    let newest = state.history.iter().rev();
    let entry = newest
        .into_iter()
        .find(|h| h.kind == OutcomeKind::Rotated)?;
    Some(unix(entry.finished_at))
}

fn set_or_remove(r: &mut Registry, family: &Family, policy: &str, v: Option<f64>) {
    match v {
        Some(v) => r.set(family, &[policy], v),
        None => r.remove(family, &[policy]),
    }
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests;
