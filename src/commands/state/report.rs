//! What `state migrate` prints: one line per journal, the blockers, and
//! the next steps.

use std::path::Path;

use super::plan::{Plan, Verdict, unfinished};
use super::shown;
use crate::clock::rfc3339;
use crate::config::{Config, StateLocation};
use crate::names::PolicyName;
use crate::state::PolicyState;

/// One line per journal, for a plan that may go ahead.
pub(super) fn report(config: &Config, plan: &Plan, moving: &str) {
    for (state, verdict) in &plan.journals {
        line(config, state, verdict, moving);
    }
    unjournaled(config, plan);
}

/// The config's policies with no journal in the source (never rotated).
pub(super) fn unjournaled(config: &Config, plan: &Plan) {
    let journaled = |name: &PolicyName| plan.journals.iter().any(|(s, _)| s.policy == *name);
    for policy in config.policies.iter().filter(|p| !journaled(&p.name)) {
        crate::outln!("  {}: no journal yet (nothing to move)", policy.name);
    }
}

/// Every blocker, then what to do about them.
pub(super) fn refuse(config: &Config, plan: &Plan) {
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

pub(super) fn line(config: &Config, state: &PolicyState, verdict: &Verdict, moving: &str) {
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

pub(super) fn next_steps(
    config_path: &Path,
    target: &StateLocation,
    source: &StateLocation,
    dry_run: bool,
) {
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
