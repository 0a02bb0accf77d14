//! The second half of the protocol, in order: promote, grace, revoke — and
//! rollback. The new key becomes current, consumers get the grace period,
//! then the old key goes; or the new key is undone and the old one stays.

use std::time::Duration;

use tracing::{error, info, warn};

use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::policy::RevokeMode;
use crate::providers::Deleted;
use crate::rotation::run::Run;
use crate::rotation::{OldKeyFate, RotationError, RunOutcome, Until};
use crate::state::{OutcomeKind, Step};
use crate::stores::Promoted;

impl Run<'_> {
    /// promote: pending becomes current — only if the current value is still
    /// the one the pending version was built from; otherwise it is staged
    /// again from the new current and verified again. An error is settled by
    /// reading the current version back: a move that landed is a promote.
    pub(super) async fn promote(&mut self) -> Result<(), RotationError> {
        let version = self.rotation_ref().version_id.clone().unwrap_or_default();
        let target = &self.policy.target;
        let base = self
            .base
            .as_ref()
            .expect("drive stages again when there is no base");
        self.may_start("promote", self.ctx.store_span).await?;
        match self.ctx.store.promote_if(target, &version, base).await {
            Ok(Promoted::Done) => {}
            Ok(Promoted::CurrentMoved) => {
                warn!("the current value changed since the new key was staged; staging again");
                return self.restage().await;
            }
            Err(e) => {
                if self.ctx.store.current_version(target).await?.as_deref() != Some(&version) {
                    return Err(e.into());
                }
                warn!(error = %e, "promote answered an error but the new version is current");
            }
        }
        failpoint::hit("promote:before-record");
        self.record_promoted().await
    }

    /// The promote's record: the new key is current; the revoke deadline.
    pub async fn record_promoted(&mut self) -> Result<(), RotationError> {
        let now = self.now();
        let rotation = self.rotation();
        // With no old key there is nothing to wait for.
        let revoke_after = if rotation.old_key.is_some() {
            crate::clock::later(now, rotation.grace)
        } else {
            now
        };
        rotation.step = Step::Promoted;
        rotation.rollback = None;
        rotation.revoke_after = Some(revoke_after);
        let version = rotation.version_id.clone().unwrap_or_default();
        self.state.current = rotation.new_key.clone();
        self.save().await?;
        self.emit(EventStep::Promote, EventOutcome::Ok, None);
        info!(version_id = %version, revoke_after = %crate::clock::rfc3339(revoke_after), "promoted: the new key is current");
        failpoint::pause("promote").await;
        Ok(())
    }

    /// grace: consumers pick up the new key. `Some` when this run stops here.
    pub(super) async fn grace(&mut self, until: Until) -> Option<RunOutcome> {
        let rotation = self.rotation_ref();
        let revoke_after = rotation.revoke_after.unwrap_or_else(|| self.now());
        let remaining = (revoke_after - self.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if remaining.is_zero() {
            return None;
        }
        let in_grace = RunOutcome::InGrace {
            rotation_id: rotation.id.clone(),
            revoke_after,
            old_key: rotation.old_key.clone(),
        };
        if until == Until::Promoted {
            return Some(in_grace);
        }
        info!(revoke_after = %crate::clock::rfc3339(revoke_after), "waiting out the grace period");
        tokio::select! {
            _ = tokio::time::sleep(remaining) => None,
            _ = self.ctx.cancel.cancelled() => Some(RunOutcome::stopped(rotation.id.clone())),
        }
    }

    /// revoke: the old key goes at the provider (404 = already gone), only
    /// once the store no longer serves it.
    pub(super) async fn revoke(&mut self) -> Result<RunOutcome, RotationError> {
        let old_key = match self.revoke_old_key().await {
            Ok(fate) => fate,
            Err(e) => {
                self.rotation().revoke_failures += 1;
                error!(error = %e, kind = e.kind(), "revoke failed; will retry");
                return self.fail(e).await;
            }
        };
        failpoint::hit("revoke:before-record");
        let rotation = self
            .state
            .in_flight
            .take()
            .expect("revoke runs on a rotation in flight");
        let new_key = rotation
            .new_key
            .clone()
            .expect("a promoted rotation has a new key");
        self.finish(&rotation, OutcomeKind::Rotated, None);
        self.state.failures = 0;
        self.state.retry_not_before = None;
        self.save().await?;
        self.emit_for(
            Some(&rotation),
            EventStep::Revoke,
            EventOutcome::Rotated,
            None,
        );
        info!(key_id = new_key.id.as_deref().unwrap_or("-"), label = %new_key.label, "rotation complete");
        failpoint::hit("revoke");
        Ok(RunOutcome::Rotated {
            rotation_id: rotation.id,
            new_key,
            old_key,
        })
    }

    async fn revoke_old_key(&self) -> Result<OldKeyFate, RotationError> {
        let mode = self.policy.revoke.mode;
        let Some(old) = self.rotation_ref().old_key.clone() else {
            return Ok(OldKeyFate::None);
        };
        let Some(id) = old.id.clone() else {
            warn!(label = %old.label, "the old key was never found at the provider; it is not revoked");
            return Ok(OldKeyFate::NeverFound { key: old });
        };
        if self.old_key_may_be_current(&old).await? {
            return Err(RotationError::RevokeWouldBreakCurrent { key_id: id });
        }
        let deleted = match mode {
            RevokeMode::Delete => self.delete_confirmed(&id, "delete old key").await?,
            RevokeMode::Disable => {
                self.disable_confirmed(&id).await?;
                Deleted::Now
            }
            RevokeMode::Archive => {
                self.may_start("archive old key", self.provider_span())
                    .await?;
                self.provider_call("archive old key", || self.ctx.provider.archive_key(&id))
                    .await?;
                Deleted::Now
            }
        };
        if deleted == Deleted::AlreadyGone {
            info!(key_id = %id, label = %old.label, "old key {id} was already gone at the provider; nothing to revoke");
            return Ok(OldKeyFate::AlreadyGone { key: old });
        }
        info!(key_id = %id, label = %old.label, revoke.mode = mode.as_str(), "revoked old key");
        Ok(OldKeyFate::Revoked { key: old, mode })
    }

    /// rollback: delete the new key, drop our pending version, keep the old
    /// key current. Recorded first, so a crash mid-way finishes it on restart.
    pub async fn rollback(&mut self, reason: String) -> Result<RunOutcome, RotationError> {
        let rotation = self.rotation();
        if rotation.rollback.is_none() {
            rotation.rollback = Some(reason.clone());
            self.save().await?;
        }
        error!(%reason, "rolling back: the old key stays current");
        match self.delete_new_key().await {
            Ok(()) => {}
            // A promote (or a first key's stage) landed after all: the key
            // is current and was verified, so finish instead of undoing.
            Err(RotationError::NewKeyIsCurrent { .. })
                if self.rotation_ref().verified_at.is_some() =>
            {
                warn!(
                    "the new key is current after all; finishing the rotation instead of rolling back"
                );
                self.record_promoted().await?;
                return self.after_promote(self.until).await;
            }
            Err(e) => return self.fail(e).await,
        }
        failpoint::hit("rollback:deleted");
        if let Err(e) = self.drop_own_pending().await {
            return self.fail(e).await;
        }
        failpoint::hit("rollback:dropped");
        let rotation = self
            .state
            .in_flight
            .take()
            .expect("rollback runs on a rotation in flight");
        self.finish(&rotation, OutcomeKind::RolledBack, Some(reason.clone()));
        self.back_off();
        self.save().await?;
        let why = RotationError::RolledBack(reason.clone());
        self.emit_for(
            Some(&rotation),
            EventStep::Rollback,
            EventOutcome::RolledBack,
            Some(&why),
        );
        Ok(RunOutcome::RolledBack {
            rotation_id: rotation.id,
            reason,
        })
    }
}
