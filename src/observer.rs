//! The fan-out of [`Event`]s: the [`Observer`] hands each state change to
//! the audit log (a durable record), the metrics (counters and histograms)
//! and the notifiers (webhooks), and feeds them the per-policy snapshots,
//! reload results and journal health the daemon reports. Building it (the
//! audit log opened, webhook URLs resolved) fails with [`ObserverError`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::events::Event;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::Policy;
use crate::state::PolicyState;

/// A sink of the observer could not be set up; the message names the file
/// or the `notify.<name>.url` and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserverError {
    /// `daemon.audit_log` cannot be opened.
    #[error("{0}")]
    Audit(String),
    /// A notifier cannot be built (its URL unreadable or invalid).
    #[error("{0}")]
    Notify(String),
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
    pub async fn build(config: &Config) -> Result<Self, ObserverError> {
        let metrics = Arc::new(Metrics::new());
        let audit = match &config.daemon.audit_log {
            Some(path) => {
                let counted = metrics.clone();
                let log = AuditLog::open(path).map_err(ObserverError::Audit)?;
                Some(log.on_sync_failure(move || counted.audit_write_failure()))
            }
            None => None,
        };
        let notifier = Notifier::build(config, metrics.clone())
            .await
            .map_err(ObserverError::Notify)?;
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
