//! Recovery rules of DESIGN.md for a rotation a crash left in flight: what a
//! restart does depends on the last step the journal recorded.

use tracing::{info, warn};

use super::steps::Run;
use super::{RotationError, RunOutcome, Until};
use crate::state::{OutcomeKind, Step};

impl Run<'_> {
    /// Continues the rotation in flight.
    pub async fn resume(&mut self, until: Until) -> Result<RunOutcome, RotationError> {
        let rotation = self.rotation_ref().clone();
        tracing::Span::current().record("rotation", rotation.id.as_str());
        info!(step = rotation.step.as_str(), "resuming rotation in flight");
        if rotation.step == Step::Begun && rotation.rollback.is_none() {
            // A create may have succeeded without being recorded: its key
            // carries this rotation id in its name. Remove it and create anew.
            if let Err(e) = self.delete_new_key().await {
                self.record_failure(&e).await?;
                return Err(e);
            }
        }
        self.drive(until).await
    }

    /// Crashed after create, before stage: the new secret existed only in the
    /// dead process's memory. Delete that key (and a pending version a
    /// half-done stage may have written) and begin a fresh rotation — a fresh
    /// id, because AWS refuses a reused request token with another value.
    pub async fn restart_lost_key(&mut self) -> Result<(), RotationError> {
        warn!("the new key was created but never stored; deleting it and starting over");
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
        self.begin(lost.trigger, lost.grace).await
    }
}
