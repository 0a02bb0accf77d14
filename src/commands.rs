//! What each CLI command does, given parsed arguments. Exit codes follow
//! DESIGN.md: 0 ok; 1 runtime failure — anything a restart or a retry could
//! fix: an unreadable credential reference (unset variable, missing file,
//! `aws-sm:` secret not readable), AWS or network errors, a failed
//! `check --online`; 2 bad usage or a bad config shape, which a restart
//! cannot fix (systemd's `RestartPreventExitStatus=2` relies on this).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, BuildError};
use crate::clock::rfc3339;
use crate::config::{self, Config, ConfigError};
use crate::daemon::{self, Mode};
use crate::rotation::{self, Request, RunOutcome, Until};
use crate::service::Service;
use crate::state::{StateStore, Trigger};
use crate::status::{self, existing_journal};

mod check;

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;

/// Loads and validates the config, printing every problem on failure.
pub fn load(path: &Path) -> Result<Config, ExitCode> {
    config::load_file(path).map_err(|e| {
        match &e {
            ConfigError::Invalid { .. } => crate::errln!("error: invalid config {e}"),
            ConfigError::Read { .. } => crate::errln!("error: {e}"),
        }
        ExitCode::from(USAGE)
    })
}

/// Builds the whole app. Every failure is a runtime one (1): the config's
/// shape was validated by [`load`]; what is left — a credential that cannot
/// be read, a journal or audit log that cannot be opened — may be fixed
/// without touching the config.
pub async fn build(config: Config) -> Result<Arc<App>, ExitCode> {
    built(App::build(config).await)
}

fn built(result: Result<App, BuildError>) -> Result<Arc<App>, ExitCode> {
    result.map(Arc::new).map_err(|e| {
        crate::errln!("error: {e}");
        ExitCode::from(FAILURE)
    })
}

/// `rekey check`: the config's shape (2 when wrong), each policy's next due
/// time, then every credential reference and, `online`, one read-only call
/// per provider entry and store (1 when any fails; see [`check`](mod@check)).
pub async fn check(path: &Path, online: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let journal = existing_journal(&config);
    let now = chrono::Utc::now();
    crate::outln!(
        "{}: ok, {}",
        path.display(),
        crate::text::plural(config.policies.len(), "policy", "policies")
    );
    for policy in &config.policies {
        let state = match &journal {
            Some(store) => store.load(&policy.name).await.ok(),
            None => None,
        };
        let due = match state.as_ref().filter(|s| s.current.is_some()) {
            Some(state) => match rotation::next_due(policy, state) {
                Some(at) if at <= now => "now (overdue)".to_string(),
                Some(at) => crate::clock::rfc3339(at),
                None => "never (no schedule applies)".to_string(),
            },
            None => "on first run (no key recorded yet)".to_string(),
        };
        let schedule = policy
            .schedule
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        crate::outln!(
            "  {}: provider {}, secret {}:{}, schedule {schedule}, next due {due}",
            policy.name,
            policy.provider,
            policy.target.store,
            policy.target.secret_id
        );
    }
    match check::run(&config, online).await {
        true => ExitCode::from(OK),
        false => ExitCode::from(FAILURE),
    }
}

pub async fn status(path: &Path, json: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let journal = existing_journal(&config);
    let journal = journal.as_ref().map(|j| j as &dyn StateStore);
    let rows = match status::collect(&config.policies, journal, chrono::Utc::now()).await {
        Ok(rows) => rows,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(FAILURE);
        }
    };
    if json {
        // Serializing plain data structs cannot fail.
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("status serializes")
        );
    } else {
        crate::out!("{}", status::render(&rows));
    }
    ExitCode::from(OK)
}

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

/// How long a command waits at exit for alerts still being delivered.
const ALERT_FLUSH: Duration = Duration::from_secs(10);

async fn flush_alerts(app: &App) {
    if !app.observer.flush(ALERT_FLUSH).await {
        crate::errln!("warning: some alerts were still being delivered at exit");
    }
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

/// `rekey run`: the service (admin API, reload, graceful shutdown), or
/// with `--once` one pass of what is due, exiting 1 if any rotation failed.
pub async fn run(path: &Path, once: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !once {
        return serve(path, config).await;
    }
    let app = match build(config).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let summary = daemon::run(app.clone(), Mode::Once).await;
    flush_alerts(&app).await;
    if summary.failed > 0 {
        crate::errln!(
            "{} of {} failed",
            summary.failed,
            crate::text::plural(summary.ran, "rotation", "rotations")
        );
    }
    if summary.unreadable > 0 {
        crate::errln!(
            "{} not rotated: the journal cannot be read (see the errors above)",
            crate::text::plural(summary.unreadable, "policy", "policies")
        );
    }
    if summary.failed > 0 || summary.unreadable > 0 {
        return ExitCode::from(FAILURE);
    }
    ExitCode::from(OK)
}

/// The service: never exits for a credential it cannot read (it waits,
/// `/readyz` 503); SIGTERM exits 0, also while waiting.
async fn serve(path: &Path, config: Config) -> ExitCode {
    let service = match start_when_ready(path, config).await {
        Ok(Some(service)) => service,
        Ok(None) => return ExitCode::from(OK),
        Err(code) => return code,
    };
    let app = service.app();
    service.run().await;
    flush_alerts(&app).await;
    ExitCode::from(OK)
}

/// The service started as `rekey run` starts it: SIGTERM/SIGINT handled,
/// admin port bound, credentials waited for ([`Service::start_when_ready`]).
/// `None`: stopped by a signal while waiting. A port in use or a journal
/// that cannot be opened is a runtime failure (1).
pub async fn start_when_ready(path: &Path, config: Config) -> Result<Option<Service>, ExitCode> {
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::signals::cancel_on_signal(cancel.clone());
    Service::start_when_ready(path, config, cancel)
        .await
        .map_err(|e| {
            crate::errln!("error: {e}");
            ExitCode::from(FAILURE)
        })
}

/// Binds the admin port and resolves its token. Both failures are runtime
/// ones (1): a token reference that cannot be read (its shape was
/// validated) and a port in use.
pub async fn start_service(path: &Path, app: Arc<App>) -> Result<Service, ExitCode> {
    Service::start(path, app).await.map_err(|e| {
        crate::errln!("error: {e}");
        ExitCode::from(FAILURE)
    })
}

/// `rekey sim`: the provider simulator alone, until SIGINT/SIGTERM.
#[cfg(feature = "sim")]
pub async fn sim(listen: &str, management_key_env: &str, faults: Option<&Path>) -> ExitCode {
    let faults = match faults.map(read_faults).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(message) => {
            crate::errln!("error: {message}");
            return ExitCode::from(USAGE);
        }
    };
    let Ok(management_key) = std::env::var(management_key_env) else {
        crate::errln!(
            "error: set {management_key_env} to the management key the simulator should accept"
        );
        return ExitCode::from(USAGE);
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            crate::errln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    crate::outln!("simulator listening on http://{addr}/api/v1");
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::signals::cancel_on_signal(cancel.clone());
    let sim = crate::sim::Simulator::new(&management_key).with_faults(faults);
    match sim
        .serve(listener, async move { cancel.cancelled().await })
        .await
    {
        Ok(()) => ExitCode::from(OK),
        Err(e) => {
            crate::errln!("error: simulator: {e}");
            ExitCode::from(FAILURE)
        }
    }
}

#[cfg(feature = "sim")]
fn read_faults(path: &Path) -> Result<crate::sim::Faults, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a valid faults file: {e}", path.display()))
}

/// `rekey dev` and `rekey sim` in a build without the `sim` feature: both
/// stay in the CLI (so `--help` is the same), say what is missing, exit 2.
pub fn simulator_left_out(command: &str) -> ExitCode {
    crate::errln!("{}", simulator_left_out_message(command));
    ExitCode::from(USAGE)
}

/// What `simulator_left_out` prints for `rekey <command>`.
pub fn simulator_left_out_message(command: &str) -> String {
    format!(
        "error: `rekey {command}` needs the simulator, which this build leaves out \
         (built without the `sim` cargo feature); build with `cargo build --features sim`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_simulator_dev_and_sim_name_the_feature_and_the_build_command() {
        for command in ["dev", "sim"] {
            let message = simulator_left_out_message(command);
            assert!(message.starts_with(&format!("error: `rekey {command}` needs the simulator")));
            assert!(
                message.contains("built without the `sim` cargo feature"),
                "{message}"
            );
            assert!(
                message.ends_with("build with `cargo build --features sim`"),
                "{message}"
            );
        }
        assert_eq!(USAGE, 2);
    }
}
