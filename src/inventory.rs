//! `rekey audit`'s inventory: every key at every configured provider entry,
//! classified against the journals (DESIGN.md "Audit and usage guard"),
//! one class per key by precedence, and each policy as ok, overdue or
//! missing. Key ids and redacted labels only, never key material.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::policy::Policy;
use crate::providers::KeyInfo;
use crate::state::{PolicyState, Step};

/// A key the provider expires this soon is `expiring`.
pub const EXPIRING_WITHIN: Duration = Duration::from_secs(7 * 86_400);

/// A key's class, in precedence order (the first that applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    /// A policy's current key, as its journal records it.
    Current,
    /// A key of a rotation in flight that is not current: an old key
    /// waiting for its revoke, or a new key not yet promoted.
    InGrace,
    /// Named by a policy's key-name template, with a rotation id that no
    /// journal knows: left by a crash or a lost journal.
    Orphan,
    Disabled,
    /// Its limit is spent (`limit_remaining` at or below 0).
    OverLimit,
    /// The provider expires it within [`EXPIRING_WITHIN`].
    Expiring,
    /// No use for `--idle` (last use, or creation when never used).
    Idle,
    /// Anything else: made by someone other than rekey.
    Unmanaged,
}

impl KeyClass {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyClass::Current => "current",
            KeyClass::InGrace => "in_grace",
            KeyClass::Orphan => "orphan",
            KeyClass::Disabled => "disabled",
            KeyClass::OverLimit => "over_limit",
            KeyClass::Expiring => "expiring",
            KeyClass::Idle => "idle",
            KeyClass::Unmanaged => "unmanaged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyClass {
    Ok,
    /// The current key is older than `max_age`.
    Overdue,
    /// The journal's current key is not at the provider.
    Missing,
}

impl PolicyClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyClass::Ok => "ok",
            PolicyClass::Overdue => "overdue",
            PolicyClass::Missing => "missing",
        }
    }
}

/// One key as `audit --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditedKey {
    pub provider: String,
    pub key_id: String,
    pub label: String,
    pub name: String,
    pub class: KeyClass,
    pub policy: Option<String>,
    pub rotation_id: Option<String>,
}

/// What the journals say about keys.
#[derive(Debug, Default)]
pub struct Journals {
    /// Key id → the policy whose current key it is.
    current: HashMap<String, String>,
    /// Redacted label → the policy whose current key it is, for current
    /// keys recorded without an id (adopted, never found by id).
    current_labels: HashMap<String, String>,
    /// Key id → the policy whose rotation in flight holds it.
    in_flight: HashMap<String, String>,
    /// Every rotation id a journal knows (in flight or in its history).
    rotations: BTreeSet<String>,
}

impl Journals {
    pub fn add(&mut self, state: &PolicyState) {
        let policy = state.policy.to_string();
        match &state.current {
            Some(key) => match &key.id {
                Some(id) => self.current.insert(id.clone(), policy.clone()),
                None => self
                    .current_labels
                    .insert(key.label.clone(), policy.clone()),
            },
            None => None,
        };
        if let Some(rotation) = &state.in_flight {
            self.rotations.insert(rotation.id.to_string());
            let pending = match rotation.step {
                Step::Promoted => rotation.old_key.as_ref(),
                _ => rotation.new_key.as_ref(),
            };
            if let Some(id) = pending.and_then(|k| k.id.clone()) {
                self.in_flight.insert(id, policy.clone());
            }
        }
        for entry in &state.history {
            self.rotations.insert(entry.rotation_id.to_string());
        }
    }

    pub fn knows_rotation(&self, rotation: &str) -> bool {
        self.rotations.contains(rotation)
    }
}

/// Classifies one key of provider entry `provider`, seen at `now`.
pub fn classify(
    provider: &str,
    key: &KeyInfo,
    policies: &[&Policy],
    journals: &Journals,
    idle: Option<Duration>,
    now: DateTime<Utc>,
) -> AuditedKey {
    let made_by = policies
        .iter()
        .find_map(|p| rotation_in_name(&p.key.name, p.name.as_str(), &key.name).map(|r| (p, r)));
    let (mut policy, rotation_id) = match made_by {
        Some((p, rotation)) => (Some(p.name.to_string()), Some(rotation)),
        None => (None, None),
    };
    let by_label = (!key.label.is_empty())
        .then(|| journals.current_labels.get(&key.label))
        .flatten();
    let class = if let Some(owner) = journals.current.get(&key.id).or(by_label) {
        policy = Some(owner.clone());
        KeyClass::Current
    } else if let Some(owner) = journals.in_flight.get(&key.id) {
        policy = Some(owner.clone());
        KeyClass::InGrace
    } else if rotation_id
        .as_ref()
        .is_some_and(|r| !journals.rotations.contains(r))
    {
        KeyClass::Orphan
    } else if key.disabled {
        KeyClass::Disabled
    } else if key.limit_remaining.is_some_and(|left| left <= 0.0) {
        KeyClass::OverLimit
    } else if key
        .expires_at
        .is_some_and(|at| at <= crate::clock::later(now, EXPIRING_WITHIN))
    {
        KeyClass::Expiring
    } else if idle.is_some_and(|idle| is_idle(key, idle, now)) {
        KeyClass::Idle
    } else {
        KeyClass::Unmanaged
    };
    AuditedKey {
        provider: provider.to_string(),
        key_id: key.id.clone(),
        label: key.label.clone(),
        name: key.name.clone(),
        class,
        policy,
        rotation_id,
    }
}

/// Unused for `idle`: its last use (or, never used, its creation) is older.
/// A key whose provider gives no last-use time is never called idle.
fn is_idle(key: &KeyInfo, idle: Duration, now: DateTime<Utc>) -> bool {
    let Some(usage) = key.usage.as_ref().filter(|u| u.signal.has_last_use()) else {
        return false;
    };
    let since = usage.last_used_at.or(key.created_at);
    since.is_some_and(|at| crate::clock::later(at, idle) <= now)
}

/// The rotation id in `name` when it is `template` rendered for `policy`
/// (`{date}` as any eight digits, `{rotation}` as a UUID, which rekey's
/// rotation ids are).
pub fn rotation_in_name(template: &str, policy: &str, name: &str) -> Option<String> {
    let pattern = template.replace("{policy}", policy);
    let (before, after) = pattern.split_once("{rotation}")?;
    for (start, _) in name.char_indices() {
        let Some(candidate) = name.get(start..start + 36) else {
            continue;
        };
        if uuid::Uuid::parse_str(candidate).is_err() || candidate.len() != 36 {
            continue;
        }
        let (head, tail) = (&name[..start], &name[start + 36..]);
        if with_dates(before, head) && with_dates(after, tail) {
            return Some(candidate.to_string());
        }
    }
    None
}

/// Whether `text` is `pattern` with each `{date}` standing for eight digits.
fn with_dates(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split("{date}");
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for piece in pieces {
        let digits = rest.get(..8);
        if !digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) {
            return false;
        }
        match rest[8..].strip_prefix(piece) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A policy's class, given the keys its provider listed (`None`: the
/// listing failed, so missing cannot be told).
pub fn policy_class(
    policy: &Policy,
    state: &PolicyState,
    listed: Option<&[KeyInfo]>,
    now: DateTime<Utc>,
) -> PolicyClass {
    let Some(current) = &state.current else {
        return PolicyClass::Ok;
    };
    let gone = match (&current.id, listed) {
        (Some(id), Some(keys)) => !keys.iter().any(|k| &k.id == id),
        _ => false,
    };
    if gone {
        return PolicyClass::Missing;
    }
    let overdue = policy
        .max_age
        .is_some_and(|age| crate::clock::later(current.created_at, age) < now);
    if overdue {
        PolicyClass::Overdue
    } else {
        PolicyClass::Ok
    }
}

/// Counts per class, for the summary.
pub fn summary(keys: &[AuditedKey], policies: &[(String, PolicyClass)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for key in keys {
        *out.entry(key.class.as_str().to_string()).or_insert(0) += 1;
    }
    for (_, class) in policies {
        if *class != PolicyClass::Ok {
            *out.entry(class.as_str().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
