//! How the end of a rotation run is logged, and whether it counts as failed.

use tracing::{error, info, warn};

use crate::clock::rfc3339;
use crate::policy::Policy;
use crate::rotation::RunOutcome;

/// Logs the end of a run; `false` when it failed.
pub(super) fn report(
    policy: &Policy,
    result: &Result<RunOutcome, crate::rotation::RotationError>,
) -> bool {
    let name = &policy.name;
    match result {
        Ok(RunOutcome::Rotated { rotation_id, .. }) => {
            info!(policy = %name, rotation = %rotation_id, "rotated")
        }
        Ok(RunOutcome::InGrace {
            rotation_id,
            revoke_after,
            ..
        }) => {
            info!(policy = %name, rotation = %rotation_id, revoke_after = %rfc3339(*revoke_after), "promoted; old key revoked after the grace")
        }
        Ok(RunOutcome::RolledBack {
            rotation_id,
            reason,
        }) => {
            error!(policy = %name, rotation = %rotation_id, %reason, "rotation rolled back");
            return false;
        }
        Ok(RunOutcome::Stopped {
            rotation_id,
            live_old_key: None,
        }) => {
            info!(policy = %name, rotation = %rotation_id, "stopped for shutdown")
        }
        Ok(RunOutcome::Stopped {
            rotation_id,
            live_old_key: Some(live),
        }) => {
            warn!(policy = %name, rotation = %rotation_id, "stopped for shutdown: {}", live.message())
        }
        Ok(RunOutcome::Busy) => {
            info!(policy = %name, "skipped: another process or replica holds the secret's lease")
        }
        Ok(RunOutcome::NotDue { .. }) => {}
        Ok(RunOutcome::AwaitingKey { since }) => {
            let since = since.map(rfc3339);
            info!(policy = %name, since = since.as_deref().unwrap_or("-"), "due; waiting for a new key to be placed as pending")
        }
        Err(e) if e.is_lease_lost() => {
            warn!(policy = %name, error = %e, kind = e.kind(), "rotation stopped: this replica lost the secret's lease; the holder resumes it from the journal")
        }
        Err(e) => {
            error!(policy = %name, error = %e, kind = e.kind(), "rotation failed");
            return false;
        }
    }
    true
}
