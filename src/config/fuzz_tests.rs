//! A seeded config fuzz: a valid TOML or YAML document with one to four
//! fields replaced by hostile values (wrong types, extreme numbers and
//! durations, a key pasted in, path tricks, unicode, deep nesting, unknown
//! fields) and sometimes a hostile `REKEY_*` override, loaded in-process.
//! Every case must end in a config or a refusal, never a panic; every
//! refusal names a field path (or, for a document refused whole, a line);
//! no part of the planted key ever appears in a message; and whatever is
//! accepted is inside the documented bounds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use generate::{base, document, set};
use hostile::{ENV_VARS, FIELDS, broken_text, hostile_text, hostile_value, pick, planted_key};

use super::bounds::{
    MAX_AGE, MAX_CATCH_UP_JITTER, MAX_EXPIRES_AFTER, MAX_FAILURE_BACKOFF, MAX_GRACE,
    MAX_SHUTDOWN_TIMEOUT, MAX_VERIFY_TIMEOUT,
};
use super::load::{SourceFormat, load_str_with_env};
use super::{Config, ConfigError};

mod generate;
mod hostile;

const CASES: usize = 1024;
const SEED: u64 = 0x5EED_C0F1_6000_0008;

/// Why a case failed, or `None` when it behaved.
fn judge(outcome: &Result<Config, ConfigError>, key: &str) -> Option<String> {
    let text = match outcome {
        Ok(config) => return out_of_bounds(config),
        Err(e) => e.to_string(),
    };
    if let Some(piece) = (0..=key.len() - 12)
        .map(|i| &key[i..i + 12])
        .find(|piece| text.contains(piece))
    {
        return Some(format!("the key leaked ({piece}): {text}"));
    }
    match outcome {
        Err(ConfigError::Invalid { problems, .. }) => problems
            .iter()
            .find(|p| !names_a_field(p) || p.message.trim().is_empty())
            .map(|p| format!("a problem without a field path: {p}")),
        Err(ConfigError::Read { message, .. }) => {
            let positioned = message.contains("line ");
            // The few whole-document refusals without a position.
            let fixed = message.starts_with("a number is not finite")
                || message.starts_with("a mapping key is not")
                || message.starts_with("invalid type:")
                || message.starts_with("Got ");
            (!positioned && !fixed).then(|| format!("a refusal without a position: {message}"))
        }
        Ok(_) => None,
    }
}

/// An unknown field's path is its own name, whatever it is; every other
/// problem sits under a known root.
fn names_a_field(problem: &super::ConfigProblem) -> bool {
    let path = problem.path.as_str();
    if problem.message.starts_with("unknown field") {
        return !path.is_empty();
    }
    let roots = [
        "daemon",
        "providers.",
        "stores.",
        "notify.",
        "policy",
        "(top level)",
    ];
    roots.iter().any(|r| path.starts_with(r))
}

/// Whatever is accepted stays inside the documented bounds, so engine
/// arithmetic on it cannot overflow.
fn out_of_bounds(config: &Config) -> Option<String> {
    let d = &config.daemon;
    let daemon_ok = d.catch_up_jitter <= MAX_CATCH_UP_JITTER
        && d.shutdown_timeout <= MAX_SHUTDOWN_TIMEOUT
        && d.failure_backoff.max <= MAX_FAILURE_BACKOFF
        && (1..=1024).contains(&d.max_concurrent_rotations);
    let policy_ok = config.policies.iter().all(|p| {
        p.revoke.grace <= MAX_GRACE
            && p.max_age.is_none_or(|a| a <= MAX_AGE)
            && p.verify.timeout <= MAX_VERIFY_TIMEOUT
            && p.key.expires_after.is_none_or(|e| e <= MAX_EXPIRES_AFTER)
            && p.key.limit.is_none_or(f64::is_finite)
    });
    (!(daemon_ok && policy_ok)).then(|| "an accepted config is out of bounds".to_string())
}

#[test]
fn a_thousand_hostile_configs_are_refused_by_field_never_panic_and_never_echo_a_key() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut accepted, mut refused, mut failures) = (0, 0, Vec::new());
    for case in 0..CASES {
        let key = planted_key(&mut rng);
        let yaml = case % 2 == 1;
        let mut doc = base();
        for _ in 0..rng.random_range(0..=4) {
            let field = pick(&mut rng, FIELDS);
            let path: Vec<&str> = field.split('.').collect();
            let value = hostile_value(&mut rng, &key, 0);
            set(&mut doc, &path, value, &mut rng);
        }
        let env: Vec<(String, String)> = if rng.random_range(0..4) == 0 {
            let var = pick(&mut rng, ENV_VARS).to_string();
            vec![(var, hostile_text(&mut rng, &key))]
        } else {
            Vec::new()
        };
        // One case in ten is a document that does not parse at all.
        let text = if rng.random_range(0..10) == 0 {
            broken_text(&mut rng, &key, yaml)
        } else {
            document(&doc, yaml)
        };
        let format = if yaml {
            SourceFormat::Yaml
        } else {
            SourceFormat::Toml
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            load_str_with_env(&text, format, Path::new("/etc/rekey"), env.clone())
        }));
        let verdict = match &outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(result) => {
                if result.is_ok() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                judge(result, &key)
            }
        };
        if let Some(why) = verdict {
            failures.push(format!(
                "case {case} ({}): {why}\n{text}{env:?}",
                if yaml { "yaml" } else { "toml" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases failed; first:\n{}",
        failures.len(),
        failures[0]
    );
    println!(
        "config fuzz: {CASES} cases (seed {SEED:#x}): {accepted} accepted, {refused} refused, no failure"
    );
    // The generator must exercise both sides, or the fuzz proves nothing.
    assert!(
        accepted >= 20 && refused >= CASES / 2,
        "accepted {accepted}, refused {refused}"
    );
}
