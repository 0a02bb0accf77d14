//! `rekey rotate`: one policy's rotation from the command line (or its dry
//! run), and the line that says how it ended.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{FAILURE, OK, USAGE, built, flush_alerts, load};
use crate::app::App;
use crate::clock::rfc3339;
use crate::rotation::{self, Request, RunOutcome, Until};
use crate::state::Trigger;

pub struct RotateArgs {
    pub policy: String,
    pub now: bool,
    pub grace: Option<Duration>,
    pub dry_run: bool,
    pub wait: bool,
}

pub async fn rotate(path: &Path, args: RotateArgs) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(policy) = config.policy(&args.policy).cloned() else {
        let names: Vec<_> = config.policies.iter().map(|p| p.name.as_str()).collect();
        crate::errln!(
            "error: no policy named {:?} (policies: {})",
            args.policy,
            names.join(", ")
        );
        return ExitCode::from(USAGE);
    };
    let app = match built(App::build_for(config, &policy.name).await) {
        Ok(app) => app,
        Err(code) => return code,
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let ctx = app.ctx(&policy);
    if args.dry_run {
        return match rotation::plan(&ctx, &policy).await {
            Ok(plan) => {
                crate::out!("{plan}");
                for finding in &plan.findings {
                    crate::errln!("error: dry run of {}: {finding}", policy.name);
                }
                ExitCode::from(if plan.findings.is_empty() {
                    OK
                } else {
                    FAILURE
                })
            }
            Err(e) => {
                crate::errln!("error: dry run of {}: {e}", policy.name);
                ExitCode::from(FAILURE)
            }
        };
    }
    let request = if args.now || args.grace.is_some() {
        Request::Manual {
            grace: args.grace,
            trigger: Trigger::Manual,
        }
    } else {
        Request::Due
    };
    let until = if args.wait || args.grace == Some(Duration::ZERO) {
        Until::Revoked
    } else {
        Until::Promoted
    };
    let result = rotation::run_policy(&ctx, &policy, request, until).await;
    let placement = ctx.store.placement(&policy.target);
    let code = print_outcome(&policy.name, &placement, result);
    flush_alerts(&app).await;
    code
}

/// `placement`: how to place a new key, for an assisted policy still waiting for one.
fn print_outcome(
    policy: &str,
    placement: &str,
    result: Result<RunOutcome, rotation::RotationError>,
) -> ExitCode {
    let (code, line) = match result {
        Ok(RunOutcome::Rotated {
            rotation_id,
            new_key,
            old_key,
        }) => (
            OK,
            format!(
                "rotated: rotation {rotation_id}, current key {} ({}); {old_key}",
                new_key.label,
                new_key.id.unwrap_or_default()
            ),
        ),
        Ok(RunOutcome::InGrace {
            rotation_id,
            revoke_after,
            old_key,
        }) => (
            OK,
            in_grace_line(policy, &rotation_id, revoke_after, old_key.as_ref()),
        ),
        Ok(RunOutcome::NotDue { until, .. }) => (
            OK,
            match until {
                Some(at) => format!("not due before {}; use --now to rotate anyway", rfc3339(at)),
                None => "not due; use --now to rotate anyway".into(),
            },
        ),
        Ok(RunOutcome::AwaitingKey { .. }) => (
            FAILURE,
            format!(
                "waiting for a new key: this provider cannot create keys and none is placed as pending; {placement}, then run this again (a running daemon takes it up by itself)"
            ),
        ),
        Ok(RunOutcome::RolledBack {
            rotation_id,
            reason,
        }) => (
            FAILURE,
            format!("rolled back: rotation {rotation_id}: {reason}; the old key is still current"),
        ),
        Ok(RunOutcome::Busy) => (
            FAILURE,
            "busy: another process is rotating this secret; try again later".into(),
        ),
        Ok(RunOutcome::Stopped {
            rotation_id,
            live_old_key,
        }) => (FAILURE, stopped_line(&rotation_id, live_old_key.as_ref())),
        Err(e) => (FAILURE, format!("failed ({}): {e}", e.kind())),
    };
    if code == OK {
        crate::outln!("{policy}: {line}");
    } else {
        crate::errln!("{policy}: {line}");
    }
    ExitCode::from(code)
}

/// Promoted, the old key waits out the grace. No daemon may be running, so
/// the line names every way the old key gets revoked.
fn in_grace_line(
    policy: &str,
    rotation_id: &str,
    revoke_after: chrono::DateTime<chrono::Utc>,
    old_key: Option<&crate::state::KeyRecord>,
) -> String {
    let Some(key) = old_key.cloned() else {
        return format!("promoted: rotation {rotation_id}; there was no old key to revoke");
    };
    let old = rotation::LiveOldKey { key, revoke_after };
    format!(
        "promoted: rotation {rotation_id}; {} is revoked after {} by the running daemon, or by `rekey run --once` after that time; `rekey rotate {policy} --wait` waits and revokes it then",
        old.name(),
        rfc3339(revoke_after)
    )
}

/// Interrupted by a signal: which key still works, if one does.
fn stopped_line(rotation_id: &str, live_old_key: Option<&rotation::LiveOldKey>) -> String {
    match live_old_key {
        Some(live) => format!("stopped: rotation {rotation_id}: {}", live.message()),
        None => format!("stopped: rotation {rotation_id} interrupted; the next run resumes it"),
    }
}
