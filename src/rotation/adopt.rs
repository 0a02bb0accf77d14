//! Keeps the journal's idea of the current key in line with the store:
//! on first run (or after someone replaced the secret by hand) the key in the
//! store is adopted — found at the provider by its label, or by `adopt.key_id`
//! — so that the first rotation can revoke it.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tracing::{info, warn};

use super::RotationError;
use super::run::Run;
use crate::secret::{label_matches, redacted_label};
use crate::state::KeyRecord;

/// Reconciles `run.state.current` with the store's current key (no rotation in flight).
pub(super) async fn reconcile(run: &mut Run<'_>) -> Result<(), RotationError> {
    let target = &run.policy.target;
    // One read gives the key and the version a rotation builds on (kept for
    // its staging). No key: ask again the way that tells a missing secret.
    let base = run.ctx.store.base(target).await?;
    let in_store = match base.key.clone() {
        Some(key) => {
            run.seen_current = Some(base);
            Some(key)
        }
        None => run.ctx.store.read_current(target).await?,
    };
    let Some(key) = in_store else {
        if run.state.current.take().is_some() {
            warn!(
                "the store holds no key although one was recorded; the next rotation creates one"
            );
            run.save().await?;
        }
        return Ok(());
    };
    let label = redacted_label(&key);
    if run.state.current.as_ref().is_some_and(|c| c.label == label) {
        return Ok(());
    }
    if run.state.current.is_some() {
        warn!(%label, "the store's current key is not the one rekey put there; adopting it");
    }
    let record = adopt(run, &key, label).await?;
    run.state.current = Some(record.clone());
    run.save().await?;
    run.emit_adopted(&record);
    Ok(())
}

async fn adopt(
    run: &Run<'_>,
    key: &SecretString,
    label: String,
) -> Result<KeyRecord, RotationError> {
    let found = find_at_provider(run, key).await?;
    let (id, created_at) = match found {
        Some((id, created_at)) => {
            info!(key_id = %id, %label, "adopted the existing key; it is revoked after the first rotation");
            (Some(id), created_at.unwrap_or_else(|| run.now()))
        }
        None => {
            warn!(
                %label,
                "adopting a key that cannot be found at the provider: it will NOT be revoked after the first rotation \
                 (set adopt.key_id in the policy to name it)"
            );
            (None, run.now())
        }
    };
    Ok(KeyRecord {
        id,
        label,
        created_at,
        adopted: true,
    })
}

async fn find_at_provider(
    run: &Run<'_>,
    key: &SecretString,
) -> Result<Option<(String, Option<DateTime<Utc>>)>, RotationError> {
    if let Some(id) = &run.policy.adopt.key_id {
        let info = run
            .provider_call("get key", || run.ctx.provider.get_key(id))
            .await?;
        return Ok(info.map(|k| (k.id, k.created_at)));
    }
    let keys = run
        .provider_call("list keys", || run.ctx.provider.list_keys())
        .await?;
    let mut matches = keys
        .into_iter()
        .filter(|k| !k.disabled && label_matches(&k.label, key));
    match (matches.next(), matches.next()) {
        (Some(k), None) => Ok(Some((k.id, k.created_at))),
        (Some(_), Some(_)) => {
            warn!("several provider keys match the stored key's label; set adopt.key_id to choose");
            Ok(None)
        }
        _ => Ok(None),
    }
}
