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
use super::sorted::SortedFamily;

/// Seconds or a Unix time, to the millisecond.
pub type Seconds = Gauge<f64, AtomicU64>;
/// A flag (0 or 1) or a count.
pub type Whole = Gauge<i64>;

type PerPolicy<M> = SortedFamily<PolicyLabels, M>;

pub struct Families {
    pub rotations: SortedFamily<RotationLabels, Counter>,
    pub step_duration: SortedFamily<StepLabels, Histogram>,
    pub verify_attempts: SortedFamily<VerifyLabels, Counter>,
    pub provider_requests: SortedFamily<ProviderCallLabels, Counter>,
    pub provider_throttled: SortedFamily<ProviderLabels, Counter<f64, AtomicU64>>,
    pub store_requests: SortedFamily<StoreCallLabels, Counter>,
    pub key_age: PerPolicy<Seconds>,
    pub key_max_age: PerPolicy<Seconds>,
    pub next_rotation: PerPolicy<Seconds>,
    pub last_success: PerPolicy<Seconds>,
    pub due: PerPolicy<Whole>,
    pub in_progress: PerPolicy<Whole>,
    pub started: PerPolicy<Seconds>,
    pub pending_revokes: PerPolicy<Whole>,
    pub revoke_failures: PerPolicy<Whole>,
    pub journal_corrupt: PerPolicy<Whole>,
    pub config_reloads: SortedFamily<ReloadLabels, Counter>,
    pub notifications: SortedFamily<NotificationLabels, Counter>,
    pub audit_write_failures: Counter,
    pub scheduler_tick: SortedFamily<NoLabels, Seconds>,
    pub build_info: SortedFamily<BuildLabels, Whole>,
}

impl Families {
    /// Every family without a series yet, and a registry that encodes them.
    pub fn registered() -> (Families, Registry) {
        let families = Families {
            rotations: SortedFamily::default(),
            step_duration: SortedFamily::with_constructor(|| Histogram::new(BUCKETS)),
            verify_attempts: SortedFamily::default(),
            provider_requests: SortedFamily::default(),
            provider_throttled: SortedFamily::default(),
            store_requests: SortedFamily::default(),
            key_age: SortedFamily::default(),
            key_max_age: SortedFamily::default(),
            next_rotation: SortedFamily::default(),
            last_success: SortedFamily::default(),
            due: SortedFamily::default(),
            in_progress: SortedFamily::default(),
            started: SortedFamily::default(),
            pending_revokes: SortedFamily::default(),
            revoke_failures: SortedFamily::default(),
            journal_corrupt: SortedFamily::default(),
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
        add(r, &f::CONFIG_RELOADS, &self.config_reloads);
        add(r, &f::NOTIFICATIONS, &self.notifications);
        add(r, &f::AUDIT_WRITE_FAILURES, &self.audit_write_failures);
        add(r, &f::SCHEDULER_TICK, &self.scheduler_tick);
        add(r, &f::BUILD_INFO, &self.build_info);
    }

    /// Drops every series labelled with `policy` (a policy removed by a reload).
    pub fn forget_policy(&self, policy: &str) {
        self.rotations.retain(|l| l.policy != policy);
        // A set's histograms outlive any one member.
        (self.step_duration).retain(|l| l.scope != HistogramScope::Policy(policy.to_string()));
        self.verify_attempts.retain(|l| l.policy != policy);
        let labels = policy_labels(policy);
        let seconds = [
            &self.key_age,
            &self.key_max_age,
            &self.next_rotation,
            &self.last_success,
            &self.started,
        ];
        for family in seconds {
            family.remove(&labels);
        }
        let whole = [
            &self.due,
            &self.in_progress,
            &self.pending_revokes,
            &self.revoke_failures,
            &self.journal_corrupt,
        ];
        for family in whole {
            family.remove(&labels);
        }
    }
}

pub fn policy_labels(policy: &str) -> PolicyLabels {
    PolicyLabels {
        policy: policy.to_string(),
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
