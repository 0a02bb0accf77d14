//! What happened, told once: every state change of a rotation becomes an
//! [`Event`], which the [`Observer`] hands to the audit log (a durable record),
//! the metrics (counters and histograms) and the notifiers (webhooks).
//! Events carry key ids and redacted labels only, never key material.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::BuildError;
use crate::audit::AuditLog;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::Policy;
use crate::state::{KeyRecord, PolicyState};

/// One state change of one policy's key.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub time: DateTime<Utc>,
    pub policy: String,
    /// The `[providers.<name>]` entry.
    pub provider: String,
    pub rotation_id: Option<String>,
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
    pub fn new(policy: &str, provider: &str, step: EventStep, outcome: EventOutcome) -> Self {
        Event {
            time: Utc::now(),
            policy: policy.to_string(),
            provider: provider.to_string(),
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

/// Fans events out. Concrete on purpose: the sinks are ours, not seams.
pub struct Observer {
    pub metrics: Arc<Metrics>,
    audit: Option<AuditLog>,
    notifier: Option<Notifier>,
}

impl Observer {
    /// Metrics only: for commands that do not run the daemon's sinks.
    pub fn quiet() -> Self {
        Observer {
            metrics: Arc::new(Metrics::new()),
            audit: None,
            notifier: None,
        }
    }

    /// Opens the audit log and resolves the webhook URLs; starts the
    /// notification task (needs a Tokio runtime).
    pub async fn build(config: &Config) -> Result<Self, BuildError> {
        let metrics = Arc::new(Metrics::new());
        let audit = match &config.daemon.audit_log {
            Some(path) => {
                let counted = metrics.clone();
                let log = AuditLog::open(path).map_err(BuildError::Observer)?;
                Some(log.on_sync_failure(move || counted.audit_write_failure()))
            }
            None => None,
        };
        let notifier = Notifier::build(config, metrics.clone())
            .await
            .map_err(BuildError::Observer)?;
        Ok(Observer {
            metrics,
            audit,
            notifier: Some(notifier),
        })
    }

    /// Records one state change: in the audit log first (written here, its
    /// fsync on the blocking pool), then in metrics, then queued for the
    /// notifiers (never blocking).
    pub fn emit(&self, event: Event) {
        if let Some(audit) = &self.audit {
            let written = audit.append(&event);
            self.audit_written(audit, written);
        }
        self.metrics.record(&event);
        if let Some(notifier) = &self.notifier {
            notifier.notify(&event);
        }
    }

    /// A failed audit write is logged and counted; the rotation goes on (its
    /// journal is the source of truth, the audit log a copy for people).
    fn audit_written(&self, audit: &AuditLog, written: std::io::Result<()>) {
        if let Err(e) = written {
            self.metrics.audit_write_failure();
            tracing::error!(path = %audit.path().display(), error = %e, "cannot write the audit log");
        }
    }

    /// One verification attempt with the new key (not a state change: metrics only).
    pub fn verify_attempt(&self, policy: &str, provider: &str, ok: bool) {
        self.metrics.verify_attempt(policy, provider, ok);
    }

    /// The daemon's view of one policy after each pass and each run: feeds
    /// the per-policy gauges (key age, next due, last success, in progress,
    /// pending revoke) and fires the `overdue` alert once per key past `max_age`.
    pub fn policy_snapshot(
        &self,
        policy: &Policy,
        state: &PolicyState,
        next_due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        self.metrics.policy_snapshot(policy, state, next_due, now);
        if let Some(notifier) = &self.notifier {
            notifier.journal_health(policy, None, now);
        }
        let (Some(notifier), Some(max_age), Some(key)) =
            (&self.notifier, policy.max_age, &state.current)
        else {
            return;
        };
        if now - key.created_at
            >= chrono::TimeDelta::from_std(max_age).unwrap_or(chrono::TimeDelta::MAX)
        {
            notifier.overdue(policy, key, max_age, now);
        }
    }

    /// The policy's journal cannot be read: `rekey_journal_corrupt` = 1 and
    /// the `journal_corrupt` alert (once until it reads again).
    pub fn journal_corrupt(&self, policy: &Policy, error: &str, now: DateTime<Utc>) {
        self.metrics.journal_corrupt(&policy.name);
        if let Some(notifier) = &self.notifier {
            notifier.journal_health(policy, Some(error), now);
        }
    }

    /// A reload was applied: notifiers and policy→notifier routes follow the
    /// new config; metrics (and their history) are kept.
    pub async fn apply_config(&self, config: &Config) -> Result<(), String> {
        match &self.notifier {
            Some(notifier) => notifier.apply(config).await,
            None => Ok(()),
        }
    }

    /// A policy removed by a reload: its per-policy series go away.
    pub fn forget_policy(&self, policy: &str) {
        self.metrics.forget_policy(policy);
        if let Some(notifier) = &self.notifier {
            notifier.forget_policy(policy);
        }
    }

    /// A config reload was applied (`Ok`) or refused (`Err(reason)`): counted,
    /// and a refusal is audited and alerted (`config_rejected`).
    pub fn config_reload(&self, result: Result<(), &str>) {
        self.metrics.config_reload(result.is_ok());
        let Err(reason) = result else {
            return;
        };
        let now = Utc::now();
        if let Some(audit) = &self.audit {
            let written = audit.config_refused(reason, now);
            self.audit_written(audit, written);
        }
        if let Some(notifier) = &self.notifier {
            notifier.config_rejected(reason, now);
        }
    }

    /// Before the process exits: waits up to `deadline` for queued alerts to
    /// be delivered (or given up on). `true` when none is left.
    pub async fn flush(&self, deadline: Duration) -> bool {
        match &self.notifier {
            Some(notifier) => notifier.flush(deadline).await,
            None => true,
        }
    }
}
