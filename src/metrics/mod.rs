//! Prometheus metrics: rotations, steps, verification attempts, provider and
//! store calls, reloads, notifications, and per-policy key age and due
//! times. The families are the contract in `families.rs`; `registry.rs`
//! holds them as prometheus-client metrics; `exposition.rs` writes them in
//! the format a scraper asks for; `metered.rs` counts provider and store
//! calls. This module turns rekey's events and journal snapshots into
//! values.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;

use crate::events::{Event, EventOutcome, EventStep};
use crate::policy::Policy;
use crate::state::{OutcomeKind, PolicyState, Step};

mod exposition;
pub mod families;
pub mod metered;
mod per_policy;
mod registry;
mod sorted;

pub use exposition::{EncodeError, Exposition};
pub use families::BUCKETS;
use families::{
    BuildLabels, HistogramScope, HookLabels, NotificationLabels, PolicyLabels, ProviderCallLabels,
    ProviderLabels, ReloadLabels, RotationLabels, StepLabels, StoreCallLabels, VerifyLabels,
};
use registry::Families;

/// Results of `rekey_rotations_total`, present at zero once a policy is known
/// so that `increase()` and `rate()` work from the first failure on.
const ROTATION_RESULTS: [&str; 3] = ["rotated", "rolled_back", "failed"];
const NOTIFICATION_RESULTS: [&str; 3] = ["sent", "failed", "dropped"];

pub struct Metrics {
    /// One lock over every family, so that a scrape never sees half of an
    /// update that moves several gauges (begin, promote, a snapshot).
    inner: Mutex<Inner>,
}

struct Inner {
    f: Families,
    /// Holds a handle to every family of `f`, in exposition order.
    registry: Registry,
    /// One copy of each policy and provider name, shared by its series.
    names: HashSet<Arc<str>>,
}

impl Inner {
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(shared.clone());
        shared
    }

    fn policy(&mut self, policy: &str) -> PolicyLabels {
        PolicyLabels {
            policy: self.name(policy),
        }
    }

    fn rotation(&mut self, policy: &str, provider: &str, result: &'static str) -> RotationLabels {
        RotationLabels {
            policy: self.name(policy),
            provider: self.name(provider),
            result,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let (f, registry) = Families::registered();
        let version = BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        f.build_info.get_or_create(&version).set(1);
        for result in ["applied", "refused"] {
            f.config_reloads.get_or_create(&reload(result));
        }
        Metrics {
            inner: Mutex::new(Inner {
                f,
                registry,
                names: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One state change: rotation results, step durations, and the in-flight
    /// gauges between two snapshots (so a long verify shows as in progress).
    pub fn record(&self, event: &Event) {
        let mut inner = self.lock();
        let policy = event.policy.as_str();
        let p = inner.policy(policy);
        if let Some(result) = rotation_result(event.outcome) {
            let labels = inner.rotation(policy, &event.provider, result);
            inner.f.rotations.get_or_create(&labels).inc();
        }
        let f = &inner.f;
        if let (Some(step), Some(d)) = (timed_step(event.step), event.duration) {
            let scope = match &event.policy_set {
                Some(set) => HistogramScope::Set(set.clone()),
                None => HistogramScope::Policy(p.policy.clone()),
            };
            let labels = StepLabels {
                scope,
                step: step.to_string(),
            };
            f.step_duration
                .get_or_create(&labels)
                .observe(d.as_secs_f64());
        }
        if event.step == EventStep::Hook {
            let result = if event.outcome == EventOutcome::Ok {
                "ok"
            } else {
                "failed"
            };
            let labels = HookLabels {
                policy: p.policy.clone(),
                result,
            };
            f.hook_runs.get_or_create(&labels).inc();
        }
        let ts = unix(event.time);
        match (event.step, event.outcome) {
            (EventStep::Begin | EventStep::Claim, EventOutcome::Ok) => {
                f.in_progress.set(&p, 1);
                f.started.set(&p, ts);
                f.due.set(&p, 0);
            }
            (EventStep::Promote, EventOutcome::Ok) => {
                f.in_progress.set(&p, 0);
                f.pending_revokes.set(&p, 1);
            }
            (_, EventOutcome::Rotated) => {
                f.last_success.set(&p, ts);
                idle(f, &p);
            }
            (_, EventOutcome::RolledBack) => idle(f, &p),
            // A failure may leave the rotation in flight or close it: the
            // snapshot after the run tells which.
            _ => {}
        }
    }

    pub fn verify_attempt(&self, policy: &str, _provider: &str, ok: bool) {
        let mut inner = self.lock();
        let labels = VerifyLabels {
            policy: inner.name(policy),
            result: if ok { "ok" } else { "failed" },
        };
        inner.f.verify_attempts.get_or_create(&labels).inc();
    }

    /// `ok`: the new config was applied; otherwise it was refused.
    pub fn config_reload(&self, ok: bool) {
        let labels = reload(if ok { "applied" } else { "refused" });
        self.lock().f.config_reloads.get_or_create(&labels).inc();
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
        let mut inner = self.lock();
        let name = policy.name.as_str();
        for result in ROTATION_RESULTS {
            let labels = inner.rotation(name, &policy.provider, result);
            inner.f.rotations.get_or_create(&labels);
        }
        let p = inner.policy(name);
        let f = &inner.f;
        let age = state.current.as_ref().map(|k| seconds(now - k.created_at));
        f.key_age.set_or_remove(&p, age);
        let max_age = policy.max_age.map(|d| d.as_secs_f64());
        f.key_max_age.set_or_remove(&p, max_age);
        f.next_rotation.set_or_remove(&p, next_due.map(unix));
        f.last_success.set_or_remove(&p, last_success(state));

        let flight = state.in_flight.as_ref();
        let promoted = flight.is_some_and(|f| f.step == Step::Promoted);
        // No next due time means no key yet: the first key is due now.
        let due = flight.is_none() && next_due.is_none_or(|at| at <= now);
        f.due.set(&p, flag(due));
        let in_progress = flight.is_some() && !promoted;
        f.in_progress.set(&p, flag(in_progress));
        f.pending_revokes.set(&p, flag(promoted));
        let started = flight.map(|f| unix(f.started_at)).unwrap_or(0.0);
        f.started.set(&p, started);
        let revoke_failures = flight.map(|f| f.revoke_failures).unwrap_or(0);
        f.revoke_failures.set(&p, i64::from(revoke_failures));
        f.journal_corrupt.set(&p, 0);
        let busy = flight.is_some_and(|f| f.after_promote.idle.is_some());
        f.old_key_busy.set(&p, flag(busy));
    }

    /// The policy's journal cannot be read (`rekey_journal_corrupt` = 1).
    pub fn journal_corrupt(&self, policy: &str) {
        let mut inner = self.lock();
        let p = inner.policy(policy);
        inner.f.journal_corrupt.set(&p, 1);
    }

    /// A policy removed by a reload: its series go with it.
    pub fn forget_policy(&self, policy: &str) {
        let mut inner = self.lock();
        inner.f.forget_policy(policy);
        inner.names.remove(policy);
    }

    /// The daemon's loop ran a pass (liveness: `rekey_scheduler_last_tick_timestamp_seconds`).
    pub fn scheduler_tick(&self, now: DateTime<Utc>) {
        let f = &self.lock().f;
        f.scheduler_tick.get_or_create(&[]).set(unix(now));
    }

    /// One provider API call; `result` is `ok` or `ProviderError::kind()`.
    pub fn provider_request(&self, provider: &str, op: &str, result: &str) {
        let labels = ProviderCallLabels {
            provider: provider.to_string(),
            op: op.to_string(),
            result: result.to_string(),
        };
        self.lock().f.provider_requests.get_or_create(&labels).inc();
    }

    /// Time a management call to `provider` waited for its limiter.
    pub fn provider_throttled(&self, provider: &str, waited: std::time::Duration) {
        let labels = ProviderLabels {
            provider: provider.to_string(),
        };
        let f = &self.lock().f;
        f.provider_throttled
            .get_or_create(&labels)
            .inc_by(waited.as_secs_f64());
    }

    /// One secret store call; `result` is `ok` or `StoreError::kind()`.
    pub fn store_request(&self, store: &str, op: &str, result: &str) {
        let labels = StoreCallLabels {
            store: store.to_string(),
            op: op.to_string(),
            result: result.to_string(),
        };
        self.lock().f.store_requests.get_or_create(&labels).inc();
    }

    /// A configured notifier: its series start at zero.
    pub fn notifier_configured(&self, notifier: &str) {
        let f = &self.lock().f;
        for result in NOTIFICATION_RESULTS {
            f.notifications
                .get_or_create(&notification(notifier, result));
        }
    }

    /// `result`: sent, failed or dropped.
    pub fn notification(&self, notifier: &str, result: &str) {
        let labels = notification(notifier, result);
        self.lock().f.notifications.get_or_create(&labels).inc();
    }

    pub fn audit_write_failure(&self) {
        self.lock().f.audit_write_failures.inc();
    }

    /// Every family in `format` (what `/metrics` serves).
    pub fn encode(&self, format: Exposition) -> Result<String, EncodeError> {
        exposition::encode(&self.lock().registry, format)
    }

    /// The Prometheus text format, for tests and tools that read it whole;
    /// empty in the (so far impossible) case that a metric cannot encode itself.
    pub fn render(&self) -> String {
        self.encode(Exposition::Prometheus).unwrap_or_default()
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
        EventStep::Adopt | EventStep::AwaitKey | EventStep::Retire | EventStep::WaitIdle => None,
        other => Some(other.as_str()),
    }
}

/// Nothing in flight any more.
fn idle(f: &Families, p: &PolicyLabels) {
    f.in_progress.set(p, 0);
    f.pending_revokes.set(p, 0);
    f.started.set(p, 0.0);
    f.revoke_failures.set(p, 0);
    f.old_key_busy.set(p, 0);
}

fn last_success(state: &PolicyState) -> Option<f64> {
    let newest = state.history.iter().rev();
    let entry = newest
        .into_iter()
        .find(|h| h.kind == OutcomeKind::Rotated)?;
    Some(unix(entry.finished_at))
}

fn reload(result: &str) -> ReloadLabels {
    ReloadLabels {
        result: result.to_string(),
    }
}

fn notification(notifier: &str, result: &str) -> NotificationLabels {
    NotificationLabels {
        notifier: notifier.to_string(),
        result: result.to_string(),
    }
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests;
