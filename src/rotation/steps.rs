//! The protocol of DESIGN.md, one function per step, in order: begin, create,
//! stage, verify, promote, grace, revoke — and rollback. Each step writes the
//! journal before the next starts; a crash between any two is picked up by
//! `recover.rs`. Assisted policies claim a placed key in place of create and
//! stage (`assisted.rs`).

use std::time::Duration;

use tracing::{error, info, warn};

use super::decide::{Decision, WaitReason, decide};
use super::retry::{self, Idempotent};
use super::run::Run;
use super::{Request, RotationError, RunOutcome, Until, adopt};
use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::policy::RevokeMode;
use secrecy::SecretString;

use crate::providers::{CreatedKey, KeySpec, ProviderError};
use crate::secret::redacted_label;
use crate::state::{KeyRecord, OutcomeKind, Rotation, Step, Trigger};
use crate::stores::Promoted;

/// The longest pause between two verification attempts.
const MAX_VERIFY_PAUSE: Duration = Duration::from_secs(10);

pub(super) enum Verified {
    Yes,
    No(String),
    Stopped,
}

impl Run<'_> {
    pub async fn execute(
        &mut self,
        request: Request,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        if self.state.in_flight.is_none() {
            adopt::reconcile(self).await?;
        }
        match request {
            Request::Due | Request::DueAfterReload => {
                match decide(self.policy, &self.state, self.now()) {
                    Decision::Resume => self.resume(until).await,
                    Decision::Rotate(trigger) => {
                        let trigger = match request {
                            Request::DueAfterReload => Trigger::Reload,
                            _ => trigger,
                        };
                        self.start(trigger, self.policy.revoke.grace, until).await
                    }
                    Decision::Wait { until: at, why }
                        if self.assisted() && why == WaitReason::NotDue =>
                    {
                        let not_due = RunOutcome::NotDue { until: at, why };
                        self.look_for_placed_key(until, not_due).await
                    }
                    Decision::Wait { until, why } => Ok(RunOutcome::NotDue { until, why }),
                }
            }
            Request::Manual { grace, trigger } => self.manual(grace, trigger, until).await,
        }
    }

    /// An operator's rotation: finish what is in flight first (a `--grace 0`
    /// request cuts a running grace short), then rotate.
    async fn manual(
        &mut self,
        grace: Option<Duration>,
        trigger: Trigger,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        let now = self.now();
        if let Some(rotation) = self.state.in_flight.as_mut() {
            if let Some(revoke_after) = rotation.revoke_after.filter(|at| *at > now) {
                if grace != Some(Duration::ZERO) {
                    return Err(RotationError::InGrace {
                        rotation_id: rotation.id.clone(),
                        revoke_after,
                    });
                }
                rotation.revoke_after = Some(now);
            }
            match self.resume(Until::Revoked).await? {
                RunOutcome::Rotated { .. } => {}
                other => return Ok(other),
            }
        }
        self.start(trigger, grace.unwrap_or(self.policy.revoke.grace), until)
            .await
    }

    /// A new rotation: a new key from the provider, or (assisted) the key a
    /// person placed.
    async fn start(
        &mut self,
        trigger: Trigger,
        grace: Duration,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        if self.assisted() {
            return self.start_assisted(trigger, grace, until).await;
        }
        self.begin(trigger, grace).await?;
        self.drive(until).await
    }

    /// Runs the steps from wherever the journal stands.
    pub async fn drive(&mut self, until: Until) -> Result<RunOutcome, RotationError> {
        self.until = until;
        loop {
            let rotation = self.rotation().clone();
            if self.ctx.cancel.is_cancelled() {
                info!(
                    step = rotation.step.as_str(),
                    "shutdown: stopping at a step boundary"
                );
                return Ok(RunOutcome::Stopped {
                    rotation_id: rotation.id,
                });
            }
            if let Some(reason) = rotation.rollback {
                return self.rollback(reason).await;
            }
            match rotation.step {
                Step::Begun if self.assisted() => match self.claim().await {
                    Ok(true) => {}
                    Ok(false) => return self.placed_key_gone().await,
                    Err(e) => return self.fail(e).await,
                },
                Step::Begun if rotation.unconfirmed_create.is_some() => {
                    return self.close_unconfirmed().await;
                }
                Step::Begun => {
                    let key = match self.create().await {
                        Ok(key) => key,
                        Err(RotationError::Provider(e)) if e.may_have_taken_effect() => {
                            return self.create_unconfirmed(e).await;
                        }
                        Err(e) => return self.abandon(e).await,
                    };
                    match self.before_stage().await {
                        Ok(Verified::Yes) => {}
                        Ok(Verified::No(reason)) => return self.rollback(reason).await,
                        Ok(Verified::Stopped) => {
                            return Ok(RunOutcome::Stopped {
                                rotation_id: rotation.id,
                            });
                        }
                        Err(e) => return self.abandon(e).await,
                    }
                    if let Err(e) = self.stage(key).await
                        && let Err(e) = self.settle_stage(e).await
                    {
                        return self.abandon(e).await;
                    }
                }
                Step::Created => {
                    if let Err(e) = self.restart_lost_key().await {
                        return self.fail(e).await;
                    }
                }
                Step::Staged | Step::Verified if self.base.is_none() => {
                    if let Err(e) = self.restage().await {
                        return self.fail(e).await;
                    }
                }
                Step::Staged => match self.verify().await? {
                    Verified::Yes => {}
                    Verified::No(reason) => return self.rollback(self.not_verified(reason)).await,
                    Verified::Stopped => {
                        return Ok(RunOutcome::Stopped {
                            rotation_id: rotation.id,
                        });
                    }
                },
                Step::Verified => {
                    if let Err(e) = self.promote().await {
                        return self.fail_or_abandon(e).await;
                    }
                }
                Step::Promoted => {
                    if let Some(outcome) = self.grace(until).await {
                        return Ok(outcome);
                    }
                    return self.revoke().await;
                }
            }
        }
    }

    /// begin: a new rotation id, recorded before anything is created.
    pub async fn begin(&mut self, trigger: Trigger, grace: Duration) -> Result<(), RotationError> {
        let id = uuid::Uuid::now_v7().to_string();
        tracing::Span::current().record("rotation", id.as_str());
        self.state.in_flight = Some(Rotation {
            id,
            trigger,
            started_at: self.now(),
            step: Step::Begun,
            grace,
            old_key: self.state.current.clone(),
            new_key: None,
            version_id: None,
            verified_at: None,
            revoke_after: None,
            revoke_failures: 0,
            rollback: None,
            unconfirmed_create: None,
            restages: 0,
        });
        self.save().await?;
        self.emit(EventStep::Begin, EventOutcome::Ok, None);
        info!(trigger = trigger.as_str(), "begin");
        failpoint::hit("begin");
        Ok(())
    }

    /// create: a key at the provider whose name carries the rotation id.
    async fn create(&mut self) -> Result<CreatedKey, RotationError> {
        let now = self.now();
        let template = &self.policy.key;
        let spec = KeySpec {
            name: template.render_name(&self.policy.name, &self.rotation().id, now),
            limit: template.limit,
            limit_reset: template.limit_reset,
            include_byok_in_limit: template.include_byok_in_limit,
            expires_at: template.expires_after.map(|d| crate::clock::later(now, d)),
            allowed_providers: template.allowed_providers.clone(),
            allowed_models: template.allowed_models.clone(),
            models: template.models.clone(),
            max_budget: template.max_budget,
            budget_duration: template.budget_duration.clone(),
        };
        let provider = &self.ctx.provider;
        let key = retry::call(self.ctx, "create key", Idempotent::No, || {
            provider.create_key(&spec)
        })
        .await?;
        failpoint::hit("create:before-record");
        let record = KeyRecord {
            id: Some(key.id.clone()),
            label: redacted_label(&key.secret),
            created_at: now,
            adopted: false,
        };
        self.new_secret = Some(key.secret.clone());
        let rotation = self.rotation();
        rotation.new_key = Some(record.clone());
        rotation.step = Step::Created;
        self.save().await?;
        self.emit(EventStep::Create, EventOutcome::Ok, None);
        info!(key_id = %key.id, label = %record.label, name = %key.name, "created new key");
        failpoint::hit("create");
        Ok(key)
    }

    /// Before stage: what the store holds now is recorded (promote's
    /// compare side). A first key — the store holds none — is verified
    /// before it is written: a store with no versions makes it current at
    /// once (AWS), and a secret must never hold a dead current value.
    async fn before_stage(&mut self) -> Result<Verified, RotationError> {
        let base = self.ctx.store.base(&self.policy.target).await?;
        let first = base.key.is_none();
        self.base = Some(base);
        if !first {
            return Ok(Verified::Yes);
        }
        let secret = self.new_secret.clone();
        let verified = self.verify_attempts(secret.as_ref()).await;
        self.verified_before_stage = matches!(verified, Verified::Yes);
        if self.verified_before_stage {
            let now = self.now();
            self.rotation().verified_at = Some(now);
            self.save().await?;
            info!("verified the first key before writing it");
        }
        Ok(verified)
    }

    /// stage: the new key as the store's pending version (token = rotation id).
    async fn stage(&mut self, key: CreatedKey) -> Result<(), RotationError> {
        let token = self.rotation_ref().stage_token();
        let version = self
            .ctx
            .store
            .stage(&self.policy.target, &token, &key.secret)
            .await?;
        failpoint::hit("stage:before-record");
        self.record_staged(version).await
    }

    pub async fn record_staged(&mut self, version: String) -> Result<(), RotationError> {
        let now = self.now();
        let verified = self.verified_before_stage;
        let rotation = self.rotation();
        rotation.version_id = Some(version.clone());
        rotation.step = Step::Staged;
        if verified {
            rotation.verified_at = Some(now);
            rotation.step = Step::Verified;
        }
        self.save().await?;
        self.emit(EventStep::Stage, EventOutcome::Ok, None);
        info!(version_id = %version, secret = %self.policy.target.secret_id, "staged as pending");
        failpoint::hit("stage");
        Ok(())
    }

    /// verify: read the pending version back and call the provider with it,
    /// retrying with backoff while the key propagates, up to `verify.timeout`.
    async fn verify(&mut self) -> Result<Verified, RotationError> {
        let verified = self.verify_attempts(None).await;
        if !matches!(verified, Verified::Yes) {
            return Ok(verified);
        }
        let now = self.now();
        let rotation = self.rotation();
        rotation.verified_at = Some(now);
        rotation.step = Step::Verified;
        self.save().await?;
        self.emit(EventStep::Verify, EventOutcome::Ok, None);
        failpoint::hit("verify");
        Ok(Verified::Yes)
    }

    /// Verification attempts until one works, one fails for good or
    /// `verify.timeout` passes: with `key` (a first key, not written yet) or
    /// with the store's pending version.
    async fn verify_attempts(&self, key: Option<&SecretString>) -> Verified {
        let deadline = tokio::time::Instant::now() + self.policy.verify.timeout;
        let mut pause = Duration::from_millis(250);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = match key {
                Some(key) => self.verify_key(key).await,
                None => self.verify_once().await,
            };
            let observer = &self.ctx.observer;
            observer.verify_attempt(&self.policy.name, &self.policy.provider, result.is_ok());
            let (reason, wait) = match result {
                Ok(()) => break,
                Err(Attempt::Final(reason)) => return Verified::No(reason),
                Err(Attempt::Retry(reason, after)) => (reason, after.unwrap_or(pause)),
            };
            if tokio::time::Instant::now() + wait > deadline {
                let timeout = humantime::format_duration(self.policy.verify.timeout);
                return Verified::No(format!(
                    "no success within {timeout} ({attempts} attempts); last: {reason}"
                ));
            }
            info!(attempt = attempts, retry_in_ms = wait.as_millis() as u64, %reason, "new key not working yet");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.ctx.cancel.cancelled() => return Verified::Stopped,
            }
            pause = (pause * 2).min(MAX_VERIFY_PAUSE);
        }
        info!(attempts, "verified new key at the provider");
        Verified::Yes
    }

    async fn verify_once(&self) -> Result<(), Attempt> {
        let expected = self.rotation_ref().version_id.clone();
        let pending = match self.ctx.store.read_pending(&self.policy.target).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(Attempt::Final(
                    "the pending version is gone from the store".into(),
                ));
            }
            Err(e) if e.is_retryable() => return Err(Attempt::Retry(e.to_string(), None)),
            Err(e) => return Err(Attempt::Final(e.to_string())),
        };
        if expected.as_deref() != Some(pending.version_id.as_str()) {
            return Err(Attempt::Final(format!(
                "the pending version is {} instead of this rotation's {}",
                pending.version_id,
                expected.unwrap_or_default()
            )));
        }
        self.verify_key(&pending.key).await
    }

    async fn verify_key(&self, key: &SecretString) -> Result<(), Attempt> {
        match self
            .ctx
            .provider
            .verify_key(key, &self.policy.verify.mode)
            .await
        {
            Ok(()) => Ok(()),
            Err(e @ ProviderError::KeyRejected { .. }) => Err(Attempt::Retry(e.to_string(), None)),
            Err(e) if e.is_retryable() => Err(Attempt::Retry(e.to_string(), e.retry_after())),
            Err(e) => Err(Attempt::Final(e.to_string())),
        }
    }

    /// promote: pending becomes current — only if the current value is still
    /// the one the pending version was built from; otherwise it is staged
    /// again from the new current and verified again. An error is settled by
    /// reading the current version back: a move that landed is a promote.
    async fn promote(&mut self) -> Result<(), RotationError> {
        let version = self.rotation_ref().version_id.clone().unwrap_or_default();
        let target = &self.policy.target;
        let base = self
            .base
            .as_ref()
            .expect("drive stages again when there is no base");
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
        info!(version_id = %version, %revoke_after, "promoted: the new key is current");
        failpoint::hit("promote");
        Ok(())
    }

    /// grace: consumers pick up the new key. `Some` when this run stops here.
    async fn grace(&mut self, until: Until) -> Option<RunOutcome> {
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
        };
        if until == Until::Promoted {
            return Some(in_grace);
        }
        info!(%revoke_after, "waiting out the grace period");
        tokio::select! {
            _ = tokio::time::sleep(remaining) => None,
            _ = self.ctx.cancel.cancelled() => Some(RunOutcome::Stopped { rotation_id: rotation.id.clone() }),
        }
    }

    /// revoke: the old key goes at the provider (404 = already gone), only
    /// once the store no longer serves it.
    async fn revoke(&mut self) -> Result<RunOutcome, RotationError> {
        if let Err(e) = self.revoke_old_key().await {
            self.rotation().revoke_failures += 1;
            error!(error = %e, kind = e.kind(), "revoke failed; will retry");
            return self.fail(e).await;
        }
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
        })
    }

    async fn revoke_old_key(&self) -> Result<(), RotationError> {
        let Some(old) = self.rotation_ref().old_key.clone() else {
            return Ok(());
        };
        let Some(id) = old.id else {
            warn!(label = %old.label, "the old key was never found at the provider; it is not revoked");
            return Ok(());
        };
        if self.old_key_may_be_current().await? {
            return Err(RotationError::RevokeWouldBreakCurrent { key_id: id });
        }
        match self.policy.revoke.mode {
            RevokeMode::Delete => self.delete_confirmed(&id, "delete old key").await?,
            RevokeMode::Disable => self.disable_confirmed(&id).await?,
            RevokeMode::Archive => {
                self.provider_call("archive old key", || self.ctx.provider.archive_key(&id))
                    .await?
            }
        }
        info!(key_id = %id, label = %old.label, mode = ?self.policy.revoke.mode, "revoked old key");
        Ok(())
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
                if let Some(outcome) = self.grace(self.until).await {
                    return Ok(outcome);
                }
                return self.revoke().await;
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

enum Attempt {
    Retry(String, Option<Duration>),
    Final(String),
}
