//! `[[policy]]` entries → typed [`Policy`], plus the checks that span
//! policies: unique names and no two policies writing the same field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::at::{At, Origin};
use super::consumers::{on_promote, revoke};
use super::kind::{key, project_id, verify};
use super::problems::Problems;
use super::refs::is_env_name;
use super::values::{aws_secret_id, file_secret_id, may_quote};
use super::{quoted, rules};
use crate::config::bounds::{MAX_AGE, MAX_LIST_LEN};
use crate::config::raw::{RawPolicy, RawTarget};
use crate::config::{ProviderKind, StoreConfig, StoreKind};
use crate::names::{self, LeaseKey, PolicyName, StoreName};
use crate::policy::{AdoptSpec, Format, Policy, Target};
use crate::schedule::Schedule;

/// What policies may refer to, and the instant schedules are sampled from.
pub(super) struct Known<'a> {
    /// Declared providers with their kind (`None`: the kind itself is invalid).
    pub providers: &'a BTreeMap<String, Option<ProviderKind>>,
    pub stores: &'a BTreeSet<String>,
    /// The stores of kind `file` (their secret ids are paths).
    pub file_stores: &'a BTreeSet<String>,
    pub notifiers: &'a BTreeSet<String>,
    /// The stores that validated (a secret's lease key needs the store's
    /// region or directory).
    pub valid_stores: &'a BTreeMap<StoreName, StoreConfig>,
    pub now: DateTime<Utc>,
    /// Schedules' shortest gaps, shared by the policies of this pass.
    pub intervals: &'a rules::Intervals,
    /// Where relative `members = "file:..."` paths start.
    pub base_dir: &'a Path,
}

/// Every `[[policy]]`, with where it was written.
pub(super) fn policies(
    p: &mut Problems,
    raw: Vec<RawPolicy>,
    known: &Known,
) -> Vec<(Origin, Policy)> {
    (raw.into_iter().enumerate())
        .filter_map(|(i, r)| Some((Origin::Policy(i), policy(&mut At::policy(p, i), r, known)?)))
        .collect()
}

/// The checks across every policy, set members included: unique names, no
/// two writers of one field, no file secret under another.
pub(super) fn checked_together(
    p: &mut Problems,
    parsed: Vec<(Origin, Policy)>,
    known: &Known,
) -> Vec<Policy> {
    rules::duplicate_names(p, &parsed);
    rules::conflicting_targets(p, &parsed);
    rules::nested_file_secrets(p, &parsed, known.file_stores);
    parsed.into_iter().map(|(_, policy)| policy).collect()
}

/// One policy; a set's template comes here with `at.name` already set to
/// the set's name, which messages keep.
pub(super) fn policy(at: &mut At, raw: RawPolicy, known: &Known) -> Option<Policy> {
    let name = at.required("name", raw.name.as_deref()).map(str::to_string);
    // Only a valid name is repeated in messages (an invalid one may be anything).
    let name = name.filter(|name| {
        let ok = names::policy_name(name).is_ok();
        if !ok {
            at.push(
                "name",
                "must be 1-63 of a-z, 0-9, '_', '-', starting with a letter or digit (value not shown)",
            );
        }
        ok
    });
    at.name = at.name.take().or(name.clone());
    let provider = at
        .required("provider", raw.provider.as_deref())
        .map(str::to_string);
    if let Some(provider) = provider
        .as_deref()
        .filter(|p| !known.providers.contains_key(*p))
    {
        let names = known.providers.keys().cloned().collect();
        at.push(
            "provider",
            format!(
                "no provider named {}; {}",
                quoted(provider),
                defined(&names)
            ),
        );
    }
    // Checks that depend on the kind are skipped when it is unknown (already reported).
    let kind = provider
        .as_deref()
        .and_then(|p| known.providers.get(p).copied().flatten());
    let (schedule, max_age) = when(at, &raw, known);
    let key = key(at, raw.key.unwrap_or_default(), kind);
    let project_id = project_id(at, raw.project_id, kind);
    let notify = notify(at, raw.notify.unwrap_or_default(), known.notifiers);
    let target = match raw.target {
        Some(t) => target(at, t, known),
        None => {
            at.push("target", "required");
            None
        }
    };
    let verify = verify(at, raw.verify.unwrap_or_default(), kind);
    let revoke = revoke(at, raw.revoke.unwrap_or_default(), kind);
    let on_promote = on_promote(at, raw.on_promote.unwrap_or_default(), known.base_dir);
    let key_id = raw.adopt.and_then(|a| a.key_id);
    if key_id.as_deref().is_some_and(|k| k.trim().is_empty()) {
        at.push("adopt.key_id", "must not be empty");
    }
    let (schedule, key, revoke) = (schedule?, key?, revoke?);
    rules::check_grace(
        at,
        (schedule.as_ref(), known.intervals),
        max_age,
        &revoke,
        known.now,
    );
    rules::check_expiry(at, max_age, &key, &revoke);
    Some(Policy {
        name: PolicyName::parse(name?).ok()?,
        provider: provider?.into(),
        schedule: schedule.map(Box::new),
        max_age,
        key,
        target: target?,
        verify: verify?,
        revoke,
        adopt: AdoptSpec { key_id },
        project_id: project_id?,
        notify: notify?,
        on_promote: on_promote?.into(),
        set: None,
    })
}

fn notify(at: &mut At, names: Vec<String>, known: &BTreeSet<String>) -> Option<Vec<String>> {
    if names.len() > MAX_LIST_LEN {
        at.push("notify", format!("more than {MAX_LIST_LEN} entries"));
        return None;
    }
    let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(*n)).collect();
    for name in &unknown {
        at.push(
            "notify",
            format!("no notifier named {}; {}", quoted(name), defined(known)),
        );
    }
    unknown.is_empty().then_some(names)
}

/// Schedule (in its time zone) and max_age; the outer `None` means invalid.
fn when(
    at: &mut At,
    raw: &RawPolicy,
    known: &Known,
) -> (Option<Option<Schedule>>, Option<Duration>) {
    let now = known.now;
    if raw.schedule.is_none() && raw.max_age.is_none() {
        at.push("schedule", "a policy needs a schedule, a max_age, or both");
    }
    let tz = raw
        .timezone
        .as_deref()
        .and_then(|name| match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                at.push(
                    "timezone",
                    format!(
                        "unknown time zone {}; use an IANA name like \"Europe/Berlin\" or \"UTC\"",
                        quoted(name)
                    ),
                );
                None
            }
        });
    if raw.timezone.is_some() && raw.schedule.is_none() {
        at.push(
            "timezone",
            "is set but there is no schedule for it to apply to",
        );
    }
    let schedule = match raw
        .schedule
        .as_deref()
        .map(|expr| known.intervals.parse(expr, tz))
    {
        None => Some(None),
        Some(Ok(s)) if s.next_after(now).is_none() => {
            at.push("schedule", "never fires");
            None
        }
        Some(Ok(s)) => Some(Some(s)),
        // The parser's message quotes the offending cron field: keep it only
        // when every field can be quoted.
        Some(Err(e)) if (raw.schedule.iter()).all(|x| x.split_whitespace().all(may_quote)) => {
            at.push("schedule", e);
            None
        }
        Some(Err(_)) => {
            at.push(
                "schedule",
                "is not a cron expression of 5 or 6 fields (value not shown)",
            );
            None
        }
    };
    let max_age = at.duration("max_age", raw.max_age.as_deref(), MAX_AGE);
    (schedule, max_age)
}

fn target(at: &mut At, raw: RawTarget, known: &Known) -> Option<Target> {
    let store = at
        .required("target.store", raw.store.as_deref())
        .map(str::to_string);
    if let Some(store) = store.as_deref().filter(|s| !known.stores.contains(*s)) {
        at.push(
            "target.store",
            format!(
                "no store named {}; {}",
                quoted(store),
                defined(known.stores)
            ),
        );
    }
    let secret_id = at
        .required("target.secret_id", raw.secret_id.as_deref())
        .map(str::to_string)
        .filter(|id| {
            secret_id_problem(known, store.as_deref(), id)
                .map(|message| at.push("target.secret_id", format!("{message} (value not shown)")))
                .is_none()
        });
    let formats = [
        ("raw", Format::Raw),
        ("json", Format::Json),
        ("env", Format::Env),
    ];
    let format = match raw.format.as_deref() {
        None => Some(Format::Raw),
        given => at.choice("target.format", given, &formats),
    };
    let field_ok = match (format, raw.field.as_deref()) {
        (Some(Format::Raw), Some(_)) => {
            field_problem(at, "is only used by the json and env formats")
        }
        (Some(Format::Json | Format::Env), None) => {
            field_problem(at, "required for the json and env formats")
        }
        (Some(Format::Env), Some(f)) if !is_env_name(f) => field_problem(
            at,
            &format!(
                "{} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
                quoted(f)
            ),
        ),
        (Some(_), Some("")) => field_problem(at, "must not be empty"),
        _ => true,
    };
    field_ok.then_some(())?;
    let (store, secret_id) = (StoreName::from(store?), secret_id?);
    let lease = lease(known, &store, &secret_id)?;
    Some(Target {
        store,
        secret_id: secret_id.into(),
        lease,
        format: format?,
        field: raw.field,
        create: raw.create.unwrap_or(false),
    })
}

/// Why `id` cannot name a secret in `store` (a path in a file store, a name
/// or ARN in AWS), if it cannot.
pub(super) fn secret_id_problem(known: &Known, store: Option<&str>, id: &str) -> Option<String> {
    let is_file = store.is_some_and(|s| known.file_stores.contains(s));
    let checked = if is_file {
        file_secret_id(id)
    } else {
        aws_secret_id(id)
    };
    checked.err()
}

/// The secret's identity; `None` when its store did not validate (its
/// problem is reported already).
pub(super) fn lease(known: &Known, store: &StoreName, secret_id: &str) -> Option<LeaseKey> {
    Some(match &known.valid_stores.get(store)?.kind {
        StoreKind::AwsSecretsManager { region, .. } => LeaseKey::aws(region, secret_id),
        StoreKind::File { dir } => LeaseKey::file(dir, secret_id),
    })
}

fn field_problem(at: &mut At, message: &str) -> bool {
    at.push("target.field", message);
    false
}

fn defined(names: &BTreeSet<String>) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if names.is_empty() {
        "none are defined".to_string()
    } else {
        format!("defined: {}", names.join(", "))
    }
}
