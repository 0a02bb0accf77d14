//! The `rekey` binary: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rekey::commands::{self, MigrateArgs, RotateArgs};
use rekey::logging::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "rekey",
    version,
    about = "Zero-downtime rotation of LLM-provider API keys"
)]
struct Cli {
    /// Log format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Path to the rekey.toml config.
        #[arg(short, long)]
        config: PathBuf,
        /// Do everything due now (including pending revokes), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the config, try every credential reference, print each policy's next due time.
    Check {
        /// Path to the rekey.toml config.
        #[arg(short, long)]
        config: PathBuf,
        /// Also read aws-sm: credential references and make one read-only,
        /// authenticated call per provider entry and store (exit 1 on any failure).
        #[arg(long)]
        online: bool,
    },
    /// Rotate one policy's key.
    Rotate {
        /// Path to the rekey.toml config.
        #[arg(short, long)]
        config: PathBuf,
        /// Name of the policy (as in [[policy]] name).
        policy: String,
        /// Rotate even if not due.
        #[arg(long)]
        now: bool,
        /// Grace before the old key is revoked (0 revokes at once; at most 90d).
        #[arg(long)]
        grace: Option<String>,
        /// Check credentials, store, secret shape and journal; create nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait out the grace and revoke the old key before exiting.
        #[arg(long)]
        wait: bool,
    },
    /// Per policy: current key, age, next due, last result.
    Status {
        /// Path to the rekey.toml config.
        #[arg(short, long)]
        config: PathBuf,
        /// Print JSON (an array with one object per policy) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every key at each provider against what rekey manages (exit 0 clean,
    /// 1 findings: orphan, overdue, missing; 3 incomplete).
    Audit {
        /// Path to the rekey.toml config.
        #[arg(short, long)]
        config: PathBuf,
        /// Print one JSON object (keys, policies, errors, summary).
        #[arg(long)]
        json: bool,
        /// Class keys unused this long as idle (e.g. "30d").
        #[arg(long)]
        idle: Option<String>,
        /// List the orphans to delete; with --yes, delete them.
        #[arg(long)]
        delete_orphans: bool,
        /// With --delete-orphans: really delete.
        #[arg(long)]
        yes: bool,
    },
    /// Operations on the state (journals and leases).
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// The whole cycle locally: simulator + file store.
    Dev {
        /// Where to keep the dev config, secrets and journal (default: a new temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write a fresh config, keys and token even if DIR has a config (an edited one is kept otherwise).
        #[arg(long)]
        reset: bool,
    },
    /// The provider simulator alone.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: String,
        /// Environment variable holding the management key the simulator accepts.
        #[arg(long, default_value = "REKEY_SIM_MANAGEMENT_KEY")]
        management_key_env: String,
        /// JSON file of fault knobs to start with (also settable at run time: PUT /_sim/faults).
        #[arg(long)]
        faults: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Move every journal from the config's daemon.state to another location
    /// (refused while a lease is held or a rotation is not yet promoted).
    Migrate {
        /// Path to the rekey.toml config (its daemon.state is the source).
        #[arg(short, long)]
        config: PathBuf,
        /// The target: "file:DIR" or "dynamodb:TABLE" (region and endpoint
        /// from the config's [daemon.dynamodb]).
        #[arg(long)]
        to: String,
        /// Say what would move; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    rekey::daemon::heap::limit_arenas();
    let cli = Cli::parse();
    logging::init(cli.log_format);
    logging::install_panic_hook();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            rekey::errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(commands::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        let code = dispatch(cli.command).await;
        // Leases let go of just now are released in the table, not left to expire.
        rekey::state::dynamodb::released(EXIT_TIMEOUT).await;
        code
    });
    // After a shutdown timeout, rotations may still be in a provider call or
    // a blocking file write: exit anyway, the journal resumes them.
    runtime.shutdown_timeout(EXIT_TIMEOUT);
    code
}

/// How long tasks still running at exit may hold the process.
const EXIT_TIMEOUT: Duration = Duration::from_millis(500);

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run { config, once } => commands::run(&config, once).await,
        Command::Check { config, online } => commands::check(&config, online).await,
        Command::Rotate {
            config,
            policy,
            now,
            grace,
            dry_run,
            wait,
        } => {
            // Parsed here, not by clap, whose message would repeat the text.
            let grace = match grace.as_deref().map(rekey::config::bounds::parse_grace) {
                None => None,
                Some(Ok(grace)) => Some(grace),
                Some(Err(e)) => {
                    eprintln!("error: --grace: {e}");
                    return ExitCode::from(commands::USAGE);
                }
            };
            commands::rotate(
                &config,
                RotateArgs {
                    policy,
                    now,
                    grace,
                    dry_run,
                    wait,
                },
            )
            .await
        }
        Command::Status { config, json } => commands::status(&config, json).await,
        Command::Audit {
            config,
            json,
            idle,
            delete_orphans,
            yes,
        } => {
            let idle = match idle.as_deref().map(humantime::parse_duration).transpose() {
                Ok(idle) => idle,
                Err(e) => {
                    rekey::errln!("error: --idle: {e} (write e.g. \"30d\")");
                    return ExitCode::from(commands::USAGE);
                }
            };
            let args = commands::AuditArgs {
                json,
                idle,
                delete_orphans,
                yes,
            };
            commands::audit(&config, args).await
        }
        Command::State {
            command:
                StateCommand::Migrate {
                    config,
                    to,
                    dry_run,
                },
        } => commands::migrate(&config, MigrateArgs { to, dry_run }).await,
        #[cfg(feature = "sim")]
        Command::Dev { dir, reset } => rekey::dev::run(dir, reset).await,
        #[cfg(feature = "sim")]
        Command::Sim {
            listen,
            management_key_env,
            faults,
        } => commands::sim(&listen, &management_key_env, faults.as_deref()).await,
        #[cfg(not(feature = "sim"))]
        Command::Dev { .. } => commands::simulator_left_out("dev"),
        #[cfg(not(feature = "sim"))]
        Command::Sim { .. } => commands::simulator_left_out("sim"),
    }
}
