//! The rotation state machine. [`run_policy`] is the one entry point: under
//! the secret's lease it reconciles the journal with the store, decides, and
//! drives the steps of `steps.rs` (in protocol order), resuming or rolling
//! back what a crash left behind (`recover.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::Backoff;
use crate::names::RotationId;
use crate::observer::Observer;
use crate::policy::{Policy, RevokeMode};
use crate::providers::{Provider, ProviderError};
use crate::state::{KeyRecord, Lease, Rotation, StateError, StateStore, Step, Trigger};
use crate::stores::{SecretStore, StoreError};

mod adopt;
mod assisted;
pub mod decide;
mod plan;
mod recover;
mod request;
mod retry;
mod run;
mod settle;
mod steps;
mod verify;

pub use decide::{Decision, WaitReason, decide, failure_backoff, next_due};
pub use plan::{Plan, plan};

/// What a rotation needs from the outside world, for one policy.
#[derive(Clone)]
pub struct Ctx {
    pub provider: Arc<dyn Provider>,
    pub store: Arc<dyn SecretStore>,
    pub state: Arc<dyn StateStore>,
    pub clock: Arc<dyn Clock>,
    pub backoff: Backoff,
    /// How long an ambiguous create is swept for (`daemon.sweep_timeout`).
    pub sweep_timeout: Duration,
    /// Cancelled on shutdown: the rotation stops at the next step boundary.
    pub cancel: CancellationToken,
    /// Audit log, metrics and notifiers hear every state change.
    pub observer: Arc<Observer>,
    /// The longest one provider call may take (`request_timeout`), and one
    /// store call: a side effect starts only while the lease outlives it.
    pub provider_span: Duration,
    pub store_span: Duration,
    /// The secret's lease while a rotation holds it (`run_policy` sets it):
    /// a call is retried only while the lease still outlives the retry.
    pub lease: Option<Arc<dyn Lease>>,
    /// The client of `http` hooks (no redirects; each hook sets its timeout).
    pub hook_http: reqwest::Client,
    /// How often a busy old key is read again at most (`daemon.usage_poll`).
    pub usage_poll: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Do whatever is due (daemon, `run --once`).
    Due,
    /// Like `Due`, for a policy a config reload just added or changed: a
    /// rotation it begins is recorded with trigger `reload`.
    DueAfterReload,
    /// Rotate now (`rotate --now`, `rotate` when nothing is due, the admin
    /// API), with an optional grace override.
    Manual {
        grace: Option<Duration>,
        trigger: Trigger,
    },
}

/// How far one run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Stop after promote when grace remains (the daemon revokes later).
    Promoted,
    /// Wait out the grace and revoke.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The rotation is finished; `old_key` says what became of the old key.
    Rotated {
        rotation_id: RotationId,
        new_key: KeyRecord,
        old_key: OldKeyFate,
    },
    /// Promoted; the old key (if any) is revoked after `revoke_after`.
    InGrace {
        rotation_id: RotationId,
        revoke_after: DateTime<Utc>,
        old_key: Option<KeyRecord>,
    },
    /// Verification failed for good; the new key is gone, the old one current.
    RolledBack {
        rotation_id: RotationId,
        reason: String,
    },
    /// Another process (or task) holds this secret's lease.
    Busy,
    /// Assisted rotation: due (or asked for), but no new key is placed as
    /// pending yet; waiting since `since`. Not a failure.
    AwaitingKey { since: Option<DateTime<Utc>> },
    /// Nothing due.
    NotDue {
        until: Option<DateTime<Utc>>,
        why: WaitReason,
    },
    /// Shutdown requested; stopped at a step boundary, the journal resumes it.
    /// `live_old_key`: stopped after promote, the old key still works.
    Stopped {
        rotation_id: RotationId,
        live_old_key: Option<LiveOldKey>,
    },
}

/// What became of the old key when a rotation finished, so that no message
/// says "revoked" of a key that was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldKeyFate {
    /// There was none: the policy's first key.
    None,
    /// Revoked now, the way `revoke.mode` says.
    Revoked { key: KeyRecord, mode: RevokeMode },
    /// The provider no longer had it (deleted by hand, or expired).
    AlreadyGone { key: KeyRecord },
    /// Never found at the provider (adopted by label without an id): not revoked.
    NeverFound { key: KeyRecord },
}

impl fmt::Display for OldKeyFate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OldKeyFate::None => write!(f, "no old key to revoke"),
            OldKeyFate::Revoked { key, mode } => write!(
                f,
                "old key {} ({}) revoked (revoke.mode = \"{mode}\")",
                key.id.as_deref().unwrap_or("-"),
                key.label
            ),
            OldKeyFate::AlreadyGone { key } => write!(
                f,
                "old key {} ({}) was already gone at the provider",
                key.id.as_deref().unwrap_or("-"),
                key.label
            ),
            OldKeyFate::NeverFound { key } => write!(
                f,
                "old key ({}) was never found at the provider and is NOT revoked: find it there and revoke it by hand",
                key.label
            ),
        }
    }
}

impl RunOutcome {
    /// Stopped at a step boundary; [`Run::execute`] adds the live old key.
    pub fn stopped(rotation_id: RotationId) -> RunOutcome {
        RunOutcome::Stopped {
            rotation_id,
            live_old_key: None,
        }
    }
}

/// An old key that still works because its rotation stopped in (or right
/// after) the grace: what an operator must know before walking away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOldKey {
    pub key: KeyRecord,
    pub revoke_after: DateTime<Utc>,
}

impl LiveOldKey {
    /// The old key of a promoted rotation not yet revoked.
    pub fn of(rotation: &Rotation) -> Option<LiveOldKey> {
        let promoted = rotation.step == Step::Promoted && rotation.rollback.is_none();
        let key = rotation.old_key.clone().filter(|_| promoted)?;
        let revoke_after = rotation.revoke_after?;
        Some(LiveOldKey { key, revoke_after })
    }

    /// `old key <id> (<label>)`.
    pub fn name(&self) -> String {
        match &self.key.id {
            Some(id) => format!("old key {id} ({})", self.key.label),
            None => format!("old key ({})", self.key.label),
        }
    }

    /// Which key still works and what revokes it.
    pub fn message(&self) -> String {
        format!(
            "{} stays live until the grace ends at {}; `rekey run` (the daemon) or `rekey run --once` after that time revokes it",
            self.name(),
            crate::clock::rfc3339(self.revoke_after)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "rotation {rotation_id} is in grace until {when}; rotate again after it finishes (or use --grace 0 to revoke the old key now)",
        when = crate::clock::rfc3339(.revoke_after.to_owned())
    )]
    InGrace {
        rotation_id: RotationId,
        revoke_after: DateTime<Utc>,
    },
    #[error("refusing to revoke key {key_id}: the store's current key is still that key")]
    RevokeWouldBreakCurrent { key_id: String },
    #[error(
        "refusing to delete the new key {key_id}: the store's current value is that key, and it was never verified; check the secret"
    )]
    NewKeyIsCurrent { key_id: String },
    #[error(
        "the provider accepted the delete of key {key_id} (or answered 404) but still lists it; retrying later"
    )]
    DeleteUnconfirmed { key_id: String },
    /// A create answered ambiguously; the sweep by rotation id settled it.
    #[error("{0}")]
    CreateAmbiguous(String),
    #[error(
        "rotation {rotation_id}: a key the provider may have created could not be accounted for within daemon.sweep_timeout ({message}); the next pass sweeps again"
    )]
    CreateUnconfirmed {
        rotation_id: RotationId,
        message: String,
    },
    /// An `on_promote` hook failed: the old key is not revoked yet.
    #[error(
        "{hook} failed: {message}; the old key is not revoked until every on_promote hook succeeds"
    )]
    HookFailed { hook: String, message: String },
    /// The old key is still in use (`revoke.wait_idle`), within `max_wait`.
    #[error("the old key is still in use ({0}); it is revoked once idle for revoke.wait_idle")]
    InUse(String),
    /// The old key is still in use (`revoke.wait_idle`) past `max_wait`.
    #[error("the old key is still in use: {0}")]
    OldKeyBusy(String),
    /// The old key was still in use past `max_wait` and was revoked anyway.
    #[error("the old key was still in use after revoke.max_wait and is revoked anyway: {0}")]
    RevokedBusy(String),
    /// Asked to rotate while the rotation in flight waits before its revoke.
    #[error(
        "rotation {rotation_id} waits before revoking its old key ({why}); rotate again after it finishes, or use --grace 0 to revoke the old key now"
    )]
    Waiting {
        rotation_id: RotationId,
        why: String,
    },
    /// A bug: the rotation panicked. The journal resumes it on the next pass.
    #[error("internal error (a panic): {0}")]
    Panicked(String),
    /// Not returned by runs (they report `RunOutcome::RolledBack`); names a rollback's cause in events.
    #[error("rolled back: {0}")]
    RolledBack(String),
}

impl RotationError {
    /// The secret's lease was lost (or could not be kept long enough): the
    /// rotation stopped without writing, and another holder resumes it.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, RotationError::State(StateError::LeaseLost { .. }))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RotationError::Provider(e) => e.kind(),
            RotationError::Store(e) => e.kind(),
            RotationError::State(e) => e.kind(),
            RotationError::InGrace { .. } => "in_grace",
            RotationError::RevokeWouldBreakCurrent { .. } => "revoke_refused",
            RotationError::NewKeyIsCurrent { .. } => "delete_refused",
            RotationError::DeleteUnconfirmed { .. } => "delete_unconfirmed",
            RotationError::CreateAmbiguous(_) => "create_ambiguous",
            RotationError::CreateUnconfirmed { .. } => "create_unconfirmed",
            RotationError::HookFailed { .. } => "hook_failed",
            RotationError::InUse(_) => "in_use",
            RotationError::OldKeyBusy(_) => "old_key_busy",
            RotationError::RevokedBusy(_) => "revoked_busy",
            RotationError::Waiting { .. } => "waiting",
            RotationError::Panicked(_) => "panic",
            RotationError::RolledBack(_) => "verify_failed",
        }
    }
}

/// Runs what is due for `policy` (or what `request` asks) under the secret's lease.
pub async fn run_policy(
    ctx: &Ctx,
    policy: &Policy,
    request: Request,
    until: Until,
) -> Result<RunOutcome, RotationError> {
    let span =
        tracing::info_span!("rotation", policy = %policy.name, rotation = tracing::field::Empty);
    async {
        let target = &policy.target;
        let legacy = target.legacy_lock_name();
        let Some(lease) = ctx.state.try_lease(&target.lease, &legacy).await? else {
            tracing::info!(secret = %target.lease, "another rotation holds this secret; skipping");
            return Ok(RunOutcome::Busy);
        };
        let lease: Arc<dyn Lease> = Arc::from(lease);
        let ctx = &Ctx {
            lease: Some(lease.clone()),
            ..ctx.clone()
        };
        crate::failpoint::pause("lease:held").await;
        let state = ctx.state.load(&policy.name).await?;
        // Run on its own task so that a panic (a bug) becomes a failed
        // rotation here, journaled and alerted, instead of a dead task.
        let (task_ctx, task_policy, task_lease) = (ctx.clone(), policy.clone(), lease.clone());
        let task = tokio::spawn(
            async move {
                let mut run = run::Run::new(&task_ctx, &task_policy, state, task_lease);
                run.execute(request, until).await
            }
            .in_current_span(),
        );
        let result = match task.await {
            Ok(result) => result,
            Err(e) => record_panic(ctx, policy, e, lease.clone()).await,
        };
        // Let go now, not when the last handle drops: the next run of this
        // secret (the daemon's next round, another replica) can take it.
        lease.release().await;
        result
    }
    .instrument(span)
    .await
}

/// A rotation task that panicked (or was aborted): the journal holds what
/// its last completed step recorded; the failure is recorded on top of it
/// (backoff, last result, failure event and alert) and the next pass
/// resumes from the journal.
async fn record_panic(
    ctx: &Ctx,
    policy: &Policy,
    e: tokio::task::JoinError,
    lease: Arc<dyn Lease>,
) -> Result<RunOutcome, RotationError> {
    let message = match e.try_into_panic() {
        Ok(payload) => crate::logging::panic_message(payload.as_ref()),
        Err(_) => "the rotation task was cancelled".to_string(),
    };
    // Panic messages are free text: never let one carry a key into the
    // journal, the audit log or an alert.
    let message = crate::secret::scrub(&message);
    tracing::error!(%message, "rotation panicked; recording it as a failed rotation");
    let state = ctx.state.load(&policy.name).await?;
    let mut run = run::Run::new(ctx, policy, state, lease);
    run.fail(RotationError::Panicked(message)).await
}
