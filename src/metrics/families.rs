//! The metric families rekey exports: a fixed contract shared with the
//! admin API, the deploy/ alert rules and the README. Each family's name (as
//! scraped, `_total` included) and help text, and its labels as a typed label
//! set. Labels are bounded (policy, provider, store, step, op, result,
//! notifier): never a key, never an error message.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet};

/// A family's name as scraped and its help text.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
}

/// Upper bounds (seconds) of the step-duration buckets; `+Inf` is implied.
/// Steps range from milliseconds (a journal write) to minutes (verify
/// waiting for a key to propagate).
pub const BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

pub const ROTATIONS: Family = Family {
    name: "rekey_rotations_total",
    help: "Finished rotation attempts by result (rotated, rolled_back, failed).",
};

pub const STEP_DURATION: Family = Family {
    name: "rekey_step_duration_seconds",
    help: "Time taken by each protocol step (begin, create, claim, stage, verify, promote, revoke, rollback).",
};

pub const VERIFY_ATTEMPTS: Family = Family {
    name: "rekey_verify_attempts_total",
    help: "Verification attempts with a new key (ok, failed).",
};

pub const PROVIDER_REQUESTS: Family = Family {
    name: "rekey_provider_requests_total",
    help: "Provider API calls by operation and result (ok or the error kind).",
};

pub const PROVIDER_THROTTLED: Family = Family {
    name: "rekey_provider_throttled_seconds_total",
    help: "Time management calls waited for the provider entry's limiter (rate_limit, max_concurrent, a 429's hold).",
};

pub const STORE_REQUESTS: Family = Family {
    name: "rekey_store_requests_total",
    help: "Secret store calls by operation and result (ok or the error kind).",
};

pub const KEY_AGE: Family = Family {
    name: "rekey_key_age_seconds",
    help: "Age of the policy's current key.",
};

pub const KEY_MAX_AGE: Family = Family {
    name: "rekey_key_max_age_seconds",
    help: "The policy's max_age (only for policies that set one).",
};

pub const NEXT_ROTATION: Family = Family {
    name: "rekey_next_rotation_timestamp_seconds",
    help: "When the policy's current key falls due (Unix time).",
};

pub const LAST_SUCCESS: Family = Family {
    name: "rekey_last_success_timestamp_seconds",
    help: "When the policy's last successful rotation finished (Unix time).",
};

pub const DUE: Family = Family {
    name: "rekey_rotation_due",
    help: "1 when the policy is due now and no rotation of it is in flight.",
};

pub const IN_PROGRESS: Family = Family {
    name: "rekey_rotation_in_progress",
    help: "1 while a rotation of the policy is in flight before promote.",
};

pub const STARTED: Family = Family {
    name: "rekey_rotation_started_timestamp_seconds",
    help: "When the rotation in flight began (Unix time; 0 when none is).",
};

pub const PENDING_REVOKES: Family = Family {
    name: "rekey_pending_revokes",
    help: "1 when the new key is current and the old key is not yet revoked.",
};

pub const REVOKE_FAILURES: Family = Family {
    name: "rekey_revoke_failures",
    help: "Consecutive failed revokes of the rotation in flight.",
};

pub const CONFIG_RELOADS: Family = Family {
    name: "rekey_config_reloads_total",
    help: "Config reloads by result (applied, refused).",
};

pub const NOTIFICATIONS: Family = Family {
    name: "rekey_notifications_total",
    help: "Webhook notifications by notifier and result (sent, failed, dropped).",
};

pub const AUDIT_WRITE_FAILURES: Family = Family {
    name: "rekey_audit_write_failures_total",
    help: "Audit records that could not be written.",
};

pub const SCHEDULER_TICK: Family = Family {
    name: "rekey_scheduler_last_tick_timestamp_seconds",
    help: "When the daemon's scheduling loop last ran a pass (Unix time).",
};

pub const BUILD_INFO: Family = Family {
    name: "rekey_build_info",
    help: "Always 1; the version label says which rekey is running.",
};

pub const JOURNAL_CORRUPT: Family = Family {
    name: "rekey_journal_corrupt",
    help: "1 while the policy's journal cannot be read (the policy is not rotated until it is repaired).",
};

pub const HOOK_RUNS: Family = Family {
    name: "rekey_hook_runs_total",
    help: "on_promote hook runs by result (ok, failed).",
};

pub const OLD_KEY_BUSY: Family = Family {
    name: "rekey_old_key_busy",
    help: "1 while the grace is over but the old key is still in use, so it is not revoked yet (revoke.wait_idle).",
};

/// Every family, in exposition order.
pub const ALL: [&Family; 23] = [
    &ROTATIONS,
    &STEP_DURATION,
    &VERIFY_ATTEMPTS,
    &PROVIDER_REQUESTS,
    &PROVIDER_THROTTLED,
    &STORE_REQUESTS,
    &KEY_AGE,
    &KEY_MAX_AGE,
    &NEXT_ROTATION,
    &LAST_SUCCESS,
    &DUE,
    &IN_PROGRESS,
    &STARTED,
    &PENDING_REVOKES,
    &REVOKE_FAILURES,
    &JOURNAL_CORRUPT,
    &OLD_KEY_BUSY,
    &HOOK_RUNS,
    &CONFIG_RELOADS,
    &NOTIFICATIONS,
    &AUDIT_WRITE_FAILURES,
    &SCHEDULER_TICK,
    &BUILD_INFO,
];

// Label sets, fields in label order: series sort by them in that order.

/// `rekey_rotations_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RotationLabels {
    pub policy: Arc<str>,
    pub provider: Arc<str>,
    pub result: &'static str,
}

/// `rekey_step_duration_seconds`: a plain policy's own series, or one per
/// policy set shared by its members (10,000 members, not 10,000 series).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StepLabels {
    pub scope: HistogramScope,
    pub step: String,
}

/// Whose histogram: `policy="<name>"` or `policy_set="<set name>"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HistogramScope {
    Policy(Arc<str>),
    Set(String),
}

impl EncodeLabelSet for StepLabels {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        let scope = match &self.scope {
            HistogramScope::Policy(name) => ("policy", &**name),
            HistogramScope::Set(name) => ("policy_set", name.as_str()),
        };
        EncodeLabel::encode(&scope, encoder.encode_label())?;
        EncodeLabel::encode(&("step", self.step.as_str()), encoder.encode_label())
    }
}

/// `rekey_verify_attempts_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct VerifyLabels {
    pub policy: Arc<str>,
    pub result: &'static str,
}

/// `rekey_hook_runs_total`: the same labels as the verify attempts.
pub type HookLabels = VerifyLabels;

/// `rekey_provider_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ProviderCallLabels {
    pub provider: String,
    pub op: String,
    pub result: String,
}

/// `rekey_provider_throttled_seconds_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

/// `rekey_store_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct StoreCallLabels {
    pub store: String,
    pub op: String,
    pub result: String,
}

/// The per-policy gauges. The name is shared by every series of the
/// policy (13 of them: ~0.5 KiB per policy as separate strings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: Arc<str>,
}

/// `rekey_config_reloads_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: String,
}

/// `rekey_notifications_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct NotificationLabels {
    pub notifier: String,
    pub result: String,
}

/// `rekey_build_info`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// No labels: for a family with at most one series that is absent until it
/// has a value (the scheduler tick), rather than 0 from the start.
pub type NoLabels = [(&'static str, &'static str); 0];
