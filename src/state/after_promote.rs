//! The journal's record of what a promoted rotation waits for before it
//! revokes the old key: its `on_promote` hooks (how many succeeded, in
//! order, so a resume runs only the rest) and, with `revoke.wait_idle`,
//! the old key's use as last read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterPromote {
    /// `on_promote` hooks done, in order: the next to run is this index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hooks_done: u32,
    /// The `on_promote` list `hooks_done` counts in (a reload may change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks_fingerprint: Option<u64>,
    /// The leaked-key path (`--grace 0`): revoked at once, hooks run after.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaked: bool,
    /// Since when the next hook has been failing (`None`: it has not failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_failing_since: Option<DateTime<Utc>>,
    /// After the grace: the old key is watched until it is idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleWatch>,
}

impl super::PolicyState {
    /// The format this journal is written in: 2 while a promoted rotation
    /// waits for hooks or an idle old key (a rekey before format 2 would
    /// revoke without waiting, and drop the record on its next write), else
    /// 1, which every rekey reads.
    pub fn format(&self) -> u32 {
        let waits = (self.in_flight.as_ref()).is_some_and(|r| !r.after_promote.is_empty());
        if waits { 2 } else { 1 }
    }
}

impl super::Rotation {
    /// What this rotation waits for before it revokes its old key besides
    /// the grace — an old key still in use, or `on_promote` hooks (of
    /// `hooks` in all) not yet done — as `status` and a refused `rotate`
    /// say it. `None` when it is not promoted or waits for nothing more.
    pub fn waiting_for(&self, hooks: usize) -> Option<String> {
        let promoted = self.step == super::Step::Promoted && self.rollback.is_none();
        let after = &self.after_promote;
        if !promoted {
            return None;
        }
        if let Some(watch) = &after.idle {
            return Some(format!("old key still in use: {}", watch.why));
        }
        let done = after.hooks_done as usize;
        (done < hooks).then(|| match after.hook_failing_since {
            Some(since) => format!(
                "on_promote hooks: {done} of {hooks} done, failing since {}",
                crate::clock::rfc3339(since)
            ),
            None => format!("on_promote hooks: {done} of {hooks} done"),
        })
    }
}

impl AfterPromote {
    pub fn is_empty(&self) -> bool {
        *self == AfterPromote::default()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The old key's use as last read (`revoke.wait_idle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleWatch {
    /// When watching began (the first read after the grace).
    pub since: DateTime<Utc>,
    /// When its use is read next.
    pub next_check: DateTime<Utc>,
    /// Spend-only providers: the key's total spend (usage + BYOK) at
    /// `spend_at`; idle once a read `wait_idle` later finds it unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_at: Option<DateTime<Utc>>,
    /// Last use the provider reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Why the key counts as in use, as status shows it.
    pub why: String,
    /// Past `max_wait` with `on_busy = "keep"`: `old_key_busy` alerts so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy_alerts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted_at: Option<DateTime<Utc>>,
}

impl IdleWatch {
    /// A watch begun at `now`, with nothing read yet.
    pub fn new(now: DateTime<Utc>) -> Self {
        IdleWatch {
            since: now,
            next_check: now,
            spend: None,
            spend_at: None,
            last_used_at: None,
            why: String::new(),
            busy_alerts: 0,
            alerted_at: None,
        }
    }
}
