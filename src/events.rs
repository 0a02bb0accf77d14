//! What happened, as plain data: every state change of a rotation becomes an
//! [`Event`] (with its [`EventStep`], [`EventOutcome`] and [`KeyRef`]s).
//! This module owns only the types; the observer module hands events to the
//! audit log, the metrics and the notifiers, which all depend on these types
//! and never on each other's callers. Events carry key ids and redacted
//! labels only, never key material.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::names::{PolicyName, ProviderName, RotationId};
use crate::state::KeyRecord;

/// One state change of one policy's key.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub time: DateTime<Utc>,
    pub policy: PolicyName,
    /// The `[[policy_set]]` the policy is a member of (its name as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_set: Option<String>,
    /// The `[providers.<name>]` entry.
    pub provider: ProviderName,
    pub rotation_id: Option<RotationId>,
    pub step: EventStep,
    pub outcome: EventOutcome,
    /// What started the rotation: schedule, overdue, manual, api, reload, first_key, placed.
    pub trigger: Option<&'static str>,
    pub new_key: Option<KeyRef>,
    pub old_key: Option<KeyRef>,
    pub error_kind: Option<&'static str>,
    pub error: Option<String>,
    /// Consecutive failed attempts of this policy so far (a revoke failing
    /// again and again alerts once this passes a threshold).
    pub failures: u32,
    /// How long the step took (for the step-duration histogram).
    #[serde(skip)]
    pub duration: Option<Duration>,
}

/// A key as events name it: provider id and redacted label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRef {
    pub id: Option<String>,
    pub label: String,
}

impl From<&KeyRecord> for KeyRef {
    fn from(record: &KeyRecord) -> Self {
        KeyRef {
            id: record.id.clone(),
            label: record.label.clone(),
        }
    }
}

/// The protocol step an event belongs to (bounded: a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStep {
    Begin,
    Create,
    /// Assisted rotation: a placed pending key was taken up.
    Claim,
    Stage,
    Verify,
    Promote,
    Revoke,
    Rollback,
    /// The store's current key was adopted (first run, or replaced by hand).
    Adopt,
    /// Assisted rotation is due but nobody has placed a new key yet.
    AwaitKey,
    /// A policy-set member removed with `on_remove = "revoke"`: its current
    /// key is revoked (the named exception to "never revoke the current key").
    Retire,
    /// An `on_promote` hook ran (ok) or failed.
    Hook,
    /// `revoke.wait_idle`: the old key's use was read (idle: ok; still in
    /// use: waiting; `error_kind` `old_key_busy` or `revoked_busy` past `max_wait`).
    WaitIdle,
}

impl EventStep {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStep::Begin => "begin",
            EventStep::Create => "create",
            EventStep::Claim => "claim",
            EventStep::Stage => "stage",
            EventStep::Verify => "verify",
            EventStep::Promote => "promote",
            EventStep::Revoke => "revoke",
            EventStep::Rollback => "rollback",
            EventStep::Adopt => "adopt",
            EventStep::AwaitKey => "await_key",
            EventStep::Retire => "retire",
            EventStep::Hook => "hook",
            EventStep::WaitIdle => "wait_idle",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// The step is done and recorded.
    Ok,
    /// The step failed; the rotation is retried later (journal unchanged or backing off).
    Failed,
    /// The whole rotation finished: the old key is revoked (step `revoke`).
    Rotated,
    /// The whole rotation was undone: old key current, new key gone (step `rollback`).
    RolledBack,
    /// Nothing could be done yet (step `await_key`).
    Waiting,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Ok => "ok",
            EventOutcome::Failed => "failed",
            EventOutcome::Rotated => "rotated",
            EventOutcome::RolledBack => "rolled_back",
            EventOutcome::Waiting => "waiting",
        }
    }
}

impl Event {
    pub fn new(
        policy: &PolicyName,
        provider: &ProviderName,
        step: EventStep,
        outcome: EventOutcome,
    ) -> Self {
        Event {
            time: Utc::now(),
            policy: policy.clone(),
            policy_set: None,
            provider: provider.clone(),
            rotation_id: None,
            step,
            outcome,
            trigger: None,
            new_key: None,
            old_key: None,
            error_kind: None,
            error: None,
            failures: 0,
            duration: None,
        }
    }
}
