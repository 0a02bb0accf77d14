//! `rotate --dry-run`: checks everything a rotation would touch — the
//! management credential, the store and the secret's shape, the journal and
//! the lease — and says what would happen, creating nothing.

use std::fmt;

use super::decide::{Decision, decide};
use super::{Ctx, RotationError};
use crate::policy::Policy;
use crate::secret::redacted_label;

#[derive(Debug, Clone)]
pub struct Plan {
    pub policy: String,
    /// Keys the management credential can see at the provider.
    pub provider_keys: usize,
    /// Redacted label of the key in the store, if any.
    pub current_label: Option<String>,
    /// Whether the journal's current key is the store's.
    pub journal_agrees: bool,
    /// `(rotation id, step)` of a rotation in flight.
    pub in_flight: Option<(String, String)>,
    pub lease_free: bool,
    pub decision: Decision,
    /// Assisted: a person places the new key; rekey claims it.
    pub assisted: bool,
}

pub async fn plan(ctx: &Ctx, policy: &Policy) -> Result<Plan, RotationError> {
    let provider_keys = ctx.provider.list_keys().await?.len();
    let current = ctx.store.read_current(&policy.target).await?;
    let state = ctx.state.load(&policy.name).await?;
    let lease_free = ctx
        .state
        .try_lease(&policy.target.lock_key())
        .await?
        .is_some();
    let current_label = current.as_ref().map(redacted_label);
    let journal_agrees = state.current.as_ref().map(|c| &c.label) == current_label.as_ref();
    Ok(Plan {
        policy: policy.name.clone(),
        provider_keys,
        in_flight: state
            .in_flight
            .as_ref()
            .map(|r| (r.id.clone(), r.step.as_str().to_string())),
        current_label,
        journal_agrees,
        lease_free,
        decision: decide(policy, &state, ctx.clock.now()),
        assisted: ctx.provider.assisted(),
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "policy {}: dry run, nothing created", self.policy)?;
        writeln!(
            f,
            "  provider: management key works ({} visible)",
            crate::text::plural(self.provider_keys, "key", "keys")
        )?;
        match &self.current_label {
            Some(label) => writeln!(f, "  store: current key {label}")?,
            None => writeln!(
                f,
                "  store: no current key (the rotation creates the first one)"
            )?,
        }
        if self.current_label.is_some() && !self.journal_agrees {
            writeln!(
                f,
                "  journal: does not know this key; it is adopted before rotating"
            )?;
        }
        if let Some((id, step)) = &self.in_flight {
            writeln!(
                f,
                "  journal: rotation {id} in flight at step {step}; it is finished first"
            )?;
        }
        if !self.lease_free {
            writeln!(
                f,
                "  lease: another process is rotating this secret right now"
            )?;
        }
        let why = match &self.decision {
            Decision::Rotate(t) => format!("due now ({})", t.as_str()),
            Decision::Resume => "resume the rotation in flight".into(),
            Decision::Wait {
                until: Some(at), ..
            } => format!("not due before {at}"),
            Decision::Wait { until: None, .. } => "not due".into(),
        };
        writeln!(f, "  schedule: {why}")?;
        let start = match self.assisted {
            true => "claim the key placed as pending",
            false => "create -> stage",
        };
        writeln!(
            f,
            "  plan: {start} -> verify -> promote -> grace -> revoke the old key"
        )?;
        Ok(())
    }
}
