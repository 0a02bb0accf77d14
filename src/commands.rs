//! What each CLI command does, given parsed arguments. Exit codes follow
//! DESIGN.md: 0 ok; 1 runtime failure — anything a restart or a retry could
//! fix: an unreadable credential reference (unset variable, missing file,
//! `aws-sm:` secret not readable), AWS or network errors, a failed
//! `check --online`; 2 bad usage or a bad config shape, which a restart
//! cannot fix (systemd's `RestartPreventExitStatus=2` relies on this).
//!
//! This module owns the exit codes, loading and building shared by every
//! command, and `check`, `status` and `sim`; `rotate` and `run` have their
//! own modules, and so has `state migrate`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, BuildError};
use crate::config::{self, Config, ConfigError, StateLocation};
use crate::rotation;
use crate::status;

mod audit;
mod check;
mod rotate;
mod run;
mod state;

pub use audit::{AuditArgs, audit};
pub use rotate::{RotateArgs, rotate};
pub use run::{run, start_service, start_when_ready};
pub use state::{MigrateArgs, migrate, open_state};

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
    // A journal that cannot be read only loses the due times: check goes on.
    // A table is not read offline (check needs no network without --online).
    let (journal, unread) = match &config.daemon.state {
        StateLocation::DynamoDb(_) if !online => (None, Some("unknown offline".to_string())),
        _ => match status::journal_to_read(&config).await {
            Ok(journal) => (journal, None),
            Err(e) => (None, Some(format!("unknown (journal not read: {e})"))),
        },
    };
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
            None => match &unread {
                Some(why) => why.clone(),
                None => "on first run (no key recorded yet)".to_string(),
            },
        };
        let schedule = policy
            .schedule
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let schedule = match policy.spread_offset() {
            offset if offset.is_zero() => schedule,
            offset => format!(
                "{schedule} +{} (spread)",
                crate::config::bounds::human(offset)
            ),
        };
        crate::outln!(
            "  {}: provider {}, secret {}:{}, schedule {schedule}, next due {due}",
            policy.name,
            policy.provider,
            policy.target.store,
            policy.target.secret_id
        );
    }
    for warning in crate::config::warnings(&config) {
        crate::outln!("warning: {warning}");
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
    let journal = match status::journal_to_read(&config).await {
        Ok(journal) => journal,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(FAILURE);
        }
    };
    let journal = journal.as_deref();
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

/// How long a command waits at exit for alerts still being delivered.
const ALERT_FLUSH: Duration = Duration::from_secs(10);

async fn flush_alerts(app: &App) {
    if !app.observer.flush(ALERT_FLUSH).await {
        crate::errln!("warning: some alerts were still being delivered at exit");
    }
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
