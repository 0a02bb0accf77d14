//! The families of `families.rs` as prometheus-client metrics: one typed
//! handle per family (`Families`), registered with the crate's `Registry` in
//! the contract's order, which the exposition then encodes.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use super::families::{self as f, *};
use super::per_policy::{Column, PolicyTable};
use super::sorted::SortedFamily;

/// Seconds or a Unix time, to the millisecond.
pub type Seconds = Gauge<f64, AtomicU64>;
/// A flag (0 or 1) or a count.
pub type Whole = Gauge<i64>;

pub struct Families {
    pub rotations: SortedFamily<RotationLabels, Counter>,
    pub step_duration: SortedFamily<StepLabels, Histogram>,
    pub verify_attempts: SortedFamily<VerifyLabels, Counter>,
    pub provider_requests: SortedFamily<ProviderCallLabels, Counter>,
    pub provider_throttled: SortedFamily<ProviderLabels, Counter<f64, AtomicU64>>,
    pub store_requests: SortedFamily<StoreCallLabels, Counter>,
    /// The rows behind the ten per-policy families below.
    policies: PolicyTable,
    pub key_age: Column<f64>,
    pub key_max_age: Column<f64>,
    pub next_rotation: Column<f64>,
    pub last_success: Column<f64>,
    pub due: Column<i64>,
    pub in_progress: Column<i64>,
    pub started: Column<f64>,
    pub pending_revokes: Column<i64>,
    pub revoke_failures: Column<i64>,
    pub journal_corrupt: Column<i64>,
    pub old_key_busy: Column<i64>,
    pub hook_runs: SortedFamily<HookLabels, Counter>,
    pub config_reloads: SortedFamily<ReloadLabels, Counter>,
    pub notifications: SortedFamily<NotificationLabels, Counter>,
    pub audit_write_failures: Counter,
    pub scheduler_tick: SortedFamily<NoLabels, Seconds>,
    pub build_info: SortedFamily<BuildLabels, Whole>,
}

impl Families {
    /// Every family without a series yet, and a registry that encodes them.
    pub fn registered() -> (Families, Registry) {
        let policies = PolicyTable::default();
        let families = Families {
            rotations: SortedFamily::default(),
            step_duration: SortedFamily::with_constructor(|| Histogram::new(BUCKETS)),
            verify_attempts: SortedFamily::default(),
            provider_requests: SortedFamily::default(),
            provider_throttled: SortedFamily::default(),
            store_requests: SortedFamily::default(),
            key_age: policies.seconds(0),
            key_max_age: policies.seconds(1),
            next_rotation: policies.seconds(2),
            last_success: policies.seconds(3),
            started: policies.seconds(4),
            due: policies.whole(0),
            in_progress: policies.whole(1),
            pending_revokes: policies.whole(2),
            revoke_failures: policies.whole(3),
            journal_corrupt: policies.whole(4),
            old_key_busy: policies.whole(5),
            hook_runs: SortedFamily::default(),
            policies,
            config_reloads: SortedFamily::default(),
            notifications: SortedFamily::default(),
            audit_write_failures: Counter::default(),
            scheduler_tick: SortedFamily::default(),
            build_info: SortedFamily::default(),
        };
        let mut registry = Registry::default();
        families.register(&mut registry);
        (families, registry)
    }

    /// In the order of `families::ALL`.
    fn register(&self, r: &mut Registry) {
        add(r, &f::ROTATIONS, &self.rotations);
        add(r, &f::STEP_DURATION, &self.step_duration);
        add(r, &f::VERIFY_ATTEMPTS, &self.verify_attempts);
        add(r, &f::PROVIDER_REQUESTS, &self.provider_requests);
        add(r, &f::PROVIDER_THROTTLED, &self.provider_throttled);
        add(r, &f::STORE_REQUESTS, &self.store_requests);
        add(r, &f::KEY_AGE, &self.key_age);
        add(r, &f::KEY_MAX_AGE, &self.key_max_age);
        add(r, &f::NEXT_ROTATION, &self.next_rotation);
        add(r, &f::LAST_SUCCESS, &self.last_success);
        add(r, &f::DUE, &self.due);
        add(r, &f::IN_PROGRESS, &self.in_progress);
        add(r, &f::STARTED, &self.started);
        add(r, &f::PENDING_REVOKES, &self.pending_revokes);
        add(r, &f::REVOKE_FAILURES, &self.revoke_failures);
        add(r, &f::JOURNAL_CORRUPT, &self.journal_corrupt);
        add(r, &f::OLD_KEY_BUSY, &self.old_key_busy);
        add(r, &f::HOOK_RUNS, &self.hook_runs);
        add(r, &f::CONFIG_RELOADS, &self.config_reloads);
        add(r, &f::NOTIFICATIONS, &self.notifications);
        add(r, &f::AUDIT_WRITE_FAILURES, &self.audit_write_failures);
        add(r, &f::SCHEDULER_TICK, &self.scheduler_tick);
        add(r, &f::BUILD_INFO, &self.build_info);
    }

    /// Drops every series labelled with `policy` (a policy removed by a reload).
    pub fn forget_policy(&self, policy: &str) {
        self.rotations.retain(|l| &*l.policy != policy);
        // A set's histograms outlive any one member.
        (self.step_duration).retain(|l| l.scope != HistogramScope::Policy(policy.into()));
        self.verify_attempts.retain(|l| &*l.policy != policy);
        self.hook_runs.retain(|l| &*l.policy != policy);
        self.policies.forget(policy);
    }
}

fn add(r: &mut Registry, family: &Family, metric: &(impl Metric + Clone)) {
    // The crate appends `_total` to a counter's name and a full stop to the
    // help; the contract spells both out.
    let name = match metric.metric_type() {
        MetricType::Counter => family.name.strip_suffix("_total").unwrap_or(family.name),
        _ => family.name,
    };
    let help = family.help.strip_suffix('.').unwrap_or(family.help);
    r.register(name, help, metric.clone());
}
