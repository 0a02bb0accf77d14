//! One rotation task: started under the concurrency limit, run while the
//! policy stays due (`--once`), then cooled down, counted and released.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;
use tracing::info;

use super::observe::snapshot_after_run;
use super::report::report;
use super::{Mode, Shared};
use crate::app::App;
use crate::names::PolicyName;
use crate::policy::Policy;
use crate::rotation::{Decision, Request, RunOutcome, Until, decide, run_policy};

/// How long to leave a secret alone that another process is rotating.
const BUSY_COOLDOWN: Duration = Duration::from_secs(10);
/// How often an assisted policy's store is looked at for a placed key.
const ASSISTED_RECHECK: Duration = Duration::from_secs(30);

/// Starts a rotation task unless one runs for this policy already (`false`).
/// The task keeps `app`: a reload does not change a rotation under way. It
/// runs under `permit` (a slot of the concurrency limit) or, without one,
/// waits for a slot first.
pub(super) fn spawn_rotation(
    tracker: &TaskTracker,
    shared: &Arc<Shared>,
    app: &Arc<App>,
    policy: Policy,
    request: Request,
    mode: Mode,
    permit: Option<OwnedSemaphorePermit>,
) -> bool {
    let started = shared
        .running
        .lock()
        .expect("running set poisoned")
        .insert(policy.name.clone());
    if !started {
        return false;
    }
    let shared = shared.clone();
    let app = app.clone();
    tracker.spawn(async move {
        // The semaphore is never closed, so acquire only fails if it were.
        let _permit = match permit {
            Some(permit) => permit,
            None => {
                (shared.limit.clone().acquire_owned().await).expect("rotation semaphore closed")
            }
        };
        // Queued behind the limit when shutdown came: do not start.
        if shared.cancel.is_cancelled() {
            return done(&shared, &policy.name);
        }
        let ctx = app.ctx(&policy);
        let rounds = if mode == Mode::Once { ONCE_ROUNDS } else { 1 };
        let result = run_while_due(&ctx, &policy, request, rounds).await;
        let busy =
            (app.state.lease_period()).map_or(BUSY_COOLDOWN, |period| period.min(BUSY_COOLDOWN));
        let pause = match &result {
            Ok(RunOutcome::Busy) => Some(busy),
            Err(e) if e.is_lease_lost() => Some(busy),
            Err(_) => Some(app.config.daemon.failure_backoff.min),
            Ok(RunOutcome::AwaitingKey { .. }) => Some(ASSISTED_RECHECK),
            Ok(RunOutcome::NotDue { .. }) if ctx.provider.assisted() => Some(ASSISTED_RECHECK),
            Ok(_) => None,
        };
        if let Some(pause) = pause {
            let until = crate::clock::later(app.clock.now(), pause);
            shared
                .cooldown
                .lock()
                .expect("cooldown map poisoned")
                .insert(policy.name.clone(), until);
        }
        if !report(&policy, &result) {
            *shared.failed.lock().expect("failed counter poisoned") += 1;
        }
        // The loop reads the journal of a rotation that ended at its next
        // pass; a `--once` run has no next pass, so the gauges are fed here.
        if mode == Mode::Once {
            snapshot_after_run(&shared, &app, &policy).await;
        }
        done(&shared, &policy.name);
    });
    true
}

/// How many runs a `--once` pass gives one policy: a resumed rotation that
/// finishes may leave the policy due at once (its new key was made before
/// the interruption), and the pass must not exit with work it owes.
const ONCE_ROUNDS: usize = 3;

/// Runs `policy` until it is not due any more, a run does not end in a
/// finished rotation, or `rounds` runs are done. Every finished rotation but
/// the last is reported here; the last result is the caller's.
async fn run_while_due(
    ctx: &crate::rotation::Ctx,
    policy: &Policy,
    request: Request,
    rounds: usize,
) -> Result<RunOutcome, crate::rotation::RotationError> {
    let mut result = run_policy(ctx, policy, request, Until::Promoted).await;
    for _ in 1..rounds {
        if !matches!(result, Ok(RunOutcome::Rotated { .. })) || !still_due(ctx, policy).await {
            break;
        }
        report(policy, &result);
        info!(policy = %policy.name, "still due after finishing the rotation in flight; rotating again");
        result = run_policy(ctx, policy, Request::Due, Until::Promoted).await;
    }
    result
}

/// Whether the journal says `policy` has work to do right now.
async fn still_due(ctx: &crate::rotation::Ctx, policy: &Policy) -> bool {
    match ctx.state.load(&policy.name).await {
        Ok(state) => matches!(
            decide(policy, &state, ctx.clock.now()),
            Decision::Rotate(_) | Decision::Resume
        ),
        Err(_) => false,
    }
}

/// A rotation task ends: the policy may be scheduled again, and the loop
/// reads its journal at the next pass.
fn done(shared: &Shared, policy: &PolicyName) {
    (shared.ended.lock())
        .expect("ended set poisoned")
        .insert(policy.clone());
    shared
        .running
        .lock()
        .expect("running set poisoned")
        .remove(policy);
    shared.finished.notify_one();
}
