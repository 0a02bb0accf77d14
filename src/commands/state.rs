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
use crate::clock::rfc3339;
use crate::config::{Config, StateLocation};
use crate::state::file::FileStateStore;
use crate::state::{PolicyState, Rotation, StateError, StateStore, Step};

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
fn target_location(to: &str, _config: &Config) -> Result<StateLocation, String> {
    if let Some(dir) = to.strip_prefix("file:") {
        if dir.trim().is_empty() {
            return Err("`file:` needs a directory".into());
        }
        let dir = std::path::absolute(dir).map_err(|e| format!("{dir}: {e}"))?;
        return Ok(StateLocation::File(dir));
    }
    if let Some(table) = to.strip_prefix("dynamodb:") {
        // INTEGRATOR (issue 12, brief A): build
        // `StateLocation::DynamoDb(DynamoConfig { table, ..})` here, with
        // region, endpoint_url and lease from the config's
        // `[daemon.dynamodb]` (exit 2 naming it when that section is missing),
        // validating the table name as the config does.
        let _ = table;
        return Err("this rekey has no DynamoDB state backend yet".into());
    }
    Err("unknown state location; use \"file:DIR\" or \"dynamodb:TABLE\"".into())
}

/// Whether two locations are the same state (a directory reached by two
/// paths counts once).
fn same_location(a: &StateLocation, b: &StateLocation) -> bool {
    match (a, b) {
        (StateLocation::File(a), StateLocation::File(b)) => real_path(a) == real_path(b),
        // INTEGRATOR: two DynamoDb locations are the same when table,
        // region and endpoint_url are; a file and a table never are.
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
        StateLocation::File(dir) => {
            if !create && !dir.join("policies").is_dir() {
                return Ok(None);
            }
            Ok(Some(Arc::new(FileStateStore::open(dir)?)))
        } // INTEGRATOR (issue 12, brief A): `StateLocation::DynamoDb(c)` opens
          // the table without creating it when `create` is false (`None` when
          // it does not exist) and honours `c.create_table` when true.
    }
}

/// What happens to one policy's journal.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Move,
    AlreadyThere,
    Refused(String),
}

/// Everything decided before anything is written.
struct Plan {
    /// Journals in the source, in name order, with their verdict.
    journals: Vec<(PolicyState, Verdict)>,
    /// Leases held on either side, as the store names them.
    leases: Vec<String>,
}

impl Plan {
    fn blocked(&self) -> bool {
        !self.leases.is_empty()
            || (self.journals.iter()).any(|(_, v)| matches!(v, Verdict::Refused(_)))
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

/// Reads both sides and decides each journal's fate.
async fn plan(from: &dyn StateStore, to: Option<&dyn StateStore>) -> Result<Plan, StateError> {
    let mut leases = held(from, "source").await?;
    let in_target = match to {
        Some(to) => {
            leases.extend(held(to, "target").await?);
            to.policies().await?
        }
        None => Vec::new(),
    };
    let mut journals = Vec::new();
    for policy in from.policies().await? {
        let state = match from.load(&policy).await {
            Ok(state) => state,
            Err(e) => {
                let refused = Verdict::Refused(format!("its journal cannot be read: {e}"));
                journals.push((PolicyState::new(&policy), refused));
                continue;
            }
        };
        let there = match (to, in_target.contains(&policy)) {
            (Some(to), true) => Some(to.load(&policy).await),
            _ => None,
        };
        let verdict = verdict(&state, there);
        journals.push((state, verdict));
    }
    Ok(Plan { journals, leases })
}

async fn held(store: &dyn StateStore, side: &str) -> Result<Vec<String>, StateError> {
    let held = store.held_leases().await?;
    Ok(held
        .into_iter()
        .map(|lease| format!("{side} {}: lease held: {lease}", store.describe()))
        .collect())
}

/// Whether `state` may move, given what the target holds for its policy.
fn verdict(state: &PolicyState, there: Option<Result<PolicyState, StateError>>) -> Verdict {
    if let Some(why) = state.in_flight.as_ref().and_then(unfinished) {
        return Verdict::Refused(why);
    }
    match there {
        None => Verdict::Move,
        Some(Ok(existing)) if existing == *state => Verdict::AlreadyThere,
        Some(Ok(_)) => Verdict::Refused(
            "the target already holds a different journal for it (never overwritten)".into(),
        ),
        Some(Err(e)) => Verdict::Refused(format!("the target's journal cannot be read: {e}")),
    }
}

/// Why a rotation in flight cannot move yet: only a promoted rotation
/// waiting out its grace is complete enough to be copied.
fn unfinished(rotation: &Rotation) -> Option<String> {
    let id = &rotation.id;
    if let Some(why) = &rotation.rollback {
        return Some(format!("rotation {id} is being rolled back ({why})"));
    }
    if let Some(create) = &rotation.unconfirmed_create {
        return Some(format!(
            "rotation {id} has a create not yet confirmed since {}",
            rfc3339(create.since)
        ));
    }
    (rotation.step < Step::Promoted).then(|| {
        format!(
            "rotation {id} is at step {}, not yet promoted",
            rotation.step.as_str()
        )
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
    Ok(ok)
}

async fn verdict_after_race(state: &PolicyState, to: &dyn StateStore) -> Verdict {
    verdict(state, Some(to.load(&state.policy).await))
}

/// One line per journal, for a plan that may go ahead.
fn report(config: &Config, plan: &Plan, moving: &str) {
    for (state, verdict) in &plan.journals {
        line(config, state, verdict, moving);
    }
}

/// Every blocker, then what to do about them.
fn refuse(config: &Config, plan: &Plan) {
    report(config, plan, "can move");
    for lease in &plan.leases {
        crate::outln!("  refused: {lease}");
    }
    crate::errln!(
        "error: migration refused, nothing written: {}",
        blocker_advice(plan)
    );
}

fn blocker_advice(plan: &Plan) -> String {
    let mut advice = Vec::new();
    if !plan.leases.is_empty() {
        advice.push("stop every daemon and `rekey rotate` using either state, then run again");
    }
    if (plan.journals.iter()).any(|(s, _)| s.in_flight.as_ref().and_then(unfinished).is_some()) {
        advice.push(
            "let each rotation not yet promoted finish or roll back (`rekey run --once` with the current config)",
        );
    }
    if advice.is_empty() {
        advice.push("see each refused policy above");
    }
    advice.join("; ")
}

fn line(config: &Config, state: &PolicyState, verdict: &Verdict, moving: &str) {
    let policy = &state.policy;
    let gone = match config.policy(policy) {
        Some(_) => "",
        None => " (not in the config any more)",
    };
    match verdict {
        Verdict::Move => crate::outln!("  {policy}: {moving}{}{gone}", grace(state)),
        Verdict::AlreadyThere => crate::outln!("  {policy}: already there (identical){gone}"),
        Verdict::Refused(why) => crate::outln!("  {policy}: refused: {why}{gone}"),
    }
}

/// A promoted rotation's revoke time, which moves with it.
fn grace(state: &PolicyState) -> String {
    match state.in_flight.as_ref().and_then(|r| r.revoke_after) {
        Some(at) => format!(" (in grace: old key revoked after {})", rfc3339(at)),
        None => String::new(),
    }
}

fn next_steps(config_path: &Path, target: &StateLocation, source: &StateLocation, dry_run: bool) {
    let then = if dry_run {
        "after the migration"
    } else {
        "next"
    };
    crate::outln!("{then}:");
    crate::outln!(
        "  1. set daemon.state = \"{}\" in {}",
        shown(target),
        config_path.display()
    );
    crate::outln!("  2. start the daemon(s) with that config");
    crate::outln!(
        "  the source {} is left untouched as a backup; do not start a daemon on it again",
        shown(source)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{PolicyName, RotationId};
    use crate::state::{Trigger, UnconfirmedCreate};

    fn rotation(step: Step) -> Rotation {
        Rotation {
            id: RotationId::parse("r1").unwrap(),
            trigger: Trigger::Schedule,
            started_at: chrono::Utc::now(),
            step,
            grace: std::time::Duration::from_secs(60),
            old_key: None,
            new_key: None,
            version_id: None,
            verified_at: None,
            revoke_after: None,
            revoke_failures: 0,
            rollback: None,
            unconfirmed_create: None,
            restages: 0,
        }
    }

    #[test]
    fn only_a_promoted_rotation_with_nothing_pending_may_move() {
        for step in [Step::Begun, Step::Created, Step::Staged, Step::Verified] {
            let why = unfinished(&rotation(step)).expect("refused");
            assert!(why.contains(step.as_str()), "{why}");
        }
        assert_eq!(unfinished(&rotation(Step::Promoted)), None);
        let mut rolling_back = rotation(Step::Promoted);
        rolling_back.rollback = Some("verify failed".into());
        assert!(unfinished(&rolling_back).unwrap().contains("rolled back"));
        let mut unconfirmed = rotation(Step::Promoted);
        unconfirmed.unconfirmed_create = Some(UnconfirmedCreate {
            since: chrono::Utc::now(),
            cause: "timeout".into(),
        });
        assert!(
            unfinished(&unconfirmed)
                .unwrap()
                .contains("not yet confirmed")
        );
    }

    #[test]
    fn an_identical_target_journal_is_skipped_and_a_different_one_refused() {
        let policy = PolicyName::parse("p").unwrap();
        let state = PolicyState::new(&policy);
        assert_eq!(verdict(&state, None), Verdict::Move);
        assert_eq!(
            verdict(&state, Some(Ok(state.clone()))),
            Verdict::AlreadyThere
        );
        let mut other = state.clone();
        other.failures = 1;
        assert!(
            matches!(verdict(&state, Some(Ok(other))), Verdict::Refused(w) if w.contains("different journal"))
        );
    }
}
