//! What a webhook says: which events need a human ([`classify`]), and the
//! two bodies — a generic JSON object and Slack's `{"text": ...}`. Alerts
//! carry key ids and redacted labels only, never key material.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::{NotifyEvent, NotifyFormat};
use crate::events::{Event, EventOutcome, EventStep, KeyRef};

/// A revoke failing this many times in a row alerts (`revoke_failing`);
/// fewer is ordinary provider flakiness the next pass retries.
pub const REVOKE_FAILING_AFTER: u32 = 3;

/// The alert a state change raises, if any.
pub fn classify(event: &Event) -> Option<NotifyEvent> {
    match (event.outcome, event.step) {
        (EventOutcome::Failed, EventStep::Hook) => Some(NotifyEvent::HookFailed),
        (_, EventStep::WaitIdle) => match event.error_kind {
            Some("revoked_busy") => Some(NotifyEvent::RevokedBusy),
            Some("old_key_busy") => Some(NotifyEvent::OldKeyBusy),
            _ => None,
        },
        (EventOutcome::Failed, EventStep::Revoke) => {
            (event.failures >= REVOKE_FAILING_AFTER).then_some(NotifyEvent::RevokeFailing)
        }
        (EventOutcome::Failed, _) => Some(NotifyEvent::Failure),
        (EventOutcome::RolledBack, _) => Some(NotifyEvent::Rollback),
        (EventOutcome::Rotated, _) => Some(NotifyEvent::Success),
        (EventOutcome::Ok | EventOutcome::Waiting, _) => None,
    }
}

/// The generic JSON body (`format = "json"`); `summary` is the one-line text.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub event: &'static str,
    pub summary: String,
    pub time: String,
    pub policy: Option<String>,
    pub provider: Option<String>,
    pub rotation_id: Option<String>,
    pub step: Option<&'static str>,
    pub outcome: Option<&'static str>,
    pub trigger: Option<&'static str>,
    pub new_key: Option<KeyRef>,
    pub old_key: Option<KeyRef>,
    pub error_kind: Option<&'static str>,
    pub error: Option<String>,
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_age_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl Alert {
    pub fn from_event(kind: NotifyEvent, event: &Event) -> Alert {
        let mut alert = Alert::bare(kind, event.time);
        alert.policy = Some(event.policy.to_string());
        alert.provider = Some(event.provider.to_string());
        alert.rotation_id = event.rotation_id.as_ref().map(ToString::to_string);
        alert.step = Some(event.step.as_str());
        alert.outcome = Some(event.outcome.as_str());
        alert.trigger = event.trigger;
        alert.new_key = event.new_key.clone();
        alert.old_key = event.old_key.clone();
        alert.error_kind = event.error_kind;
        alert.error = event.error.clone();
        alert.failures = event.failures;
        alert.summary = event_summary(kind, event);
        alert
    }

    /// The current key is older than the policy's `max_age`.
    pub fn overdue(
        policy: &str,
        provider: &str,
        key: KeyRef,
        age: Duration,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Alert {
        let mut alert = Alert::bare(NotifyEvent::Overdue, now);
        alert.summary = format!(
            "rekey: the key of policy {policy} ({}) is {} old, past its max_age of {}",
            key_text(&key),
            days(age),
            days(max_age),
        );
        alert.policy = Some(policy.to_string());
        alert.provider = Some(provider.to_string());
        alert.old_key = Some(key);
        alert.key_age_seconds = Some(age.as_secs());
        alert.max_age_seconds = Some(max_age.as_secs());
        alert
    }

    /// A policy's journal cannot be read: the policy is not rotated until a
    /// person repairs or moves the file (it may name keys in flight).
    pub fn journal_corrupt(policy: &str, provider: &str, error: &str, now: DateTime<Utc>) -> Alert {
        let mut alert = Alert::bare(NotifyEvent::JournalCorrupt, now);
        alert.summary = format!(
            "rekey: the journal of policy {policy} cannot be read; the policy is not rotated until it is repaired: {error}"
        );
        alert.policy = Some(policy.to_string());
        alert.provider = Some(provider.to_string());
        alert.step = Some("journal");
        alert.outcome = Some("corrupt");
        alert.error_kind = Some("journal_corrupt");
        alert.error = Some(error.to_string());
        alert
    }

    /// A reload was refused; the running config stays.
    pub fn config_rejected(reason: &str, now: DateTime<Utc>) -> Alert {
        let mut alert = Alert::bare(NotifyEvent::ConfigRejected, now);
        alert.summary = format!("rekey: config reload refused, the running config stays: {reason}");
        alert.step = Some("config_reload");
        alert.outcome = Some("refused");
        alert.error_kind = Some("config");
        alert.error = Some(reason.to_string());
        alert
    }

    fn bare(kind: NotifyEvent, time: DateTime<Utc>) -> Alert {
        Alert {
            event: kind.as_str(),
            summary: String::new(),
            time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
            policy: None,
            provider: None,
            rotation_id: None,
            step: None,
            outcome: None,
            trigger: None,
            new_key: None,
            old_key: None,
            error_kind: None,
            error: None,
            failures: 0,
            key_age_seconds: None,
            max_age_seconds: None,
        }
    }

    /// The request body in the notifier's format.
    pub fn body(&self, format: NotifyFormat) -> serde_json::Value {
        match format {
            // Serializing a struct of strings and numbers cannot fail.
            NotifyFormat::Json => serde_json::to_value(self).expect("alert serializes"),
            NotifyFormat::Slack => serde_json::json!({ "text": self.slack_text() }),
        }
    }

    fn slack_text(&self) -> String {
        let mut text = self.summary.clone();
        if let Some(id) = &self.rotation_id {
            text.push_str(&format!("\nrotation: {id}"));
        }
        if let Some(key) = &self.new_key {
            text.push_str(&format!("\nnew key: {}", key_text(key)));
        }
        if let Some(key) = &self.old_key {
            text.push_str(&format!("\nold key: {}", key_text(key)));
        }
        text
    }
}

fn event_summary(kind: NotifyEvent, event: &Event) -> String {
    let (policy, step) = (&event.policy, event.step.as_str());
    let cause = match (event.error_kind, &event.error) {
        (Some(kind), Some(message)) => format!(" ({kind}): {message}"),
        (Some(kind), None) => format!(" ({kind})"),
        _ => String::new(),
    };
    match kind {
        NotifyEvent::Failure => format!("rekey: rotation of {policy} failed at step {step}{cause}"),
        NotifyEvent::Rollback => {
            format!("rekey: rotation of {policy} rolled back, the old key stays current{cause}")
        }
        NotifyEvent::RevokeFailing => format!(
            "rekey: revoking the old key of {policy} failed {} times in a row{cause}",
            event.failures
        ),
        NotifyEvent::Success => format!("rekey: {policy} rotated, the old key is revoked"),
        NotifyEvent::HookFailed => format!(
            "rekey: an on_promote hook of {policy} failed; the old key is not revoked until it succeeds{cause}"
        ),
        NotifyEvent::RevokedBusy => format!(
            "rekey: the old key of {policy} was still in use after revoke.max_wait and was revoked anyway{cause}"
        ),
        NotifyEvent::OldKeyBusy => format!(
            "rekey: the old key of {policy} is still in use after revoke.max_wait; it is kept (on_busy = \"keep\") until it goes idle or `rekey rotate --now --grace 0`{cause}"
        ),
        NotifyEvent::Overdue | NotifyEvent::ConfigRejected | NotifyEvent::JournalCorrupt => {
            format!("rekey: {policy}: {step}")
        }
    }
}

fn key_text(key: &KeyRef) -> String {
    match &key.id {
        Some(id) => format!("{} id {id}", key.label),
        None => key.label.clone(),
    }
}

fn days(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 {
        format!("{:.1}d", secs as f64 / 86_400.0)
    } else {
        humantime::format_duration(Duration::from_secs(secs)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: EventStep, outcome: EventOutcome, failures: u32) -> Event {
        let mut e = Event::new(&"p".parse().unwrap(), &"or".into(), step, outcome);
        e.failures = failures;
        e
    }

    #[test]
    fn failures_rollbacks_and_successes_alert_but_ordinary_steps_do_not() {
        let cases = [
            (
                EventStep::Create,
                EventOutcome::Failed,
                1,
                Some(NotifyEvent::Failure),
            ),
            (
                EventStep::Promote,
                EventOutcome::Failed,
                1,
                Some(NotifyEvent::Failure),
            ),
            (
                EventStep::Rollback,
                EventOutcome::RolledBack,
                1,
                Some(NotifyEvent::Rollback),
            ),
            (
                EventStep::Revoke,
                EventOutcome::Rotated,
                0,
                Some(NotifyEvent::Success),
            ),
            (EventStep::Revoke, EventOutcome::Failed, 2, None),
            (
                EventStep::Revoke,
                EventOutcome::Failed,
                3,
                Some(NotifyEvent::RevokeFailing),
            ),
            (EventStep::Verify, EventOutcome::Ok, 0, None),
            (EventStep::AwaitKey, EventOutcome::Waiting, 0, None),
        ];
        for (step, outcome, failures, expected) in cases {
            let got = classify(&event(step, outcome, failures));
            assert_eq!(got, expected, "{step:?}/{outcome:?}/{failures}");
        }
    }

    #[test]
    fn the_slack_body_is_one_text_field_with_policy_step_and_error_kind() {
        let mut e = event(EventStep::Verify, EventOutcome::Failed, 1);
        e.error_kind = Some("key_rejected");
        e.error = Some("provider or: key rejected (HTTP 401)".into());
        let body = Alert::from_event(NotifyEvent::Failure, &e).body(NotifyFormat::Slack);
        let obj = body.as_object().unwrap();
        assert_eq!(obj.len(), 1);
        let text = obj["text"].as_str().unwrap();
        assert!(
            text.contains("rotation of p failed at step verify (key_rejected)"),
            "{text}"
        );
    }

    #[test]
    fn an_overdue_alert_names_the_key_and_both_ages() {
        let key = KeyRef {
            id: Some("h1".into()),
            label: "sk-or-v1-abc...def".into(),
        };
        let day = Duration::from_secs(86_400);
        let alert = Alert::overdue("p", "or", key, day * 40, day * 35, Utc::now());
        assert!(
            alert
                .summary
                .contains("40.0d old, past its max_age of 35.0d")
        );
        let body = alert.body(NotifyFormat::Json);
        assert_eq!(body["event"], "overdue");
        assert_eq!(body["old_key"]["id"], "h1");
        assert_eq!(body["max_age_seconds"], 35 * 86_400);
    }
}
