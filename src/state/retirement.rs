//! The journal's record of a policy-set member being retired
//! (`on_remove = "revoke"`): written before anything is revoked, so a
//! daemon that stops mid-way finishes the retirement when it starts again,
//! with only what the journal holds (the member is no longer configured).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{LeaseKey, ProviderName};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// When the reload that removed the member began retiring it.
    pub since: DateTime<Utc>,
    /// The `[providers.<name>]` entry the member's keys live at.
    pub provider: ProviderName,
    /// `revoke.mode` as written: `delete`, `disable` or `archive`.
    pub mode: String,
    /// The member's secret (its lease) and the lock name older versions used.
    pub lease: LeaseKey,
    pub legacy_lock: String,
    /// The set's name as written.
    pub set: String,
    /// When the member's last key was revoked; `None` while it is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
}
