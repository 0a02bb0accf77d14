//! The `StateStore` seam: the per-policy journal (no key material, ever) and
//! the per-secret lease that keeps two rotations of one secret apart.

use std::time::Duration;

use async_trait::async_trait;

use crate::names::{LeaseKey, PolicyName, RotationId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod after_promote;
pub mod codec;
pub mod dynamodb;
pub mod file;
mod retirement;

pub use after_promote::{AfterPromote, IdleWatch};
pub use retirement::Retirement;

/// How many finished rotations a policy's journal keeps.
pub const HISTORY_LEN: usize = 20;

/// The newest journal format this rekey reads (and writes when needed:
/// [`PolicyState::format`]). A journal without a `format` field is format 1.
/// Bump it when a journal an older rekey would misread is written.
pub const JOURNAL_FORMAT: u32 = 2;

/// Everything rekey remembers about one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    pub policy: PolicyName,
    /// The key rekey believes is current in the store.
    pub current: Option<KeyRecord>,
    /// A rotation that has begun and not finished (or rolled back).
    pub in_flight: Option<Rotation>,
    /// Consecutive failed rotations (reset on success).
    #[serde(default)]
    pub failures: u32,
    /// No new rotation before this instant (failure backoff).
    pub retry_not_before: Option<DateTime<Utc>>,
    pub last_result: Option<Outcome>,
    /// Newest last; at most [`HISTORY_LEN`].
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Assisted rotation: since when the policy has been due with no new
    /// key placed (cleared once a placed key is taken up or it is not due).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_key_since: Option<DateTime<Utc>>,
    /// A removed policy-set member whose keys are being (or were) revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<Retirement>,
}

impl PolicyState {
    pub fn new(policy: &PolicyName) -> Self {
        Self {
            policy: policy.clone(),
            current: None,
            in_flight: None,
            failures: 0,
            retry_not_before: None,
            last_result: None,
            history: Vec::new(),
            awaiting_key_since: None,
            retirement: None,
        }
    }

    pub fn push_history(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        let excess = self.history.len().saturating_sub(HISTORY_LEN);
        self.history.drain(..excess);
    }
}

/// A key as the journal knows it: an id and a redacted label, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Provider id (`hash` at OpenRouter); `None` for an adopted key that
    /// could not be found at the provider (it will not be revoked).
    pub id: Option<String>,
    pub label: String,
    /// When the key was created (or adopted, if the provider does not say).
    pub created_at: DateTime<Utc>,
    /// Created by someone else and taken over by rekey.
    #[serde(default)]
    pub adopted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// No key in the store yet.
    FirstKey,
    /// The current key is older than `max_age`.
    Overdue,
    Schedule,
    /// `rekey rotate` on the command line.
    Manual,
    /// `POST /v1/policies/{name}/rotate` on the admin API.
    Api,
    /// A config reload made the policy due (a new policy, a changed schedule).
    Reload,
    /// Assisted rotation: a person placed a new key as the pending value.
    Placed,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::FirstKey => "first_key",
            Trigger::Overdue => "overdue",
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Api => "api",
            Trigger::Reload => "reload",
            Trigger::Placed => "placed",
        }
    }
}

/// The last step whose effects are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Begun,
    Created,
    Staged,
    Verified,
    /// Promoted; waiting for `revoke_after`, then revoke.
    Promoted,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Begun => "begun",
            Step::Created => "created",
            Step::Staged => "staged",
            Step::Verified => "verified",
            Step::Promoted => "promoted",
        }
    }
}

/// The journal of one rotation in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    pub id: RotationId,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub step: Step,
    /// Grace for this rotation (policy default or `--grace`).
    #[serde(with = "humantime_serde_compat")]
    pub grace: Duration,
    /// The key being replaced (None on first key).
    pub old_key: Option<KeyRecord>,
    pub new_key: Option<KeyRecord>,
    pub version_id: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub revoke_after: Option<DateTime<Utc>>,
    /// Failed revoke attempts so far (the rotation stays in grace until it works).
    #[serde(default)]
    pub revoke_failures: u32,
    /// Set when the rotation is being undone (why); a restart finishes the rollback.
    #[serde(default)]
    pub rollback: Option<String>,
    /// Set while a key this rotation may have created is unaccounted for (a
    /// create answered ambiguously, or a crash hid its answer): the rotation
    /// stays in flight until a listing by its id has found every such key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_create: Option<UnconfirmedCreate>,
    /// How often the new key was staged again (the current value changed
    /// under it, or a restart lost what it was built from); names the token.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restages: u32,
    /// Promoted: the hooks done and the old key's use (what revoke waits for).
    #[serde(default, skip_serializing_if = "AfterPromote::is_empty")]
    pub after_promote: AfterPromote,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Rotation {
    /// The staging token (AWS `ClientRequestToken`) of the current staging:
    /// the rotation id, suffixed after a re-stage (AWS refuses a token reused
    /// with another value).
    pub fn stage_token(&self) -> String {
        match self.restages {
            0 => self.id.to_string(),
            n => format!("{}-{n}", self.id),
        }
    }

    /// Whether a store version id is one of this rotation's stagings.
    pub fn owns_version(&self, version_id: &str) -> bool {
        version_id
            .strip_prefix(self.id.as_str())
            .is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix('-')
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            })
    }
}

/// A create whose effect is unknown, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedCreate {
    pub since: DateTime<Utc>,
    /// Why the create's answer could not be trusted (never key material).
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Rotated,
    RolledBack,
    Failed,
}

impl OutcomeKind {
    /// As the journal and `status --json` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Rotated => "rotated",
            OutcomeKind::RolledBack => "rolled_back",
            OutcomeKind::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub rotation_id: RotationId,
    pub at: DateTime<Utc>,
    /// Error kind and message on failure (never key material).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub rotation_id: RotationId,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub kind: OutcomeKind,
    pub old_key: Option<KeyRecord>,
    pub new_key: Option<KeyRecord>,
    pub error: Option<String>,
}

/// A lease being let go of ([`Lease::release`]).
pub type Releasing<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Held while a rotation of one secret runs; dropping it releases the lease.
pub trait Lease: Send + Sync {
    /// The secret this lease is on.
    fn key(&self) -> &LeaseKey;
    /// Ok when the lease is sure to be held for `span` from now, so a side
    /// effect that may take that long (a provider or store call up to its
    /// timeout) may start. A lease that cannot promise it refuses with
    /// [`StateError::LeaseLost`], and the rotation stops.
    fn ensure(&self, span: Duration) -> Result<(), StateError>;
    /// What a journal write under this lease is conditioned on; `None` for
    /// a lease that cannot be lost while its process lives (a `flock`).
    fn fence(&self) -> Option<&Fence>;
    /// The lease length of a lease that expires unless renewed (renewed
    /// every third of it); `None` for one held while its process lives.
    fn period(&self) -> Option<Duration> {
        None
    }
    /// Lets go of the lease now and returns once another holder can take
    /// it (dropping it also lets go, but maybe later, on a task). Idempotent.
    fn release(&self) -> Releasing<'_> {
        Box::pin(std::future::ready(()))
    }
}

/// The fencing token of a lease that can expire: the store refuses a
/// journal write unless the lease item still carries exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// Which replica holds it (host, process, a random part).
    pub owner: String,
    /// Incremented on every acquisition, plus a random nonce.
    pub token: String,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// The policy's state; a fresh one when none was saved yet.
    async fn load(&self, policy: &PolicyName) -> Result<PolicyState, StateError>;
    /// Durably replaces the policy's state (atomic: old or new, never torn),
    /// only while `lease` is still held: a write under a lost lease is
    /// refused with [`StateError::LeaseLost`] and changes nothing.
    async fn save(&self, state: &PolicyState, lease: &dyn Lease) -> Result<(), StateError>;
    /// Takes the lease on a secret without waiting; `Ok(None)` if another
    /// holder (this or another process) has it. `legacy_name` is the lock
    /// name older versions used for the same secret (the file store takes
    /// both, so an older daemon on the same directory stays excluded).
    async fn try_lease(
        &self,
        key: &LeaseKey,
        legacy_name: &str,
    ) -> Result<Option<Box<dyn Lease>>, StateError>;
    /// Every policy with a journal, in name order.
    async fn policies(&self) -> Result<Vec<PolicyName>, StateError>;
    /// The policies whose journal has a rotation in flight, in name order
    /// (the scan that resumes a crashed replica's rotation).
    async fn in_flight(&self) -> Result<Vec<PolicyName>, StateError>;
    /// Leases held right now (by anyone), as the operator should read them.
    async fn held_leases(&self) -> Result<Vec<String>, StateError>;
    /// Writes a journal moved from another state store, unfenced, only if
    /// this store has none for the policy yet: `Ok(false)` when one exists
    /// (never overwritten).
    async fn import(&self, state: &PolicyState) -> Result<bool, StateError>;
    /// How long a lease lasts unless renewed, when leases can expire (a
    /// shared table): each replica looks for rotations left in flight by a
    /// crashed one this often. `None` for a `flock`, which dies with its process.
    fn lease_period(&self) -> Option<Duration> {
        None
    }
    /// Why the state cannot be used right now (the table does not answer),
    /// for `/readyz`; `None` while it works.
    fn unavailable(&self) -> Option<String> {
        None
    }
    /// Leases whose holder let them expire without releasing them (a
    /// crashed or cut-off replica), found with one cheap query, not a read
    /// per policy: the daemon looks once per lease period and resumes the
    /// rotations those leases guarded. Empty where leases cannot expire.
    async fn expired_leases(&self) -> Result<Vec<LeaseKey>, StateError> {
        Ok(Vec::new())
    }
    /// Marks this process alive in a shared state and answers how many
    /// replicas are (itself included, at least 1): each takes its share of
    /// a provider's `rate_limit`. `None` where the state is not shared.
    /// Called once per lease period.
    async fn heartbeat(&self) -> Result<Option<usize>, StateError> {
        Ok(None)
    }
    /// Where the state lives, for messages (`file:/var/lib/rekey`).
    fn describe(&self) -> String;
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state {path}: {message}")]
    Io { path: String, message: String },
    #[error("state {path}: corrupt journal: {message}")]
    Corrupt { path: String, message: String },
    /// Not corruption: a newer rekey wrote it. Never rewritten nor moved.
    #[error(
        "journal {path} has format {format}, written by a newer rekey; this rekey reads formats up to {known} — upgrade rekey or restore the journal backup"
    )]
    NewerFormat {
        path: String,
        format: u64,
        known: u32,
    },
    /// This process no longer holds (or can no longer promise to hold) the
    /// secret's lease: another replica may have taken it. Nothing was written.
    #[error("lease on {key} lost: {why}; this rotation stops here and the lease holder resumes it")]
    LeaseLost { key: String, why: String },
}

impl StateError {
    pub fn kind(&self) -> &'static str {
        match self {
            StateError::Io { .. } => "io",
            StateError::Corrupt { .. } => "corrupt",
            StateError::NewerFormat { .. } => "newer_format",
            StateError::LeaseLost { .. } => "lease_lost",
        }
    }
}

/// Durations in the journal as human-readable strings ("1h 30m").
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}
