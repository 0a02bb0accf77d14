//! What one run does for a request: whatever is due (resume, rotate, or
//! look for a placed key), or an operator's rotation that first finishes the
//! one in flight. The steps themselves are in `steps.rs`.

use std::time::Duration;

use tracing::{Instrument, info};

use super::decide::{Decision, WaitReason, decide};
use super::run::Run;
use super::{LiveOldKey, Request, RotationError, RunOutcome, Until, adopt};
use crate::state::{Step, Trigger};

impl Run<'_> {
    /// Runs `request`; a run stopped for shutdown names the old key its
    /// rotation leaves live, if any.
    pub async fn execute(
        &mut self,
        request: Request,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        let outcome = self.dispatch(request, until).await?;
        Ok(match outcome {
            RunOutcome::Stopped { rotation_id, .. } => RunOutcome::Stopped {
                live_old_key: self.state.in_flight.as_ref().and_then(LiveOldKey::of),
                rotation_id,
            },
            other => other,
        })
    }

    async fn dispatch(
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
                    Decision::Resume => {
                        self.name_span();
                        self.resume(until).await
                    }
                    Decision::Rotate(trigger) => {
                        let trigger = match request {
                            Request::DueAfterReload => Trigger::Reload,
                            _ => trigger,
                        };
                        self.start(trigger, self.policy.revoke.grace, until).await
                    }
                    // Asked to wait (`rotate --wait`): see the grace out and revoke.
                    Decision::Wait {
                        why: WaitReason::InGrace,
                        ..
                    } if until == Until::Revoked => {
                        self.name_span();
                        self.resume(until).await
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

    /// The run's span names the rotation in flight (once: see `begin`).
    fn name_span(&mut self) {
        let id = self.rotation_ref().id.clone();
        tracing::Span::current().record("rotation", id.as_str());
        self.span_names_rotation = true;
    }

    /// An operator's rotation: finish what is in flight first (a `--grace 0`
    /// request cuts a running grace short), then rotate. The finishing runs
    /// in its own span, beside the new rotation's, so each line names one.
    async fn manual(
        &mut self,
        grace: Option<Duration>,
        trigger: Trigger,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        let now = self.now();
        let hooks = self.policy.on_promote.len();
        if let Some(rotation) = self.state.in_flight.as_mut() {
            let promoted = rotation.step == Step::Promoted && rotation.rollback.is_none();
            let waiting = rotation.waiting_for(hooks);
            let in_grace = rotation.revoke_after.filter(|at| *at > now);
            if promoted && grace == Some(Duration::ZERO) {
                // The leaked-key path: no grace, no wait for hooks or idleness.
                rotation.grace = Duration::ZERO;
                rotation.after_promote.leaked = true;
                if in_grace.is_some() || waiting.is_some() {
                    rotation.revoke_after = Some(now);
                    info!(
                        rotation = %rotation.id,
                        "grace 0 asked for: revoking the old key of the rotation in flight now"
                    );
                }
            } else if let Some(revoke_after) = in_grace {
                return Err(RotationError::InGrace {
                    rotation_id: rotation.id.clone(),
                    revoke_after,
                });
            } else if let Some(why) = waiting {
                return Err(RotationError::Waiting {
                    rotation_id: rotation.id.clone(),
                    why,
                });
            }
            let span = tracing::info_span!("finishing", rotation = self.rotation_ref().id.as_str());
            self.span_names_rotation = true;
            let finished = self.resume(Until::Revoked).instrument(span).await;
            self.span_names_rotation = false;
            match finished? {
                RunOutcome::Rotated { .. } => {}
                RunOutcome::NotDue {
                    why: WaitReason::OldKeyBusy,
                    ..
                } => {
                    let rotation = self.rotation_ref();
                    return Err(RotationError::Waiting {
                        rotation_id: rotation.id.clone(),
                        why: rotation.waiting_for(hooks).unwrap_or_default(),
                    });
                }
                other => return Ok(other),
            }
        }
        self.leak_requested = grace == Some(Duration::ZERO);
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
}
