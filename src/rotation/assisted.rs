//! Assisted rotation, for providers that cannot mint keys (Anthropic): a
//! person places the new key as the store's pending value and rekey *claims*
//! it — the step that stands in for create + stage — then verifies, promotes
//! and retires the old key through the usual steps. rekey creates and
//! deletes nothing at the provider here. Also owns what a run says while a
//! rotation is due and nobody has placed a key yet.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use super::run::Run;
use super::{RotationError, RunOutcome, Until};
use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::providers::KeyInfo;
use crate::secret::{label_matches, redacted_label};
use crate::state::{KeyRecord, OutcomeKind, Step, Trigger};

impl Run<'_> {
    pub fn assisted(&self) -> bool {
        self.ctx.provider.assisted()
    }

    /// Due, or asked for: take up the placed key, or say where to place one.
    pub async fn start_assisted(
        &mut self,
        trigger: Trigger,
        grace: Duration,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        let trigger = match trigger {
            Trigger::Manual | Trigger::Api => trigger,
            _ => Trigger::Placed,
        };
        match self.take_up_placed(trigger, grace, until).await? {
            Some(outcome) => Ok(outcome),
            None => self.await_key().await,
        }
    }

    /// Not due: a placed key is taken up all the same (placing it is the
    /// operator's request); otherwise `not_due`.
    pub async fn look_for_placed_key(
        &mut self,
        until: Until,
        not_due: RunOutcome,
    ) -> Result<RunOutcome, RotationError> {
        let grace = self.policy.revoke.grace;
        if let Some(outcome) = self.take_up_placed(Trigger::Placed, grace, until).await? {
            return Ok(outcome);
        }
        if self.state.awaiting_key_since.take().is_some() {
            self.save().await?;
        }
        Ok(not_due)
    }

    /// Begins a rotation when a new key is placed; `None` when none is.
    async fn take_up_placed(
        &mut self,
        trigger: Trigger,
        grace: Duration,
        until: Until,
    ) -> Result<Option<RunOutcome>, RotationError> {
        if !self.new_key_placed().await? {
            return Ok(None);
        }
        self.state.awaiting_key_since = None;
        self.begin(trigger, grace).await?;
        self.drive(until).await.map(Some)
    }

    /// Whether the pending value holds a key other than the current one. A
    /// pending value that *is* the current key (AWS puts both labels on a
    /// secret's first version) is no new key: its pending mark is dropped.
    async fn new_key_placed(&self) -> Result<bool, RotationError> {
        let target = &self.policy.target;
        let Some(pending) = self.ctx.store.read_pending(target).await? else {
            return Ok(false);
        };
        let current = self.ctx.store.read_current(target).await?;
        if current.is_some_and(|c| c.expose_secret() == pending.key.expose_secret()) {
            info!(version_id = %pending.version_id, "the pending value is the current key; dropping its pending mark");
            self.may_start("drop pending", self.ctx.store_span).await?;
            self.ctx.store.drop_pending(target).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// claim: the placed pending key becomes this rotation's new key — found
    /// at the provider by its hint, recorded with the pending version id, as
    /// if created and staged. `false` when nothing is placed any more.
    pub async fn claim(&mut self) -> Result<bool, RotationError> {
        let Some(pending) = self.ctx.store.read_pending(&self.policy.target).await? else {
            return Ok(false);
        };
        let label = redacted_label(&pending.key);
        let found = self.find_placed(&pending.key, &label).await?;
        failpoint::hit("claim:before-record");
        let now = self.now();
        let record = KeyRecord {
            id: found.as_ref().map(|k| k.id.clone()),
            label,
            created_at: found.and_then(|k| k.created_at).unwrap_or(now),
            adopted: false,
        };
        let rotation = self.rotation();
        rotation.new_key = Some(record.clone());
        rotation.version_id = Some(pending.version_id.clone());
        rotation.step = Step::Staged;
        self.save().await?;
        self.emit(EventStep::Claim, EventOutcome::Ok, None);
        let key_id = record.id.as_deref().unwrap_or("-");
        info!(key_id, label = %record.label, version_id = %pending.version_id, "claimed the placed key");
        failpoint::hit("claim");
        Ok(true)
    }

    /// The provider's record of the placed key, matched by its redacted
    /// hint; an active key wins over retired ones with the same hint.
    async fn find_placed(
        &self,
        key: &SecretString,
        label: &str,
    ) -> Result<Option<KeyInfo>, RotationError> {
        let keys = (self.provider_call("list keys", || self.ctx.provider.list_keys())).await?;
        let mut matching: Vec<KeyInfo> = (keys.into_iter())
            .filter(|k| label_matches(&k.label, key))
            .collect();
        if matching.len() > 1 {
            matching.retain(|k| !k.disabled);
        }
        let why = match matching.len() {
            1 => return Ok(matching.pop()),
            0 => "is not found at the provider by its hint",
            _ => "matches several active provider keys by its hint",
        };
        warn!(%label, "the placed key {why}: it will NOT be deactivated after the next rotation");
        Ok(None)
    }

    /// The rotation began but the placed key went away before it was
    /// claimed: nothing happened yet, so the rotation just ends.
    pub async fn placed_key_gone(&mut self) -> Result<RunOutcome, RotationError> {
        let rotation = self
            .state
            .in_flight
            .take()
            .expect("a claim runs on a rotation in flight");
        let reason = "the placed key was removed before it was claimed";
        warn!(reason);
        self.finish(&rotation, OutcomeKind::Failed, Some(reason.into()));
        self.save().await?;
        self.await_key().await
    }

    /// Due, nothing placed: tell where to place the key. Recorded (and
    /// announced as an event) once, when the wait starts; not a failure.
    pub async fn await_key(&mut self) -> Result<RunOutcome, RotationError> {
        let place = self.ctx.store.placement(&self.policy.target);
        if let Some(since) = self.state.awaiting_key_since {
            info!(since = %crate::clock::rfc3339(since), "still waiting for a new key to be placed: {place}");
            return Ok(RunOutcome::AwaitingKey { since: Some(since) });
        }
        let now = self.now();
        self.state.awaiting_key_since = Some(now);
        self.save().await?;
        self.emit(EventStep::AwaitKey, EventOutcome::Waiting, None);
        warn!("a rotation is due but no new key has been placed: {place}");
        Ok(RunOutcome::AwaitingKey { since: Some(now) })
    }

    /// What a failed verification means when a person supplied the key.
    pub fn not_verified(&self, reason: String) -> String {
        if !self.assisted() {
            return reason;
        }
        format!(
            "the placed key does not verify: {reason}; the pending value was dropped, the old key stays current; place a working key as pending"
        )
    }
}
