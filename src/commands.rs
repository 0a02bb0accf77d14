//! What each CLI command does, given parsed arguments. Exit codes follow
//! DESIGN.md: 0 ok, 1 runtime failure, 2 bad usage or bad config.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, BuildError};
use crate::config::{self, Config, ConfigError, StateLocation};
use crate::daemon::{self, Mode};
use crate::rotation::{self, Request, RunOutcome, Until};
use crate::service::{Service, StartError};
use crate::state::file::FileStateStore;
use crate::state::{StateStore, Trigger};
use crate::status;

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

pub async fn build(config: Config) -> Result<Arc<App>, ExitCode> {
    App::build(config).await.map(Arc::new).map_err(|e| {
        crate::errln!("error: {e}");
        ExitCode::from(if matches!(e, BuildError::Credential { .. }) {
            USAGE
        } else {
            FAILURE
        })
    })
}

pub async fn check(path: &Path) -> ExitCode {
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
                Some(at) => at.to_rfc3339(),
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
    ExitCode::from(OK)
}

/// The journal, if the state directory already exists (check and status never create it).
fn existing_journal(config: &Config) -> Option<FileStateStore> {
    let StateLocation::File(dir) = &config.daemon.state;
    dir.join("policies")
        .is_dir()
        .then(|| FileStateStore::open(dir).ok())
        .flatten()
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
    let app = match build(config).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let ctx = app.ctx(&policy);
    if args.dry_run {
        return match rotation::plan(&ctx, &policy).await {
            Ok(plan) => {
                crate::out!("{plan}");
                ExitCode::from(OK)
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
        }) => (
            OK,
            format!(
                "rotated: rotation {rotation_id}, current key {} ({}), old key revoked",
                new_key.label,
                new_key.id.unwrap_or_default()
            ),
        ),
        Ok(RunOutcome::InGrace {
            rotation_id,
            revoke_after,
        }) => (
            OK,
            format!(
                "promoted: rotation {rotation_id}; the daemon revokes the old key after {revoke_after}"
            ),
        ),
        Ok(RunOutcome::NotDue { until, .. }) => (
            OK,
            match until {
                Some(at) => format!("not due before {at}; use --now to rotate anyway"),
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
        Ok(RunOutcome::Stopped { rotation_id }) => (
            FAILURE,
            format!("stopped: rotation {rotation_id} interrupted; the next run resumes it"),
        ),
        Err(e) => (FAILURE, format!("failed ({}): {e}", e.kind())),
    };
    if code == OK {
        crate::outln!("{policy}: {line}");
    } else {
        crate::errln!("{policy}: {line}");
    }
    ExitCode::from(code)
}

/// `rekey run`: the service (admin API, reload, graceful shutdown), or
/// with `--once` one pass of what is due, exiting 1 if any rotation failed.
pub async fn run(path: &Path, once: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let app = match build(config).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    if !once {
        let code = match start_service(path, app.clone()).await {
            Ok(service) => {
                service.run().await;
                ExitCode::from(OK)
            }
            Err(code) => code,
        };
        flush_alerts(&app).await;
        return code;
    }
    let summary = daemon::run(app.clone(), Mode::Once).await;
    flush_alerts(&app).await;
    if summary.failed > 0 {
        crate::errln!(
            "{} of {} failed",
            summary.failed,
            crate::text::plural(summary.ran, "rotation", "rotations")
        );
        return ExitCode::from(FAILURE);
    }
    ExitCode::from(OK)
}

/// Binds the admin port and resolves its token; a bad token reference is a
/// config error (2), a port in use a runtime failure (1).
pub async fn start_service(path: &Path, app: Arc<App>) -> Result<Service, ExitCode> {
    Service::start(path, app).await.map_err(|e| {
        crate::errln!("error: {e}");
        ExitCode::from(match e {
            StartError::Token(_) => USAGE,
            StartError::Listen { .. } => FAILURE,
        })
    })
}

/// `rekey sim`: the provider simulator alone, until SIGINT/SIGTERM.
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

fn read_faults(path: &Path) -> Result<crate::sim::Faults, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a valid faults file: {e}", path.display()))
}
