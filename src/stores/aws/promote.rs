//! Promote's compare-and-swap on Secrets Manager. On the normal path it is
//! one `UpdateSecretVersionStage` moving `AWSCURRENT` onto the new version
//! with `RemoveFromVersionId` = the version the new one was built from —
//! AWS refuses the move when that version no longer holds `AWSCURRENT`, so
//! the compare needs no read before it — then one dropping `AWSPENDING`.
//! Any error from the move is settled by reading the stages back: it may
//! have landed before its answer went wrong, or been refused because the
//! current version moved.

use tracing::warn;

use super::{AwsSecretsManager, CURRENT, PENDING, Stages, holder};
use crate::policy::Target;
use crate::stores::{Base, Promoted, SecretStore, StoreError};

impl AwsSecretsManager {
    /// Moves `AWSCURRENT` from `old` (the base) onto `version_id`, then
    /// drops `AWSPENDING` from `version_id`: two calls when all goes well.
    pub(super) async fn move_current(
        &self,
        target: &Target,
        version_id: &str,
        old: &str,
    ) -> Result<Promoted, StoreError> {
        let moved = self
            .move_stage(target, CURRENT, Some(version_id), Some(old))
            .await;
        let pending = match moved {
            // The move landed, so `version_id` exists and carries the
            // AWSPENDING label this rotation put on it (verify read it).
            Ok(()) => Some(version_id.to_string()),
            Err(e) => {
                let stages = (self.stages(target).await?).ok_or_else(|| self.not_found(target))?;
                match holder(&stages, CURRENT) {
                    Some(current) if current == version_id => {
                        warn!(error = %e, "AWSCURRENT moved although the call answered with an error");
                    }
                    Some(current) if current == old => return Err(e),
                    _ => {
                        // RemoveFromVersionId no longer matched: someone else moved it.
                        warn!(error = %e, "the current version moved while promoting");
                        return Ok(Promoted::CurrentMoved);
                    }
                }
                holder(&stages, PENDING).map(str::to_string)
            }
        };
        if let Some(pending) = pending
            && let Err(e) = self.move_stage(target, PENDING, None, Some(&pending)).await
        {
            warn!(error = %e, "promoted, but AWSPENDING could not be removed (the next stage moves it)");
        }
        Ok(Promoted::Done)
    }

    /// The compare read from the stages, for a base without a current
    /// version (a first key) or naming `version_id` itself.
    pub(super) async fn promote_described(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError> {
        let stages = self.existing_version(target, version_id).await?;
        let current = holder(&stages, CURRENT);
        if current != Some(version_id) && current != base.version.as_deref() {
            return Ok(Promoted::CurrentMoved);
        }
        match self.swap(target, version_id, &stages).await {
            Ok(()) => Ok(Promoted::Done),
            // RemoveFromVersionId no longer matched: someone else moved it.
            Err(e) if self.current_version(target).await?.as_deref() != current => {
                warn!(error = %e, "the current version moved while promoting");
                Ok(Promoted::CurrentMoved)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves `AWSCURRENT` from `current` onto `version_id`, then drops
    /// `AWSPENDING`. Either call may land and still answer with an error (a
    /// 5xx, a reset, the SDK's retry of a move that already landed refused),
    /// so a failure is settled by reading the stages back: the move counts
    /// once `AWSCURRENT` is on `version_id`; a pending label left behind is
    /// only logged (the next stage moves it).
    pub(super) async fn swap(
        &self,
        target: &Target,
        version_id: &str,
        stages: &Stages,
    ) -> Result<(), StoreError> {
        let current = holder(stages, CURRENT);
        if current != Some(version_id) {
            // AWS moves AWSPREVIOUS onto the version that loses AWSCURRENT.
            let moved = self
                .move_stage(target, CURRENT, Some(version_id), current)
                .await;
            if let Err(e) = moved {
                if self.current_version(target).await?.as_deref() != Some(version_id) {
                    return Err(e);
                }
                warn!(error = %e, "AWSCURRENT moved although the call answered with an error");
            }
        }
        if let Some(pending) = holder(stages, PENDING)
            && let Err(e) = self.move_stage(target, PENDING, None, Some(pending)).await
        {
            warn!(error = %e, "promoted, but AWSPENDING could not be removed (the next stage moves it)");
        }
        Ok(())
    }
}
