//! Prometheus metrics: rotations, steps, verification attempts, provider and
//! store calls, reloads, per-policy key age and due times. (Stub: being built.)

use chrono::{DateTime, Utc};

use crate::events::Event;
use crate::policy::Policy;
use crate::state::PolicyState;

pub struct Metrics {}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {}
    }

    pub fn record(&self, _event: &Event) {}

    pub fn verify_attempt(&self, _policy: &str, _provider: &str, _ok: bool) {}

    /// `ok`: the new config was applied; otherwise it was refused.
    pub fn config_reload(&self, _ok: bool) {}

    pub fn policy_snapshot(
        &self,
        _policy: &Policy,
        _state: &PolicyState,
        _next_due: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) {
    }

    pub fn forget_policy(&self, _policy: &str) {}

    /// The daemon's loop ran a pass (liveness: `rekey_scheduler_last_tick_timestamp_seconds`).
    pub fn scheduler_tick(&self, _now: DateTime<Utc>) {}

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        String::new()
    }
}
