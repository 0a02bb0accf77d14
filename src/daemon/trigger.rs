//! A rotation asked for from outside the schedule (the admin API's
//! `POST /v1/policies/{name}/rotate`): checked up front, so the caller hears
//! at once why it cannot start, then run by the daemon under its concurrency
//! limit with `Trigger::Api`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Daemon, Mode, is_running, spawn_rotation};
use crate::names::{LeaseKey, PolicyName, RotationId};
use crate::rotation::Request;
use crate::state::{Step, Trigger};

/// Why a requested rotation was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no policy named {0:?}")]
    UnknownPolicy(String),
    #[error("shutting down: no new rotations")]
    ShuttingDown,
    #[error("a rotation of {0} is already running in this daemon")]
    Running(PolicyName),
    #[error(
        "another rotation (another process, or a policy sharing the secret) holds the lease on {0}"
    )]
    LeaseHeld(LeaseKey),
    #[error(
        "rotation {rotation_id} is in grace until {when}; ask again after it finishes, or with grace 0 to revoke the old key now",
        when = crate::clock::rfc3339(.revoke_after.to_owned())
    )]
    InGrace {
        rotation_id: RotationId,
        revoke_after: DateTime<Utc>,
    },
    #[error("cannot read the journal: {0}")]
    Journal(String),
}

impl Daemon {
    /// Starts a rotation of `policy` now, with an optional grace override.
    /// `Ok` means it was handed to a task; how it ends is in the journal,
    /// logs, audit and metrics like any other rotation.
    pub async fn request_rotation(
        &self,
        policy: &str,
        grace: Option<Duration>,
    ) -> Result<(), Refusal> {
        if self.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        let app = self.app();
        let policy = (app.config.policy(policy).cloned())
            .ok_or_else(|| Refusal::UnknownPolicy(policy.to_string()))?;
        if is_running(&self.shared, &policy.name) {
            return Err(Refusal::Running(policy.name));
        }
        let state =
            (app.state.load(&policy.name).await).map_err(|e| Refusal::Journal(e.to_string()))?;
        let now = app.clock.now();
        if let Some(rotation) = &state.in_flight {
            let in_grace =
                rotation.step == Step::Promoted && rotation.revoke_after.is_some_and(|at| at > now);
            if in_grace && grace != Some(Duration::ZERO) {
                return Err(Refusal::InGrace {
                    rotation_id: rotation.id.clone(),
                    revoke_after: rotation.revoke_after.unwrap_or(now),
                });
            }
        }
        let key = &policy.target.lease;
        let legacy = policy.target.legacy_lock_name();
        match app.state.try_lease(key, &legacy).await {
            // Released at once (and waited for: a table lease is released
            // by a call): the rotation takes it again. Should another
            // process win it in between, the run reports itself busy.
            Ok(Some(lease)) => lease.release().await,
            Ok(None) => return Err(Refusal::LeaseHeld(key.clone())),
            Err(e) => return Err(Refusal::Journal(e.to_string())),
        }
        let name = policy.name.clone();
        let request = Request::Manual {
            grace,
            trigger: Trigger::Api,
        };
        if !spawn_rotation(
            &self.tracker,
            &self.shared,
            &app,
            policy,
            request,
            Mode::Forever,
            None,
        ) {
            return Err(Refusal::Running(name));
        }
        let grace = match grace {
            Some(g) => humantime::format_duration(g).to_string(),
            None => "the policy's".into(),
        };
        tracing::info!(policy = %name, %grace, "rotation requested through the admin API");
        Ok(())
    }
}
