//! `rekey state migrate`: moves every policy's journal from the config's
//! `daemon.state` to another state location (one node on files → HA on
//! DynamoDB, or back), through the `StateStore` seam only, so any pair of
//! backends works the same way.
//!
//! Nothing is written unless all of it can move: a lease held on either
//! side (a daemon or `rekey rotate` is working), a rotation not yet promoted
//! (its next step needs the provider and the store, not a copy), a journal
//! that cannot be read, or a target journal that differs from the source's
//! refuses the whole migration, each blocker named. A promoted rotation
//! moves as it is, `revoke_after` included, so a grace in progress is kept.
//! A target journal identical to the source's is skipped, so a re-run after
//! a partial migration finishes the job. The source is never written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::{FAILURE, OK, USAGE, load};
use crate::config::{Config, StateLocation};
use crate::state::dynamodb::DynamoStateStore;
use crate::state::file::FileStateStore;
use crate::state::{PolicyState, StateError, StateStore};
use plan::{Plan, Verdict, plan, verdict};
use report::{line, next_steps, refuse, report, unjournaled};

mod plan;
mod report;

pub struct MigrateArgs {
    /// Where to: `file:DIR` or `dynamodb:TABLE`, as typed.
    pub to: String,
    pub dry_run: bool,
}

/// `rekey state migrate -c FILE --to LOCATION [--dry-run]`: 0 when every
/// journal is in the target (or would be), 1 when anything refused it or a
/// state could not be read or written, 2 for bad usage.
pub async fn migrate(path: &Path, args: MigrateArgs) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let target = match target_location(&args.to, &config) {
        Ok(target) => target,
        Err(message) => {
            crate::errln!("error: --to {:?}: {message}", args.to);
            return ExitCode::from(USAGE);
        }
    };
    let source = config.daemon.state.clone();
    if same_location(&source, &target) {
        crate::errln!(
            "error: --to {:?} is the config's daemon.state ({}): nothing to move",
            args.to,
            shown(&source)
        );
        return ExitCode::from(FAILURE);
    }
    match run(&config, path, &source, &target, args.dry_run).await {
        Ok(code) => code,
        Err(e) => {
            crate::errln!("error: {e}; the source is unchanged");
            ExitCode::from(FAILURE)
        }
    }
}

/// The state location `--to` names. A relative `file:` directory is taken
/// from the current directory (it is a command-line argument), and shown
/// absolute so it can be pasted into the config.
fn target_location(to: &str, config: &Config) -> Result<StateLocation, String> {
    if let Some(dir) = to.strip_prefix("file:") {
        if dir.trim().is_empty() {
            return Err("`file:` needs a directory".into());
        }
        let dir = std::path::absolute(dir).map_err(|e| format!("{dir}: {e}"))?;
        return Ok(StateLocation::File(dir));
    }
    if let Some(table) = to.strip_prefix("dynamodb:") {
        if !crate::config::is_table_name(table) {
            return Err(
                "a DynamoDB table name is 3-255 characters of A-Z, a-z, 0-9, '_', '.', '-'".into(),
            );
        }
        let Some(settings) = &config.daemon.dynamodb else {
            return Err("the config has no [daemon.dynamodb] section (region, endpoint_url) to reach the table with".into());
        };
        return Ok(StateLocation::DynamoDb(settings.for_table(table)));
    }
    Err("unknown state location; use \"file:DIR\" or \"dynamodb:TABLE\"".into())
}

/// Whether two locations are the same state (a directory reached by two
/// paths counts once).
fn same_location(a: &StateLocation, b: &StateLocation) -> bool {
    match (a, b) {
        (StateLocation::File(a), StateLocation::File(b)) => real_path(a) == real_path(b),
        (StateLocation::DynamoDb(a), StateLocation::DynamoDb(b)) => {
            (&a.table, &a.region, &a.endpoint_url) == (&b.table, &b.region, &b.endpoint_url)
        }
        _ => false,
    }
}

fn real_path(dir: &Path) -> PathBuf {
    dir.canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// How a location is written in `daemon.state`.
fn shown(location: &StateLocation) -> String {
    match location {
        StateLocation::File(dir) => format!("file:{}", real_path(dir).display()),
        StateLocation::DynamoDb(table) => format!("dynamodb:{}", table.table),
    }
}

/// The state store at `location`. With `create` false nothing is created
/// (no directory, no table) and `None` means there is no state there yet;
/// with `create` true it is made ready to be written.
pub async fn open_state(
    location: &StateLocation,
    create: bool,
) -> Result<Option<Arc<dyn StateStore>>, StateError> {
    match location {
        StateLocation::DynamoDb(table) if create => {
            Ok(Some(Arc::new(DynamoStateStore::open(table).await?)))
        }
        StateLocation::DynamoDb(table) => Ok(DynamoStateStore::open_existing(table)
            .await?
            .map(|s| Arc::new(s) as Arc<dyn StateStore>)),
        StateLocation::File(dir) => {
            if !create && !dir.join("policies").is_dir() {
                return Ok(None);
            }
            Ok(Some(Arc::new(FileStateStore::open(dir)?)))
        }
    }
}

async fn run(
    config: &Config,
    config_path: &Path,
    source: &StateLocation,
    target: &StateLocation,
    dry_run: bool,
) -> Result<ExitCode, StateError> {
    crate::outln!("from {} to {}", shown(source), shown(target));
    let Some(from) = open_state(source, false).await? else {
        crate::outln!("  no state at {}: nothing to move", shown(source));
        next_steps(config_path, target, source, dry_run);
        return Ok(ExitCode::from(OK));
    };
    // Planned against what exists: a refused migration creates nothing.
    let existing = open_state(target, false).await?;
    let plan = plan(&*from, existing.as_deref()).await?;
    if plan.blocked() {
        refuse(config, &plan);
        return Ok(ExitCode::from(FAILURE));
    }
    if dry_run {
        report(config, &plan, "would move");
        crate::outln!("dry run: nothing written");
        next_steps(config_path, target, source, dry_run);
        return Ok(ExitCode::from(OK));
    }
    let to = match existing {
        Some(to) => to,
        None => created(target).await?,
    };
    if !write(config, &plan, &*to).await? {
        crate::errln!("error: a journal was refused while moving; the others are in the target");
        return Ok(ExitCode::from(FAILURE));
    }
    next_steps(config_path, target, source, dry_run);
    Ok(ExitCode::from(OK))
}

async fn created(target: &StateLocation) -> Result<Arc<dyn StateStore>, StateError> {
    open_state(target, true)
        .await?
        .ok_or_else(|| StateError::Io {
            path: shown(target),
            message: "could not be created".into(),
        })
}

/// Imports every journal to move; `false` if one turned out to be refused.
async fn write(config: &Config, plan: &Plan, to: &dyn StateStore) -> Result<bool, StateError> {
    let mut ok = true;
    for (state, verdict) in &plan.journals {
        let verdict = match verdict {
            Verdict::Move if to.import(state).await? => Verdict::Move,
            // Written meanwhile by someone else: identical or not?
            Verdict::Move => verdict_after_race(state, to).await,
            // A blocked plan never gets here, so these stand as decided.
            other => other.clone(),
        };
        ok &= !matches!(verdict, Verdict::Refused(_));
        line(config, state, &verdict, "moved");
    }
    unjournaled(config, plan);
    Ok(ok)
}

async fn verdict_after_race(state: &PolicyState, to: &dyn StateStore) -> Verdict {
    verdict(state, Some(to.load(&state.policy).await))
}
