//! Checks that relate values to each other: the grace period against the
//! rotation interval, key expiry against max_age, and policies against one
//! another (unique names, no two writers of one field).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::at::{At, Origin};
use super::problems::Problems;
use super::{human, quoted};
use crate::names::{LeaseKey, PolicyName};
use crate::policy::{Format, KeyTemplate, Policy, RevokeSpec};
use crate::schedule::Schedule;

/// A schedule as [`Schedule::parse`] answered it.
type Parsed = Result<Schedule, String>;

/// Each distinct (expression, time zone) parsed once and its shortest tick
/// gap computed once per validation pass: a fleet of thousands of policies
/// shares a handful of schedules, and sampling one costs hundreds of tick
/// computations.
#[derive(Default)]
pub(super) struct Intervals {
    seen: RefCell<HashMap<(String, Tz), Option<Duration>>>,
    parsed: RefCell<HashMap<(String, Option<Tz>), Parsed>>,
}

impl Intervals {
    /// [`Schedule::parse`], cached by the expression as written and the zone.
    pub(super) fn parse(&self, expr: &str, tz: Option<Tz>) -> Result<Schedule, String> {
        let key = (expr.to_string(), tz);
        if let Some(known) = self.parsed.borrow().get(&key) {
            return known.clone();
        }
        let parsed = Schedule::parse(expr, tz);
        self.parsed.borrow_mut().insert(key, parsed.clone());
        parsed
    }

    /// [`Schedule::min_interval`] from `now`, cached (`now` is fixed for the pass).
    pub(super) fn min_interval(&self, schedule: &Schedule, now: DateTime<Utc>) -> Option<Duration> {
        let key = (schedule.expression.clone(), schedule.timezone());
        if let Some(known) = self.seen.borrow().get(&key) {
            return *known;
        }
        let interval = schedule.min_interval(now);
        self.seen.borrow_mut().insert(key, interval);
        interval
    }
}

/// The old key must be revoked before the next rotation starts, or keys pile up.
pub(super) fn check_grace(
    at: &mut At,
    (schedule, intervals): (Option<&Schedule>, &Intervals),
    max_age: Option<Duration>,
    revoke: &RevokeSpec,
    now: DateTime<Utc>,
) {
    let from_schedule = schedule.and_then(|s| intervals.min_interval(s, now));
    let interval = match (from_schedule, max_age) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => match a.or(b) {
            Some(interval) => interval,
            None => return,
        },
    };
    if revoke.grace >= interval {
        let message = format!(
            "grace {} must be shorter than the rotation interval {} (the smaller of max_age and the shortest gap between schedule ticks)",
            human(revoke.grace),
            human(interval)
        );
        at.push("revoke.grace", message);
    }
}

/// A key must outlive its turn: it stays current until max_age, then serves the grace period.
pub(super) fn check_expiry(
    at: &mut At,
    max_age: Option<Duration>,
    key: &KeyTemplate,
    revoke: &RevokeSpec,
) {
    let (Some(expires), Some(max_age)) = (key.expires_after, max_age) else {
        return;
    };
    if expires <= max_age.saturating_add(revoke.grace) {
        let message = format!(
            "{} would expire keys before they are replaced and revoked (max_age {} + grace {})",
            human(expires),
            human(max_age),
            human(revoke.grace)
        );
        at.push("key.expires_after", message);
    }
}

/// Each repeat names the first policy of that name (a map, not a scan of
/// every earlier policy: fleets have thousands).
pub(super) fn duplicate_names(p: &mut Problems, parsed: &[(Origin, Policy)]) {
    let mut first: HashMap<&PolicyName, &Origin> = HashMap::with_capacity(parsed.len());
    for (j, later) in parsed {
        let i = *first.entry(&later.name).or_insert(j);
        if i != j {
            p.push(
                j.path("name"),
                format!(
                    "duplicate policy name {:?} (also {i}){}",
                    later.name,
                    j.member_note()
                ),
            );
        }
    }
}

/// Two policies may share a secret only as different fields of one json or
/// env secret. "One secret" is its identity (the lease key), so two store
/// entries or an ARN and a name that reach one secret are caught too.
/// Only policies of one lease can clash: each is compared with the earlier
/// ones of its lease, in order, so the first clash is named as before.
pub(super) fn conflicting_targets(p: &mut Problems, parsed: &[(Origin, Policy)]) {
    let mut by_lease: HashMap<&LeaseKey, Vec<&(Origin, Policy)>> = HashMap::new();
    for entry in parsed {
        let (j, later) = entry;
        let b = &later.target;
        let earlier_of_lease = by_lease.entry(&b.lease).or_default();
        let clash = earlier_of_lease.iter().copied().find(|(_, earlier)| {
            let a = &earlier.target;
            a.lease == b.lease
                && (a.format != b.format || a.format == Format::Raw || a.field == b.field)
        });
        if let Some((i, earlier)) = clash {
            let a = &earlier.target;
            let what = match (&b.field, b.format == a.format) {
                (Some(field), true) => format!("the same field {} of", quoted(field)),
                _ => "the same".to_string(),
            };
            let spelled = if (&a.store, &a.secret_id) == (&b.store, &b.secret_id) {
                String::new()
            } else {
                format!(
                    ", which it names as {} in store {} (both are {})",
                    quoted(&a.secret_id),
                    quoted(&a.store),
                    b.lease
                )
            };
            let message = format!(
                "writes {what} secret {} in store {} as {i} ({:?}){spelled} (policy {:?}){}",
                quoted(&b.secret_id),
                quoted(&b.store),
                earlier.name,
                later.name,
                j.member_note()
            );
            p.push(j.path("target"), message);
        }
        earlier_of_lease.push(entry);
    }
}

/// In a file store a secret is a file: another secret cannot live under it
/// (`a` and `a/b` would need `a` to be a file and a directory at once).
pub(super) fn nested_file_secrets(
    p: &mut Problems,
    parsed: &[(Origin, Policy)],
    file_stores: &BTreeSet<String>,
) {
    let files: BTreeMap<(&str, &str), &Origin> = (parsed.iter())
        .filter(|(_, policy)| file_stores.contains(policy.target.store.as_str()))
        .map(|(i, policy)| {
            (
                (
                    policy.target.store.as_str(),
                    policy.target.secret_id.as_str(),
                ),
                i,
            )
        })
        .collect();
    for (&(store, id), &j) in &files {
        let parent = (id.match_indices('/'))
            .map(|(end, _)| &id[..end])
            .find_map(|dir| files.get(&(store, dir)));
        if let Some(i) = parent {
            p.push(
                j.path("target.secret_id"),
                format!(
                    "lies under {i}'s secret in file store {}: a secret is a file, so no other secret can be inside it{}",
                    quoted(store),
                    j.member_note()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::config::validate::tests::problems_with;

    fn policy(name: &str, extra: &str) -> String {
        format!("[[policy]]\nname = \"{name}\"\nprovider = \"or\"\n{extra}\n")
    }

    #[test]
    fn grace_counts_against_the_short_dst_day_of_a_local_schedule() {
        // 03:00 Berlin daily: on 29 March the gap is 23h, so 23h of grace is too long.
        let berlin = "schedule = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n\
                      target = { store = \"local\", secret_id = \"s\" }\n";
        let too_long = problems_with(&policy(
            "p",
            &format!("{berlin}revoke = {{ grace = \"23h\" }}"),
        ));
        assert_eq!(too_long.len(), 1);
        assert!(too_long[0].starts_with(
            "policy[0].revoke.grace: grace 23h must be shorter than the rotation interval 23h"
        ));
        let fits = problems_with(&policy(
            "p",
            &format!("{berlin}revoke = {{ grace = \"22h\" }}"),
        ));
        assert!(fits.is_empty(), "{fits:?}");
    }

    #[test]
    fn grace_counts_against_max_age_when_it_is_the_shorter_interval() {
        let t = "schedule = \"0 3 1 * *\"\nmax_age = \"2h\"\ntarget = { store = \"local\", secret_id = \"s\" }\n";
        let got = problems_with(&policy("p", &format!("{t}revoke = {{ grace = \"2h\" }}")));
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("interval 2h"), "{got:?}");
    }

    #[test]
    fn a_file_store_secret_cannot_lie_under_another() {
        let at = |id: &str| {
            format!("max_age = \"30d\"\ntarget = {{ store = \"local\", secret_id = \"{id}\" }}")
        };
        let nested = policy("a", &at("team")) + &policy("b", &at("team/llm"));
        assert_eq!(
            problems_with(&nested),
            [
                "policy[1].target.secret_id: lies under policy[0]'s secret in file store \"local\": a secret is a file, so no other secret can be inside it"
            ]
        );
        let siblings = policy("a", &at("team/a")) + &policy("b", &at("team/b"));
        assert!(problems_with(&siblings).is_empty());
        let aws = "max_age = \"30d\"\ntarget = { store = \"aws\", secret_id = \"team\" }";
        let in_aws = policy("a", aws) + &policy("b", &at("team/llm"));
        assert!(problems_with(&in_aws).is_empty(), "AWS names are not paths");
    }

    #[test]
    fn policies_may_share_a_secret_only_through_different_fields_of_one_format() {
        let at = |format: &str, field: &str| {
            format!(
                "max_age = \"30d\"\ntarget = {{ store = \"aws\", secret_id = \"s\", format = \"{format}\", field = \"{field}\" }}"
            )
        };
        let different_fields = policy("a", &at("json", "A")) + &policy("b", &at("json", "B"));
        assert!(problems_with(&different_fields).is_empty());
        let same_field = policy("a", &at("json", "A")) + &policy("b", &at("json", "A"));
        assert_eq!(problems_with(&same_field).len(), 1);
        let mixed_formats = policy("a", &at("json", "A")) + &policy("b", &at("env", "B"));
        let got = problems_with(&mixed_formats);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("policy[1].target: writes the same secret \"s\""),
            "{got:?}"
        );
        let other_store = policy("a", &at("json", "A"))
            + &policy(
                "b",
                "max_age = \"30d\"\ntarget = { store = \"local\", secret_id = \"s\" }",
            );
        assert!(problems_with(&other_store).is_empty());
    }

    #[test]
    fn two_spellings_of_one_aws_secret_are_one_secret() {
        let arn = "arn:aws:secretsmanager:r:123456789012:secret:s-AbC123";
        let by_arn =
            format!("max_age = \"30d\"\ntarget = {{ store = \"aws\", secret_id = \"{arn}\" }}");
        let by_name = "max_age = \"30d\"\ntarget = { store = \"aws\", secret_id = \"s\" }";
        let got = problems_with(&(policy("a", by_name) + &policy("b", &by_arn)));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("as policy[0] (\"a\"), which it names as \"s\" in store \"aws\" (both are aws-sm:r/s)"),
            "{got:?}"
        );
        let other_region = arn.replace(":r:", ":us-east-1:");
        let elsewhere = format!(
            "max_age = \"30d\"\ntarget = {{ store = \"aws\", secret_id = \"{other_region}\" }}"
        );
        assert!(problems_with(&(policy("a", by_name) + &policy("b", &elsewhere))).is_empty());
    }

    /// A fleet config: `n` policies over five schedules, two of them in a
    /// DST time zone, every grace fitting.
    fn fleet(n: usize) -> String {
        let schedules = [
            ("0 3 * * *", "timezone = \"Europe/Berlin\"\n"),
            ("0 4 * * 1", ""),
            ("30 2 1 * *", "timezone = \"America/New_York\"\n"),
            ("0 */6 * * *", ""),
            ("15 5 * * *", "timezone = \"UTC\"\n"),
        ];
        (0..n)
            .map(|i| {
                let (schedule, tz) = schedules[i % schedules.len()];
                policy(
                    &format!("p{i}"),
                    &format!(
                        "schedule = \"{schedule}\"\n{tz}revoke = {{ grace = \"1h\" }}\n\
                         target = {{ store = \"local\", secret_id = \"s{i}\" }}\n"
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn a_fleet_sharing_a_few_schedules_validates_and_still_sees_each_dst_day() {
        // Policies share one cached interval per (expression, zone): the
        // Berlin ones must still get the 23h short day, not a UTC 24h.
        let mut text = fleet(20);
        text.push_str(&policy(
            "late",
            "schedule = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n\
             revoke = { grace = \"23h\" }\ntarget = { store = \"local\", secret_id = \"late\" }\n",
        ));
        text.push_str(&policy(
            "utc",
            "schedule = \"0 3 * * *\"\nrevoke = { grace = \"23h\" }\n\
             target = { store = \"local\", secret_id = \"utc\" }\n",
        ));
        let problems = problems_with(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "policy[20].revoke.grace: grace 23h must be shorter than the rotation interval 23h"
            ),
            "{problems:?}"
        );
    }

    /// Measures validation of a 10,000-policy config; prints, asserts nothing
    /// about time. `cargo test --lib fleet_validation_time -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement: run by hand"]
    fn fleet_validation_time() {
        let text = fleet(10_000);
        let started = Instant::now();
        let problems = problems_with(&text);
        let took = started.elapsed();
        assert!(
            problems.is_empty(),
            "{:?}",
            &problems[..problems.len().min(3)]
        );
        println!("validated 10000 policies in {took:?}");
    }
}
