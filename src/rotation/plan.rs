//! `rotate --dry-run`: checks everything a rotation would touch — the
//! management credential, the store and the secret's shape, the journal and
//! the lease — and says what would happen, creating nothing.
//!
//! A management key that works is not enough: if the store's current key is
//! unknown to the provider (deleted behind rekey's back, or the management
//! key belongs to another account or workspace), a rotation would not do
//! what the plan says. That is a finding, and the dry run fails.

use std::fmt;

use secrecy::SecretString;

use super::decide::{Decision, decide};
use super::{Ctx, RotationError};
use crate::policy::Policy;
use crate::providers::KeyInfo;
use crate::secret::{label_matches, redacted_label};
use crate::state::PolicyState;

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
    /// What would make the rotation go wrong (each a sentence naming the
    /// key by id or label); the dry run fails when there is any.
    pub findings: Vec<String>,
}

pub async fn plan(ctx: &Ctx, policy: &Policy) -> Result<Plan, RotationError> {
    let keys = ctx.provider.list_keys().await?;
    let current = ctx.store.read_current(&policy.target).await?;
    let state = ctx.state.load(&policy.name).await?;
    let lease = (ctx.state)
        .try_lease(&policy.target.lease, &policy.target.legacy_lock_name())
        .await?;
    let lease_free = lease.is_some();
    if let Some(lease) = lease {
        lease.release().await;
    }
    let current_label = current.as_ref().map(redacted_label);
    let journal_agrees = state.current.as_ref().map(|c| &c.label) == current_label.as_ref();
    let findings = match &current {
        Some(key) if state.in_flight.is_none() => {
            let known = Known { ctx, keys: &keys };
            let finding = known.current_key(policy, &state, key, journal_agrees);
            finding.await?.into_iter().collect()
        }
        _ => Vec::new(),
    };
    Ok(Plan {
        policy: policy.name.to_string(),
        provider_keys: keys.len(),
        findings,
        in_flight: state
            .in_flight
            .as_ref()
            .map(|r| (r.id.to_string(), r.step.as_str().to_string())),
        current_label,
        journal_agrees,
        lease_free,
        decision: decide(policy, &state, ctx.clock.now()),
        assisted: ctx.provider.assisted(),
    })
}

/// What the provider knows: its listing, and `get` for ids not in it.
struct Known<'a> {
    ctx: &'a Ctx,
    keys: &'a [KeyInfo],
}

impl Known<'_> {
    /// `None`: no key with this id at the provider.
    async fn by_id(&self, id: &str) -> Result<Option<KeyInfo>, RotationError> {
        if let Some(key) = self.keys.iter().find(|k| k.id == id) {
            return Ok(Some(key.clone()));
        }
        // The listing may be one page or one scope; `get` is authoritative.
        Ok(self.ctx.provider.get_key(id).await?)
    }

    /// A finding about the store's current key `key`, if any: about the
    /// key the journal records for it (`journal_agrees`), else about the
    /// one adoption would pick.
    async fn current_key(
        &self,
        policy: &Policy,
        state: &PolicyState,
        key: &SecretString,
        journal_agrees: bool,
    ) -> Result<Option<String>, RotationError> {
        match state.current.as_ref().filter(|_| journal_agrees) {
            Some(record) => match &record.id {
                Some(id) => self.recorded(id).await,
                // Adopted without an id: known not to be revoked, warned at adoption.
                None => Ok(None),
            },
            None => self.adoption(policy, key).await,
        }
    }

    /// The journal's current key `id` is gone or disabled at the provider.
    async fn recorded(&self, id: &str) -> Result<Option<String>, RotationError> {
        let entry = self.ctx.provider.entry();
        Ok(match self.by_id(id).await? {
            None => Some(format!(
                "store's current key (id {id}) is unknown to provider {entry}: it was deleted outside rekey, \
                 or the management key belongs to another account or workspace; \
                 rotation would replace it and find nothing to revoke"
            )),
            Some(info) if info.disabled => Some(format!(
                "store's current key (id {id}) is disabled at provider {entry}: applications using it fail; \
                 rotation would replace it"
            )),
            Some(_) => None,
        })
    }

    /// Adoption (see `adopt.rs`) would not find the store's key: by
    /// `adopt.key_id` when set, else by its label among live keys.
    async fn adoption(
        &self,
        policy: &Policy,
        key: &SecretString,
    ) -> Result<Option<String>, RotationError> {
        let (entry, label) = (self.ctx.provider.entry(), redacted_label(key));
        if let Some(id) = &policy.adopt.key_id {
            return Ok(self.by_id(id).await?.is_none().then(|| {
                format!(
                    "store's current key ({label}, adopt.key_id {id}) is unknown to provider {entry}: \
                     rotation would adopt it without an id and never revoke it"
                )
            }));
        }
        let mut live = self.keys.iter().filter(|k| !k.disabled);
        if live.any(|k| label_matches(&k.label, key)) {
            return Ok(None);
        }
        Ok(Some(format!(
            "store's current key ({label}) is unknown to provider {entry} (none of the {} visible has its label): \
             rotation would adopt it without an id and never revoke it; check that the management key is for the \
             account or workspace that issued it, or name the key with adopt.key_id",
            crate::text::plural(self.keys.len(), "key", "keys")
        )))
    }
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
