//! The protocol of DESIGN.md, one function per step, in order: begin, create,
//! stage, verify, promote, grace, revoke — and rollback. Each step writes the
//! journal before the next starts; a crash between any two is picked up by
//! `recover.rs`. Assisted policies claim a placed key in place of create and
//! stage (`assisted.rs`); answers that may hide an effect are settled by
//! reading the world back (`settle.rs`); verification attempts live in
//! `verify.rs`, the dispatch of a request in `request.rs`.
//!
//! This file holds the dispatcher (`drive`) and the steps up to verify;
//! promote, grace, revoke and rollback follow in `steps/finish.rs`.

use std::time::Duration;

use tracing::info;

use super::retry::{self, Idempotent};
use super::run::Run;
use super::{RotationError, RunOutcome, Until};
use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::names::RotationId;

use crate::providers::{CreatedKey, KeySpec};
use crate::secret::redacted_label;
use crate::state::{KeyRecord, Rotation, Step, Trigger};

pub(super) enum Verified {
    Yes,
    No(String),
    Stopped,
}

impl Run<'_> {
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
                return Ok(RunOutcome::stopped(rotation.id));
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
                            return Ok(RunOutcome::stopped(rotation.id));
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
                        return Ok(RunOutcome::stopped(rotation.id));
                    }
                },
                Step::Verified => {
                    if let Err(e) = self.promote().await {
                        return self.fail_or_abandon(e).await;
                    }
                }
                Step::Promoted => return self.after_promote(until).await,
            }
        }
    }

    /// begin: a new rotation id, recorded before anything is created.
    pub async fn begin(&mut self, trigger: Trigger, grace: Duration) -> Result<(), RotationError> {
        let id = RotationId::generate();
        if !self.span_names_rotation {
            // A span field recorded twice is printed twice: a rotation begun
            // in place of a lost one keeps the span of the one it replaces.
            tracing::Span::current().record("rotation", id.as_str());
            self.span_names_rotation = true;
        }
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
            after_promote: crate::state::AfterPromote {
                leaked: self.leak_requested && grace.is_zero(),
                ..Default::default()
            },
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
        self.may_start("create key", self.provider_span()).await?;
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
    /// compare side) — the read this run's reconcile made, when it made
    /// one: whatever changed since is caught by promote's compare-and-swap.
    /// A first key — the store holds none — is verified before it is
    /// written: a store with no versions makes it current at once (AWS), and
    /// a secret must never hold a dead current value.
    async fn before_stage(&mut self) -> Result<Verified, RotationError> {
        let base = match self.seen_current.take() {
            Some(base) => base,
            None => self.ctx.store.base(&self.policy.target).await?,
        };
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

    /// stage: the new key as the store's pending version (token = rotation
    /// id), built from the base `before_stage` recorded. The token is fresh:
    /// this rotation id was never staged (a crash after create begins a new
    /// rotation, see `recover.rs`).
    async fn stage(&mut self, key: CreatedKey) -> Result<(), RotationError> {
        let token = self.rotation_ref().stage_token();
        self.may_start("stage", self.ctx.store_span).await?;
        let base = self.base.as_ref().expect("before_stage records the base");
        let target = &self.policy.target;
        let version = (self.ctx.store)
            .stage_from(target, &token, &key.secret, base)
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
}

mod after_promote;
mod finish;
mod wait_idle;
