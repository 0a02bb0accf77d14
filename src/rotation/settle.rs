//! Ambiguous outcomes are resolved by reading the world, never by assuming
//! (DESIGN.md). A create that may have made a key is swept for by the
//! rotation id's name; a stage or promote whose answer went wrong is settled
//! by reading the store back; a delete counts only once the provider no
//! longer has the key; and nothing is deleted at the provider while the
//! store's current value is that key.

use std::time::Duration;

use chrono::TimeDelta;
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use super::run::Run;
use super::{RotationError, RunOutcome};
use crate::backoff::Backoff;
use crate::failpoint;
use crate::providers::{Deleted, ProviderError};
use crate::secret::label_matches;
use crate::state::{KeyRecord, Step, UnconfirmedCreate};

/// A listing that finds none of a rotation's keys counts only this long after
/// the ambiguous answer: a key made just before may not be listed yet.
const LISTING_SETTLE: TimeDelta = TimeDelta::seconds(2);
/// Pauses between sweep listings: 500 ms doubling to 10 s, within
/// `daemon.sweep_timeout`.
const SWEEP_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
/// Deletes of one key before a key the provider still lists is an error.
const DELETE_ATTEMPTS: u32 = 3;
/// Pauses before deleting a key the provider still lists again: 250 ms
/// doubling (the cap is never reached in [`DELETE_ATTEMPTS`]).
const DELETE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));

/// How a sweep ended.
pub(super) enum Swept {
    /// Every key the rotation may have made is accounted for; this many were
    /// found and deleted.
    Settled(usize),
    /// Shutdown: the journal still holds the marker, the next run sweeps.
    Stopped,
}

impl Run<'_> {
    /// create answered in a way that may hide a new key: record that before
    /// anything else, sweep until every such key is gone, then close the
    /// rotation as failed (the next pass starts a new one).
    pub async fn create_unconfirmed(
        &mut self,
        e: ProviderError,
    ) -> Result<RunOutcome, RotationError> {
        warn!(error = %e, kind = e.kind(), "create may have made a key although it failed; sweeping by rotation id");
        let since = self.now();
        self.rotation().unconfirmed_create = Some(UnconfirmedCreate {
            since,
            cause: e.to_string(),
        });
        self.save().await?;
        self.close_unconfirmed().await
    }

    /// Sweeps for the keys of an ambiguous create and closes the rotation.
    pub async fn close_unconfirmed(&mut self) -> Result<RunOutcome, RotationError> {
        let found = match self.sweep().await {
            Ok(Swept::Settled(found)) => found,
            Ok(Swept::Stopped) => {
                let rotation_id = self.rotation_ref().id.clone();
                return Ok(RunOutcome::stopped(rotation_id));
            }
            Err(e) => return self.fail(e).await,
        };
        let cause = self
            .rotation_ref()
            .unconfirmed_create
            .as_ref()
            .map(|u| u.cause.clone())
            .unwrap_or_default();
        let e = RotationError::CreateAmbiguous(format!(
            "the answer to create could not be trusted ({cause}); a listing by rotation id found {found} key(s) it had made, now deleted"
        ));
        self.close_failed_create(e).await
    }

    /// Lists by the rotation id's name and deletes what it finds (each delete
    /// confirmed), until a complete listing at least [`LISTING_SETTLE`]
    /// after the ambiguous answer finds nothing more. A listing that fails
    /// is retried; past `daemon.sweep_timeout` this run gives up with
    /// `create_unconfirmed` (the marker stays, the next pass sweeps again).
    pub async fn sweep(&mut self) -> Result<Swept, RotationError> {
        self.refuse_if_new_key_current().await?;
        let since = match &self.rotation_ref().unconfirmed_create {
            Some(u) => u.since,
            None => self.now(),
        };
        let deadline = tokio::time::Instant::now() + self.ctx.sweep_timeout;
        let mut found = 0;
        let mut last_error = None;
        let mut listings = 0u32;
        loop {
            let listed_at = self.now();
            let empty = match self.sweep_once().await {
                Ok(n) => {
                    found += n;
                    n == 0
                }
                Err(e) => {
                    warn!(error = %e, kind = e.kind(), "sweep: listing failed; retrying");
                    last_error = Some(e.to_string());
                    false
                }
            };
            failpoint::hit("sweep");
            if empty && listed_at - since >= LISTING_SETTLE {
                return Ok(Swept::Settled(found));
            }
            let pause = SWEEP_BACKOFF.delay(listings);
            listings = listings.saturating_add(1);
            if tokio::time::Instant::now() + pause > deadline {
                return Err(RotationError::CreateUnconfirmed {
                    rotation_id: self.rotation_ref().id.clone(),
                    message: last_error.unwrap_or_else(|| "the listing never settled".to_string()),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.ctx.cancel.cancelled() => return Ok(Swept::Stopped),
            }
        }
    }

    /// One listing: deletes every key whose name carries this rotation's id.
    async fn sweep_once(&self) -> Result<usize, RotationError> {
        let id = self.rotation_ref().id.clone();
        let keys = self
            .provider_call("list keys", || self.ctx.provider.list_keys())
            .await?;
        let ours: Vec<_> = keys
            .into_iter()
            .filter(|k| k.name.contains(id.as_str()))
            .collect();
        for key in &ours {
            if self.delete_confirmed(&key.id, "delete orphan key").await? == Deleted::Now {
                warn!(key_id = %key.id, name = %key.name, "deleted a key this rotation had made");
            }
        }
        Ok(ours.len())
    }

    /// Deletes `id` and reads back that the provider no longer has it: a 404
    /// (or a success) while the key lives is not "gone". `AlreadyGone` when
    /// the first answer was a 404 that the read-back confirmed.
    pub async fn delete_confirmed(&self, id: &str, what: &str) -> Result<Deleted, RotationError> {
        let mut first = None;
        for attempt in 1..=DELETE_ATTEMPTS {
            self.may_start(what, self.provider_span()).await?;
            let answer = self
                .provider_call(what, || self.ctx.provider.delete_key(id))
                .await?;
            let first = *first.get_or_insert(answer);
            let still = self
                .provider_call("get key", || self.ctx.provider.get_key(id))
                .await?;
            if still.is_none() {
                return Ok(first);
            }
            warn!(key_id = %id, attempt, "the provider still has the key after deleting it");
            tokio::time::sleep(DELETE_BACKOFF.delay(attempt - 1)).await;
        }
        Err(RotationError::DeleteUnconfirmed {
            key_id: id.to_string(),
        })
    }

    /// Disables `id` and reads back that it is disabled (or gone).
    pub async fn disable_confirmed(&self, id: &str) -> Result<(), RotationError> {
        self.may_start("disable old key", self.provider_span())
            .await?;
        self.provider_call("disable old key", || self.ctx.provider.disable_key(id))
            .await?;
        let after = self
            .provider_call("get key", || self.ctx.provider.get_key(id))
            .await?;
        match after {
            Some(key) if !key.disabled => Err(RotationError::DeleteUnconfirmed {
                key_id: id.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the store's current value is this rotation's new key: its
    /// current version is one this rotation staged, or its value is the new
    /// key's (when this process knows it).
    pub async fn new_key_is_current(&self) -> Result<bool, RotationError> {
        let target = &self.policy.target;
        let version = self.ctx.store.current_version(target).await?;
        if version.is_some_and(|v| self.is_our_version(&v)) {
            return Ok(true);
        }
        let Some(secret) = &self.new_secret else {
            return Ok(false);
        };
        let current = self.ctx.store.read_current(target).await?;
        Ok(same(current.as_ref(), secret))
    }

    /// Read right before deleting the new key: never while it is current.
    pub(super) async fn refuse_if_new_key_current(&self) -> Result<(), RotationError> {
        if self.new_key_is_current().await? {
            return Err(self.new_key_is_current_error());
        }
        Ok(())
    }

    fn new_key_is_current_error(&self) -> RotationError {
        let key_id = self
            .rotation_ref()
            .new_key
            .as_ref()
            .and_then(|k| k.id.clone());
        RotationError::NewKeyIsCurrent {
            key_id: key_id.unwrap_or_else(|| "-".into()),
        }
    }

    /// Whether the old key may still be what applications read — asked
    /// right before it is revoked, with one read of the store's current
    /// version (its id and value together). Nothing earlier can stand in
    /// for it: the grace may be hours, and even with none, anyone with
    /// write access may have put a value since promote. Refused when there
    /// is no current value, when it may be the old key (see
    /// [`Run::may_be_old_key`]), or when it is neither this rotation's
    /// version nor its key (changed after promote: refuse rather than guess).
    pub async fn old_key_may_be_current(&self, old: &KeyRecord) -> Result<bool, RotationError> {
        let target = &self.policy.target;
        let current = self.ctx.store.base(target).await?;
        let Some(key) = &current.key else {
            // Read again the way that tells a missing secret (an error).
            self.ctx.store.read_current(target).await?;
            return Ok(true);
        };
        if self.may_be_old_key(key, old).await? {
            return Ok(true);
        }
        let ours = |version: Option<&str>| version.is_some_and(|v| self.is_our_version(v));
        let new = self.new_secret.as_ref();
        if ours(current.version.as_deref()) || new.is_some_and(|s| same(Some(key), s)) {
            return Ok(false);
        }
        // A promote whose bookkeeping was cut short (the file store's
        // sidecar) shows the old version id with the new value.
        let version = self.ctx.store.current_version(target).await?;
        Ok(!ours(version.as_deref()))
    }

    /// Whether `current` may be the old key. The old key always matches
    /// its journaled label, so a key that does not is not the old key — no
    /// call, the normal path. Otherwise values are compared: while this
    /// rotation has not staged again, the base it staged on is the old
    /// value (this process read it); in a later run (after a grace) the
    /// store's previous value is, after promote. A rotation that staged
    /// again on another value has the old value nowhere: refuse rather
    /// than guess.
    async fn may_be_old_key(
        &self,
        current: &SecretString,
        old: &KeyRecord,
    ) -> Result<bool, RotationError> {
        if label_tells(&old.label) && !label_matches(&old.label, current) {
            return Ok(false);
        }
        if self.rotation_ref().restages > 0 {
            return Ok(true);
        }
        if let Some(value) = self.base.as_ref().and_then(|b| b.key.as_ref()) {
            return Ok(same(Some(current), value));
        }
        let previous = self.ctx.store.read_previous(&self.policy.target).await?;
        Ok(previous.is_none_or(|p| same(Some(current), &p)))
    }

    /// Stages the new key again, built from today's current value: after a
    /// restart (what the first staging was built from is gone with the old
    /// process) or when promote found the current value changed. The key is
    /// read back from this rotation's pending version. A promote that landed
    /// before a crash is recorded instead; a pending version that is gone
    /// rolls back.
    pub async fn restage(&mut self) -> Result<(), RotationError> {
        let target = &self.policy.target;
        if self.new_key_is_current().await? {
            if self.rotation_ref().verified_at.is_none() {
                return Err(self.new_key_is_current_error());
            }
            warn!("the new key is already current (a promote landed before its answer or record)");
            return self.record_promoted().await;
        }
        if self.assisted() {
            // The placed value is the person's; it is promoted as placed.
            self.base = Some(self.ctx.store.base(target).await?);
            return Ok(());
        }
        let pending = self.ctx.store.read_pending(target).await?;
        // Any staging of this rotation: a crash may have hit a re-stage
        // after it landed and before its record (the journal names the one
        // before).
        let Some(pending) = pending.filter(|p| self.is_our_version(&p.version_id)) else {
            let reason = "this rotation's pending version is gone from the store".to_string();
            self.rotation().rollback = Some(reason);
            return self.save().await;
        };
        self.rotation().restages += 1;
        self.save().await?;
        let base = self.ctx.store.base(target).await?;
        let token = self.rotation_ref().stage_token();
        self.may_start("stage again", self.ctx.store_span).await?;
        let version = self.ctx.store.stage(target, &token, &pending.key).await?;
        failpoint::hit("restage");
        (self.base, self.new_secret) = (Some(base), Some(pending.key));
        let rotation = self.rotation();
        rotation.version_id = Some(version.clone());
        rotation.verified_at = None;
        rotation.step = Step::Staged;
        self.save().await?;
        info!(version_id = %version, "staged again from the current value");
        Ok(())
    }

    /// stage failed: the put may have landed before its answer went wrong.
    /// `Ok` when a read-back finds this rotation's key staged (or current,
    /// for a first key) and records it; otherwise the original error.
    pub async fn settle_stage(&mut self, e: RotationError) -> Result<(), RotationError> {
        let token = self.rotation_ref().stage_token();
        let Some(secret) = self.new_secret.clone() else {
            return Err(e);
        };
        let target = &self.policy.target;
        let landed = match self.ctx.store.read_pending(target).await {
            Ok(Some(p)) if p.version_id == token => same(Some(&p.key), &secret),
            Ok(_) => matches!(self.new_key_is_current().await, Ok(true)),
            Err(_) => false,
        };
        if !landed {
            return Err(e);
        }
        warn!(error = %e, "stage answered an error but the pending version landed");
        self.record_staged(token).await
    }

    /// A version this rotation staged (or, assisted, claimed).
    pub(super) fn is_our_version(&self, version: &str) -> bool {
        let rotation = self.rotation_ref();
        rotation.owns_version(version) || rotation.version_id.as_deref() == Some(version)
    }
}

/// Whether a key's label has both ends (`sk-or-v1-abc...xyz`): only then
/// does [`label_matches`] tell keys apart.
fn label_tells(label: &str) -> bool {
    let parts = label.split_once("...").or_else(|| label.split_once('…'));
    parts.is_some_and(|(head, tail)| !head.is_empty() && !tail.is_empty())
}

/// Whether a store's value is `key` (values, never labels).
fn same(value: Option<&SecretString>, key: &SecretString) -> bool {
    value.is_some_and(|v| v.expose_secret() == key.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::label_tells;

    #[test]
    fn a_label_tells_keys_apart_only_with_both_ends() {
        assert!(label_tells("sk-or-v1-abc...xyz"));
        assert!(label_tells("sk-or-v1-...xyz"));
        assert!(label_tells("sk-…xyz"));
        assert!(!label_tells("...xyz"));
        assert!(!label_tells("sk-or-v1-..."));
        assert!(!label_tells("no-ellipsis"));
    }
}
