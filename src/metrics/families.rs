//! The metric families rekey exports: a fixed contract shared with the
//! admin API, the deploy/ alert rules and the README. Labels are bounded
//! (policy, provider, store, step, op, result, notifier): never a key, never
//! an error message.

use super::registry::{Family, Kind};

pub const ROTATIONS: Family = Family {
    name: "rekey_rotations_total",
    help: "Finished rotation attempts by result (rotated, rolled_back, failed).",
    kind: Kind::Counter,
    labels: &["policy", "provider", "result"],
};

pub const STEP_DURATION: Family = Family {
    name: "rekey_step_duration_seconds",
    help: "Time taken by each protocol step (begin, create, claim, stage, verify, promote, revoke, rollback).",
    kind: Kind::Histogram,
    labels: &["policy", "step"],
};

pub const VERIFY_ATTEMPTS: Family = Family {
    name: "rekey_verify_attempts_total",
    help: "Verification attempts with a new key (ok, failed).",
    kind: Kind::Counter,
    labels: &["policy", "result"],
};

pub const PROVIDER_REQUESTS: Family = Family {
    name: "rekey_provider_requests_total",
    help: "Provider API calls by operation and result (ok or the error kind).",
    kind: Kind::Counter,
    labels: &["provider", "op", "result"],
};

pub const STORE_REQUESTS: Family = Family {
    name: "rekey_store_requests_total",
    help: "Secret store calls by operation and result (ok or the error kind).",
    kind: Kind::Counter,
    labels: &["store", "op", "result"],
};

pub const KEY_AGE: Family = Family {
    name: "rekey_key_age_seconds",
    help: "Age of the policy's current key.",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const KEY_MAX_AGE: Family = Family {
    name: "rekey_key_max_age_seconds",
    help: "The policy's max_age (only for policies that set one).",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const NEXT_ROTATION: Family = Family {
    name: "rekey_next_rotation_timestamp_seconds",
    help: "When the policy's current key falls due (Unix time).",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const LAST_SUCCESS: Family = Family {
    name: "rekey_last_success_timestamp_seconds",
    help: "When the policy's last successful rotation finished (Unix time).",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const DUE: Family = Family {
    name: "rekey_rotation_due",
    help: "1 when the policy is due now and no rotation of it is in flight.",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const IN_PROGRESS: Family = Family {
    name: "rekey_rotation_in_progress",
    help: "1 while a rotation of the policy is in flight before promote.",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const STARTED: Family = Family {
    name: "rekey_rotation_started_timestamp_seconds",
    help: "When the rotation in flight began (Unix time; 0 when none is).",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const PENDING_REVOKES: Family = Family {
    name: "rekey_pending_revokes",
    help: "1 when the new key is current and the old key is not yet revoked.",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const REVOKE_FAILURES: Family = Family {
    name: "rekey_revoke_failures",
    help: "Consecutive failed revokes of the rotation in flight.",
    kind: Kind::Gauge,
    labels: &["policy"],
};

pub const CONFIG_RELOADS: Family = Family {
    name: "rekey_config_reloads_total",
    help: "Config reloads by result (applied, refused).",
    kind: Kind::Counter,
    labels: &["result"],
};

pub const NOTIFICATIONS: Family = Family {
    name: "rekey_notifications_total",
    help: "Webhook notifications by notifier and result (sent, failed, dropped).",
    kind: Kind::Counter,
    labels: &["notifier", "result"],
};

pub const AUDIT_WRITE_FAILURES: Family = Family {
    name: "rekey_audit_write_failures_total",
    help: "Audit records that could not be written.",
    kind: Kind::Counter,
    labels: &[],
};

pub const SCHEDULER_TICK: Family = Family {
    name: "rekey_scheduler_last_tick_timestamp_seconds",
    help: "When the daemon's scheduling loop last ran a pass (Unix time).",
    kind: Kind::Gauge,
    labels: &[],
};

pub const BUILD_INFO: Family = Family {
    name: "rekey_build_info",
    help: "Always 1; the version label says which rekey is running.",
    kind: Kind::Gauge,
    labels: &["version"],
};

pub const JOURNAL_CORRUPT: Family = Family {
    name: "rekey_journal_corrupt",
    help: "1 while the policy's journal cannot be read (the policy is not rotated until it is repaired).",
    kind: Kind::Gauge,
    labels: &["policy"],
};

/// Every family, in exposition order.
pub const ALL: [&Family; 20] = [
    &ROTATIONS,
    &STEP_DURATION,
    &VERIFY_ATTEMPTS,
    &PROVIDER_REQUESTS,
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
    &CONFIG_RELOADS,
    &NOTIFICATIONS,
    &AUDIT_WRITE_FAILURES,
    &SCHEDULER_TICK,
    &BUILD_INFO,
];

/// The families whose series belong to one policy (dropped by `forget_policy`).
pub const PER_POLICY: [&Family; 13] = [
    &ROTATIONS,
    &STEP_DURATION,
    &VERIFY_ATTEMPTS,
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
];
