//! Recovery rules of DESIGN.md for a rotation a crash left in flight (what a
//! restart does depends on the last step the journal recorded), and what a
//! run does when a step fails: undo, or record and retry later.

use tracing::{error, info, warn};

use super::run::Run;
use super::settle::Swept;
use super::{RotationError, RunOutcome, Until};
use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::providers::Deleted;
use crate::state::{OutcomeKind, Rotation, Step};

impl Run<'_> {
    /// Continues the rotation in flight (the caller's span names it).
    pub async fn resume(&mut self, until: Until) -> Result<RunOutcome, RotationError> {
        let rotation = self.rotation_ref().clone();
        self.announce_resume(&rotation);
        failpoint::hit("resume");
        if rotation.step == Step::Begun
            && rotation.rollback.is_none()
            && rotation.unconfirmed_create.is_none()
        {
            // A create may have succeeded without being recorded: its key
            // carries this rotation id in its name. Remove it and create anew.
            if let Err(e) = self.delete_new_key().await {
                return self.fail(e).await;
            }
        }
        self.drive(until).await
    }

    /// Says in the operator's words why a rotation in flight continues: a
    /// grace that ran out is the normal path; any other step means a run
    /// stopped part-way (a crash, a restart, a shutdown) and this one resumes.
    fn announce_resume(&self, rotation: &Rotation) {
        if rotation.step == Step::Promoted && rotation.rollback.is_none() {
            // Not over yet: the grace step says it waits.
            let grace_over = rotation.revoke_after.is_some_and(|at| at <= self.now());
            if !grace_over {
                return;
            }
            let old = rotation.old_key.as_ref();
            info!(
                old_key_id = old.and_then(|k| k.id.as_deref()).unwrap_or("-"),
                old_label = old.map(|k| k.label.as_str()).unwrap_or("-"),
                "grace over: revoking the old key"
            );
            return;
        }
        let step = rotation.step.as_str();
        info!(step, "resuming an interrupted rotation at step {step}");
    }

    /// Crashed after create, before stage: the new secret existed only in the
    /// dead process's memory. Delete that key (and a pending version a
    /// half-done stage may have written) and begin a fresh rotation — a fresh
    /// id, because AWS refuses a reused request token with another value.
    pub async fn restart_lost_key(&mut self) -> Result<(), RotationError> {
        if self.rotation_ref().verified_at.is_some() {
            // A first key, verified before it was written: its stage may have
            // landed (a store with no versions makes it current at once).
            let version = self.ctx.store.current_version(&self.policy.target).await?;
            if let Some(version) = version.filter(|v| self.is_our_version(v)) {
                warn!(
                    "the first key was written as current before the crash; finishing the rotation"
                );
                self.rotation().version_id = Some(version);
                return self.record_promoted().await;
            }
        }
        warn!(
            "the new key was created but never stored; deleting it and starting over as a new rotation"
        );
        self.delete_new_key().await?;
        self.drop_own_pending().await?;
        let lost = self
            .state
            .in_flight
            .take()
            .expect("recovery runs on a rotation in flight");
        self.finish(
            &lost,
            OutcomeKind::Failed,
            Some("interrupted before the new key was stored".into()),
        );
        self.begin(lost.trigger, lost.grace).await?;
        let new_rotation = self.rotation_ref().id.as_str();
        info!(new_rotation, "started over as a new rotation");
        Ok(())
    }

    /// The new key at the provider: by id when recorded, else every key
    /// whose name carries the rotation id (a create whose answer was lost).
    /// Never while the store's current value is that key, and never for an
    /// assisted rotation: a person made that key, rekey created nothing.
    pub async fn delete_new_key(&mut self) -> Result<(), RotationError> {
        if self.assisted() {
            return Ok(());
        }
        let id = self
            .rotation_ref()
            .new_key
            .as_ref()
            .and_then(|k| k.id.clone());
        if let Some(id) = id {
            self.refuse_if_new_key_current().await?;
            match self.delete_confirmed(&id, "delete new key").await? {
                Deleted::Now => info!(key_id = %id, "deleted the new key"),
                Deleted::AlreadyGone => {
                    info!(key_id = %id, "the new key was already gone at the provider; nothing to delete")
                }
            }
            return Ok(());
        }
        match self.sweep().await? {
            Swept::Settled(_) => Ok(()),
            Swept::Stopped => Err(RotationError::CreateUnconfirmed {
                rotation_id: self.rotation_ref().id.clone(),
                message: "shutdown during the sweep".into(),
            }),
        }
    }

    /// Drops the pending version only if it is this rotation's (any of its
    /// stagings: a re-stage may have landed unrecorded before a crash).
    pub async fn drop_own_pending(&self) -> Result<(), RotationError> {
        let pending = self.ctx.store.read_pending(&self.policy.target).await?;
        if let Some(pending) = pending.filter(|p| self.is_our_version(&p.version_id)) {
            self.may_start("drop pending", self.ctx.store_span).await?;
            self.ctx.store.drop_pending(&self.policy.target).await?;
            info!(version_id = %pending.version_id, "dropped the pending version");
        }
        Ok(())
    }

    /// create was refused, or stage failed: undo when the provider holds a
    /// key of ours; otherwise just record. (A create whose answer may hide a
    /// key never gets here: it is swept for, see `settle.rs`.)
    pub async fn abandon(&mut self, e: RotationError) -> Result<RunOutcome, RotationError> {
        if e.is_lease_lost() {
            // Not this rotation's failure: the lease holder carries it on.
            return self.fail(e).await;
        }
        if self.rotation_ref().new_key.is_some() {
            return self.rollback(e.to_string()).await;
        }
        error!(error = %e, kind = e.kind(), "rotation failed before any key was created");
        self.close_failed_create(e).await
    }

    /// Closes the rotation in flight as failed at create (nothing of it is
    /// left at the provider or in the store). As `fail`, but the event names
    /// the rotation just closed (its id and trigger).
    pub async fn close_failed_create<T>(&mut self, e: RotationError) -> Result<T, RotationError> {
        let rotation = self
            .state
            .in_flight
            .take()
            .expect("a create fails on a rotation in flight");
        self.finish(&rotation, OutcomeKind::Failed, Some(e.to_string()));
        self.back_off();
        self.emit_for(
            Some(&rotation),
            EventStep::Create,
            EventOutcome::Failed,
            Some(&e),
        );
        self.save().await?;
        Err(e)
    }

    /// promote failed: retry later when it may work then; otherwise undo.
    pub async fn fail_or_abandon(&mut self, e: RotationError) -> Result<RunOutcome, RotationError> {
        if e.is_lease_lost() {
            return self.fail(e).await;
        }
        let retryable = matches!(&e, RotationError::Store(s) if s.is_retryable());
        if !retryable {
            return self.rollback(e.to_string()).await;
        }
        error!(error = %e, kind = e.kind(), "promote failed; will retry");
        self.fail(e).await
    }
}
