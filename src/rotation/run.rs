//! The state one run of a policy carries — its context, the policy and the
//! journal in memory — and the bookkeeping every step shares: saving,
//! closing a rotation into the history, recording failures with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::decide::failure_backoff;
use super::retry::{self, Idempotent};
use secrecy::SecretString;

use super::{Ctx, RotationError, Until};
use crate::events::{Event, EventOutcome, EventStep, KeyRef};
use crate::policy::Policy;
use crate::providers::ProviderError;
use crate::state::{
    HistoryEntry, KeyRecord, Lease, Outcome, OutcomeKind, PolicyState, Rotation, Step,
};
use crate::stores::Base;

/// How often a side effect waiting for a lease renewal looks again.
const LEASE_POLL: Duration = Duration::from_millis(100);

pub(super) struct Run<'a> {
    pub ctx: &'a Ctx,
    pub policy: &'a Policy,
    pub state: PolicyState,
    /// When the step now running started (the last event, or the run's start).
    pub mark: Instant,
    /// How far this run goes (a settled rollback finishes the rotation).
    pub until: Until,
    /// The new key's value, while this process has it (from create or a
    /// read of the pending version); never journaled.
    pub new_secret: Option<SecretString>,
    /// What this process staged the new key on (promote's compare side and
    /// the old key's value). `None` after a restart: the rotation stages again.
    pub base: Option<Base>,
    /// The store's current value as this run's reconcile read it (no
    /// rotation in flight): the base of the first staging, so that the
    /// rotation does not read it again. A change in between is caught by
    /// promote's compare-and-swap (the rotation then stages again).
    pub seen_current: Option<Base>,
    /// The new key passed verification before it was written (a first key).
    pub verified_before_stage: bool,
    /// The current span already carries a `rotation` id (recorded once:
    /// a field recorded again is printed twice).
    pub span_names_rotation: bool,
    /// The secret's lease, held for the whole run: every journal write is
    /// fenced by it, and every side effect first asks it for enough time.
    pub lease: Arc<dyn Lease>,
    /// An operator asked for `--grace 0`: a rotation this run begins is on
    /// the leaked-key path (journaled with it).
    pub leak_requested: bool,
}

impl<'a> Run<'a> {
    pub fn new(
        ctx: &'a Ctx,
        policy: &'a Policy,
        state: PolicyState,
        lease: Arc<dyn Lease>,
    ) -> Self {
        Run {
            ctx,
            policy,
            state,
            mark: Instant::now(),
            until: Until::Revoked,
            new_secret: None,
            base: None,
            seen_current: None,
            verified_before_stage: false,
            span_names_rotation: false,
            lease,
            leak_requested: false,
        }
    }
}

impl Run<'_> {
    /// Tells the observer about a state change of the rotation in flight.
    pub fn emit(&mut self, step: EventStep, outcome: EventOutcome, error: Option<&RotationError>) {
        let rotation = self.state.in_flight.clone();
        self.emit_for(rotation.as_ref(), step, outcome, error);
    }

    /// Like [`Run::emit`], for a rotation already taken out of flight.
    pub fn emit_for(
        &mut self,
        rotation: Option<&Rotation>,
        step: EventStep,
        outcome: EventOutcome,
        error: Option<&RotationError>,
    ) {
        let mut event = Event::new(&self.policy.name, &self.policy.provider, step, outcome);
        event.policy_set = self.policy.set_name().map(str::to_string);
        event.time = self.now();
        event.duration = Some(self.mark.elapsed());
        event.failures = self.state.failures;
        if let Some(rotation) = rotation {
            event.rotation_id = Some(rotation.id.clone());
            event.trigger = Some(rotation.trigger.as_str());
            event.new_key = rotation.new_key.as_ref().map(KeyRef::from);
            event.old_key = rotation.old_key.as_ref().map(KeyRef::from);
        }
        if let Some(e) = error {
            event.error_kind = Some(e.kind());
            event.error = Some(e.to_string());
        }
        self.ctx.observer.emit(event);
        self.mark = Instant::now();
    }

    /// The store's current key was taken over (not a rotation: no rotation id).
    pub fn emit_adopted(&mut self, record: &KeyRecord) {
        let mut event = Event::new(
            &self.policy.name,
            &self.policy.provider,
            EventStep::Adopt,
            EventOutcome::Ok,
        );
        event.time = self.now();
        event.new_key = Some(KeyRef::from(record));
        self.ctx.observer.emit(event);
    }

    /// A step failed in a way a later run may get past: journal the failure
    /// (the rotation stays in flight, if one is), back off, hand the error up.
    pub async fn fail<T>(&mut self, e: RotationError) -> Result<T, RotationError> {
        if e.is_lease_lost() {
            // Not this rotation's failure: it goes on under the replica that
            // holds the lease now, from the journal. Nothing to record (the
            // write would be refused) and nothing to alert.
            return Err(e);
        }
        self.back_off();
        let step = match self.state.in_flight.as_ref().map(|r| r.step) {
            _ if matches!(e, RotationError::HookFailed { .. }) => EventStep::Hook,
            None | Some(Step::Begun) if self.assisted() => EventStep::Claim,
            None | Some(Step::Begun) => EventStep::Create,
            Some(Step::Created) => EventStep::Stage,
            Some(Step::Staged) => EventStep::Verify,
            Some(Step::Verified) => EventStep::Promote,
            Some(Step::Promoted) => EventStep::Revoke,
        };
        self.emit(step, EventOutcome::Failed, Some(&e));
        if let Some(rotation) = &self.state.in_flight {
            self.state.last_result = Some(Outcome {
                kind: OutcomeKind::Failed,
                rotation_id: rotation.id.clone(),
                at: self.now(),
                error: Some(e.to_string()),
            });
        }
        self.save().await?;
        Err(e)
    }

    /// One more consecutive failure: no new attempt before the backoff has passed.
    pub fn back_off(&mut self) {
        self.state.failures += 1;
        let delay = failure_backoff(self.state.failures, self.ctx.backoff);
        self.state.retry_not_before = Some(crate::clock::later(self.now(), delay));
    }

    /// Closes `rotation` into the history and the last result.
    pub fn finish(&mut self, rotation: &Rotation, kind: OutcomeKind, error: Option<String>) {
        let now = self.now();
        self.state.last_result = Some(Outcome {
            kind,
            rotation_id: rotation.id.clone(),
            at: now,
            error: error.clone(),
        });
        self.state.push_history(HistoryEntry {
            rotation_id: rotation.id.clone(),
            trigger: rotation.trigger,
            started_at: rotation.started_at,
            finished_at: now,
            kind,
            old_key: rotation.old_key.clone(),
            new_key: rotation.new_key.clone(),
            error,
        });
    }

    /// An idempotent provider call, retried on rate limits and transient failures.
    pub async fn provider_call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        retry::call(self.ctx, what, Idempotent::Yes, f).await
    }

    /// How long a provider write started now may take: its timeout plus
    /// the wait for its turn in the provider's rate limiter.
    pub fn provider_span(&self) -> Duration {
        self.ctx.provider_span + self.ctx.provider.queue_delay()
    }

    /// A side effect (a provider or store write) that may take up to `span`
    /// starts only while the secret's lease is sure to outlive it. A lease
    /// that expires unless renewed may be a renewal away from that: it is
    /// waited for, up to a third of its period, then the rotation stops.
    pub async fn may_start(&self, what: &str, span: Duration) -> Result<(), RotationError> {
        let patience = self.lease.period().map_or(Duration::ZERO, |p| p / 3);
        let deadline = Instant::now() + patience;
        loop {
            match self.lease.ensure(span) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "{what}: not started: the secret's lease may end before it would finish");
                    return Err(e.into());
                }
                Err(_) => tokio::time::sleep(LEASE_POLL).await,
            }
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    pub async fn save(&self) -> Result<(), RotationError> {
        Ok(self.ctx.state.save(&self.state, &*self.lease).await?)
    }

    pub fn rotation(&mut self) -> &mut Rotation {
        self.state
            .in_flight
            .as_mut()
            .expect("a step runs only on a rotation in flight")
    }

    pub fn rotation_ref(&self) -> &Rotation {
        self.state
            .in_flight
            .as_ref()
            .expect("a step runs only on a rotation in flight")
    }
}
