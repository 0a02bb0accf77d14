//! `rekey status`: what the journal says about each policy — current key
//! (redacted label), its age, next due, last result, rotation in flight, and
//! whether an assisted policy is waiting for someone to place a new key.
//! Read from the journal only, so it answers while a provider is down.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::{Config, DynamoConfig, StateLocation};
use crate::policy::Policy;
use crate::rotation::{Decision, decide, next_due};
use crate::state::dynamodb::DynamoStateStore;
use crate::state::file::FileStateStore;
use crate::state::{Outcome, PolicyState, StateError, StateStore};

#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    pub policy: String,
    pub provider: String,
    pub secret: String,
    pub current_key_id: Option<String>,
    pub current_label: Option<String>,
    pub adopted: bool,
    pub key_age_seconds: Option<i64>,
    pub next_due: Option<DateTime<Utc>>,
    pub due_now: bool,
    /// Assisted rotation: due, and no new key placed as pending yet.
    pub waiting_for_key: bool,
    pub waiting_since: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub last_result: Option<Outcome>,
    pub in_flight: Option<InFlight>,
    /// Why the journal cannot be read; the row's other fields are then
    /// unknown (the policy is not rotated until the file is repaired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_corrupt: Option<String>,
    /// The journal was written by a newer rekey (not corrupt: upgrade this
    /// rekey or restore the backup); the row's other fields are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_newer_format: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InFlight {
    pub rotation_id: String,
    pub step: &'static str,
    pub started_at: DateTime<Utc>,
    pub revoke_after: Option<DateTime<Utc>>,
    /// Promoted, and what the revoke waits for besides the grace: hooks
    /// not yet succeeded, or an old key still in use (and why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The grace is over but the old key is still in use (`revoke.wait_idle`).
    pub old_key_busy: bool,
}

/// One row per policy, from `journal` (fresh states when there is none yet).
/// Shared by `rekey status` and the admin API's `GET /v1/status`. A journal
/// that cannot be read makes its own row say so, never the others fail.
pub async fn collect(
    policies: &[Policy],
    journal: Option<&dyn StateStore>,
    now: DateTime<Utc>,
) -> Result<Vec<PolicyStatus>, StateError> {
    let mut rows = Vec::with_capacity(policies.len());
    for policy in policies {
        let loaded = match journal {
            Some(store) => store.load(&policy.name).await,
            None => Ok(PolicyState::new(&policy.name)),
        };
        rows.push(match loaded {
            Ok(state) => of(policy, &state, now),
            Err(e) => unreadable(policy, &e),
        });
    }
    Ok(rows)
}

/// The row of a policy whose journal cannot be read.
fn unreadable(policy: &Policy, e: &StateError) -> PolicyStatus {
    let newer = matches!(e, StateError::NewerFormat { .. });
    PolicyStatus {
        policy: policy.name.to_string(),
        provider: policy.provider.to_string(),
        secret: format!("{}:{}", policy.target.store, policy.target.secret_id),
        current_key_id: None,
        current_label: None,
        adopted: false,
        key_age_seconds: None,
        next_due: None,
        due_now: false,
        waiting_for_key: false,
        waiting_since: None,
        consecutive_failures: 0,
        last_result: None,
        in_flight: None,
        journal_corrupt: (!newer).then(|| e.to_string()),
        journal_newer_format: newer.then(|| e.to_string()),
    }
}

pub fn of(policy: &Policy, state: &PolicyState, now: DateTime<Utc>) -> PolicyStatus {
    let current = state.current.as_ref();
    let due_now = matches!(
        decide(policy, state, now),
        Decision::Rotate(_) | Decision::Resume
    );
    let waiting_since = waiting_since(state).filter(|_| due_now);
    PolicyStatus {
        policy: policy.name.to_string(),
        provider: policy.provider.to_string(),
        secret: format!("{}:{}", policy.target.store, policy.target.secret_id),
        current_key_id: current.and_then(|c| c.id.clone()),
        current_label: current.map(|c| c.label.clone()),
        adopted: current.is_some_and(|c| c.adopted),
        key_age_seconds: current.map(|c| (now - c.created_at).num_seconds()),
        next_due: next_due(policy, state),
        due_now,
        waiting_for_key: waiting_since.is_some(),
        waiting_since,
        consecutive_failures: state.failures,
        last_result: state.last_result.clone(),
        in_flight: state.in_flight.as_ref().map(|r| InFlight {
            rotation_id: r.id.to_string(),
            step: r.step.as_str(),
            started_at: r.started_at,
            revoke_after: r.revoke_after,
            waiting: r.waiting_for(policy.on_promote.len()),
            old_key_busy: r.after_promote.idle.is_some(),
        }),
        journal_corrupt: None,
        journal_newer_format: None,
    }
}

/// Recorded by the last run that found the policy due with nothing placed.
fn waiting_since(state: &PolicyState) -> Option<DateTime<Utc>> {
    state
        .awaiting_key_since
        .filter(|_| state.in_flight.is_none())
}

/// A human table, one line per policy, then why each unreadable journal
/// cannot be read (too long for a column, and the operator's next step).
pub fn render(rows: &[PolicyStatus]) -> String {
    let mut out = table(rows);
    out.push_str(&corrupt_notes(rows));
    out
}

/// One line per policy whose journal cannot be read, after a blank line.
fn corrupt_notes(rows: &[PolicyStatus]) -> String {
    let notes: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            if let Some(why) = &r.journal_newer_format {
                return Some(format!("{}: not rotated: {why}\n", r.policy));
            }
            r.journal_corrupt.as_ref().map(|why| {
                format!(
                    "{}: not rotated until its journal is repaired or moved away: {why}\n",
                    r.policy
                )
            })
        })
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!("\n{}", notes.concat())
    }
}

fn table(rows: &[PolicyStatus]) -> String {
    let mut out = format!(
        "{:<24} {:<22} {:>9} {:<22} {:<12} {}\n",
        "POLICY", "CURRENT KEY", "AGE", "NEXT DUE", "LAST", "IN FLIGHT"
    );
    for r in rows {
        let due = match (r.due_now, r.next_due) {
            _ if r.waiting_for_key => "waiting for a new key".to_string(),
            (true, _) => "now".to_string(),
            (false, Some(at)) => rfc3339(at),
            (false, None) => "-".to_string(),
        };
        let last = match (&r.journal_corrupt, &r.journal_newer_format) {
            (_, Some(_)) => Some("newer journal".to_string()),
            (Some(_), _) => Some("journal corrupt".to_string()),
            _ => (r.last_result.as_ref()).map(|o| o.kind.as_str().to_string()),
        };
        let flight = r.in_flight.as_ref().map(|f| {
            let line = match f.revoke_after {
                Some(at) => format!(
                    "{} ({}, revoke after {})",
                    f.rotation_id,
                    f.step,
                    rfc3339(at)
                ),
                None => format!("{} ({})", f.rotation_id, f.step),
            };
            match &f.waiting {
                Some(why) => format!("{line}; waiting: {why}"),
                None => line,
            }
        });
        out.push_str(&format!(
            "{:<24} {:<22} {:>9} {:<22} {:<12} {}\n",
            r.policy,
            r.current_label.as_deref().unwrap_or("(none)"),
            r.key_age_seconds
                .map(format_age)
                .unwrap_or_else(|| "-".into()),
            due,
            last.as_deref().unwrap_or("-"),
            flight.as_deref().unwrap_or("-"),
        ));
    }
    out
}

fn format_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The journal, if the state directory already exists (check and status
/// never create it). A DynamoDB state needs the network: see [`journal_to_read`].
pub(crate) fn existing_journal(config: &Config) -> Option<FileStateStore> {
    match &config.daemon.state {
        StateLocation::File(dir) => dir
            .join("policies")
            .is_dir()
            .then(|| FileStateStore::open(dir).ok())
            .flatten(),
        StateLocation::DynamoDb(_) => None,
    }
}

/// The journal to read for `status` and `check`, either backend, through
/// the [`StateStore`] trait: `None` when a state directory does not exist
/// yet. A DynamoDB table is opened without ever being created; a missing or
/// unreachable one is the error.
pub(crate) async fn journal_to_read(
    config: &Config,
) -> Result<Option<Arc<dyn StateStore>>, StateError> {
    match &config.daemon.state {
        StateLocation::File(_) => {
            Ok(existing_journal(config).map(|j| Arc::new(j) as Arc<dyn StateStore>))
        }
        StateLocation::DynamoDb(table) => {
            let table = DynamoConfig {
                create_table: false,
                ..table.clone()
            };
            Ok(Some(Arc::new(DynamoStateStore::open(&table).await?)))
        }
    }
}
