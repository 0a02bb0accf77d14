//! `[[policy_set]]` → one [`Policy`] per member. The template (every field
//! but the members) is validated once, as a `[[policy]]` with a stand-in
//! member, so a set's problems are reported once; each member then only
//! substitutes its id into `name`, `key.name` and `target.secret_id` and
//! checks what that changes (the policy name, the secret id, its lease).
//! Expansion is linear in the number of members.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::at::{At, Origin};
use super::policy::{Known, lease, policy, secret_id_problem};
use super::problems::Problems;
use super::quoted;
use super::refs::resolve;
use crate::config::bounds::MAX_AGE;
use crate::config::raw::{RawMembers, RawPolicySet};
use crate::fleet::{
    MAX_MEMBERS, MAX_MEMBERS_FILE_BYTES, MemberId, OnRemove, SetMember, parse_members,
    spread_offset,
};
use crate::names::PolicyName;
use crate::policy::Policy;

const MEMBER: &str = "{member}";

/// What the template is validated with in place of `{member}`.
const STAND_IN: &str = "m";

/// Every member policy of every set, in set order then member order.
pub(super) fn expand(
    p: &mut Problems,
    sets: Vec<RawPolicySet>,
    known: &Known,
    member_files: &mut Vec<PathBuf>,
) -> Vec<(Origin, Policy)> {
    let mut expanded = Vec::new();
    for (i, raw) in sets.into_iter().enumerate() {
        let mut at = At::policy_set(p, i);
        set(&mut at, raw, known, member_files, &mut expanded);
    }
    expanded
}

/// The raw texts `{member}` is substituted into.
struct Templates {
    name: String,
    key_name: Option<String>,
    secret_id: String,
}

fn set(
    at: &mut At,
    mut raw: RawPolicySet,
    known: &Known,
    member_files: &mut Vec<PathBuf>,
    out: &mut Vec<(Origin, Policy)>,
) {
    let templates = templates(at, &mut raw);
    let spread = (raw.spread.take()).and_then(|s| at.duration("spread", Some(&s), MAX_AGE));
    let on_remove = match raw.on_remove.take() {
        None => Some(OnRemove::Keep),
        given => at.choice(
            "on_remove",
            given.as_deref(),
            &[("keep", OnRemove::Keep), ("revoke", OnRemove::Revoke)],
        ),
    };
    if raw.adopt.take().is_some() {
        at.push(
            "adopt",
            "is not allowed in a policy_set (one key cannot be adopted by every member)",
        );
    }
    let stand_in = |text: &str| text.replace(MEMBER, STAND_IN);
    // A name `templates` refused is reported there: the stand-in lets the
    // template's other fields still be checked, without a second report.
    let name = (raw.name.as_deref().map(stand_in))
        .filter(|n| !n.trim().is_empty() && !n.contains(['{', '}']))
        .unwrap_or_else(|| STAND_IN.to_string());
    if let Some(key) = raw.key.as_mut() {
        key.name = key.name.as_deref().map(stand_in);
    }
    if let Some(target) = raw.target.as_mut() {
        target.secret_id = target.secret_id.as_deref().map(stand_in);
    }
    let (template, members) = raw.template(name);
    let members = self::members(at, members, known, member_files);
    let Some(template) = policy(at, template, known) else {
        return;
    };
    let spread = spread.filter(|s| spread_fits(at, *s, &template, known));
    let (Some(templates), Some(on_remove), Some(members)) = (templates, on_remove, members) else {
        return;
    };
    let set_name = templates.name.clone();
    for member in members {
        let built = member_policy(at, &template, &templates, &member, known);
        if let Some(mut policy) = built {
            let offset = spread.map_or(Duration::ZERO, |s| spread_offset(&policy.name, s));
            policy.set = Some(SetMember {
                set: set_name.clone(),
                member: member.clone(),
                on_remove,
                offset,
            });
            out.push((Origin::Member { set: at.i, member }, policy));
        }
    }
}

/// The set's name, key name and secret id as written, checked for
/// `{member}` where it must be and for placeholders nobody fills. `{member}`
/// anywhere else is refused.
fn templates(at: &mut At, raw: &mut RawPolicySet) -> Option<Templates> {
    let name = at.required("name", raw.name.as_deref()).map(str::to_string);
    // Only a name that makes valid policy names is repeated in messages
    // (an invalid one may be anything, a pasted key included).
    let shown = name.as_deref().map(|n| n.replace(MEMBER, STAND_IN));
    at.name = name.clone().filter(|_| {
        shown
            .as_deref()
            .is_some_and(|n| crate::names::policy_name(n).is_ok())
    });
    let mut ok = name
        .as_deref()
        .is_some_and(|n| placeholders(at, "name", n, true));
    let secret_id = raw.target.as_ref().and_then(|t| t.secret_id.clone());
    if let Some(id) = &secret_id {
        ok &= placeholders(at, "target.secret_id", id, true);
    }
    let key_name = raw.key.as_ref().and_then(|k| k.name.clone());
    let elsewhere = [
        ("provider", raw.provider.as_deref()),
        ("schedule", raw.schedule.as_deref()),
        ("project_id", raw.project_id.as_deref()),
        (
            "target.store",
            raw.target.as_ref().and_then(|t| t.store.as_deref()),
        ),
        (
            "target.field",
            raw.target.as_ref().and_then(|t| t.field.as_deref()),
        ),
        (
            "verify.model",
            raw.verify.as_ref().and_then(|v| v.model.as_deref()),
        ),
    ];
    for (field, text) in elsewhere {
        if text.is_some_and(|t| t.contains(MEMBER)) {
            at.push(
                field,
                "{member} is only filled in name, key.name and target.secret_id",
            );
            ok = false;
        }
    }
    ok.then_some(Templates {
        name: name?,
        key_name,
        secret_id: secret_id.unwrap_or_default(),
    })
}

/// `text` holds `{member}` (when `required`) and no other `{...}`.
fn placeholders(at: &mut At, field: &str, text: &str, required: bool) -> bool {
    let mut ok = true;
    if required && !text.contains(MEMBER) {
        let why = match field {
            "name" => "must contain {member}: each member becomes a policy of this name",
            _ => "must contain {member}: otherwise every member writes the same secret",
        };
        at.push(field, why);
        ok = false;
    }
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let placeholder = &rest[start..end];
        if placeholder != MEMBER {
            let shown = if super::may_quote(placeholder) {
                quoted(placeholder)
            } else {
                "(value not shown)".into()
            };
            at.push(
                field,
                format!("unknown placeholder {shown}; use {{member}}"),
            );
            return false;
        }
        rest = &rest[end..];
    }
    ok
}

/// `spread` needs a schedule and must be shorter than its shortest gap, so
/// a member's window ends before the next tick opens the next one.
fn spread_fits(at: &mut At, spread: Duration, template: &Policy, known: &Known) -> bool {
    if spread.is_zero() {
        at.push(
            "spread",
            "must be greater than zero (leave it out for none)",
        );
        return false;
    }
    let Some(schedule) = &template.schedule else {
        at.push(
            "spread",
            "needs a schedule: it spreads due times after each tick",
        );
        return false;
    };
    match known.intervals.min_interval(schedule, known.now) {
        Some(gap) if spread >= gap => {
            at.push(
                "spread",
                format!(
                    "{} must be shorter than the schedule's shortest gap between ticks {}",
                    super::human(spread),
                    super::human(gap)
                ),
            );
            false
        }
        _ => true,
    }
}

/// The template with `member` filled in; the member's own problems name it.
fn member_policy(
    at: &mut At,
    template: &Policy,
    t: &Templates,
    member: &MemberId,
    known: &Known,
) -> Option<Policy> {
    let id = member.as_str();
    let name = t.name.replace(MEMBER, id);
    let name = match PolicyName::parse(name.as_str()) {
        Ok(name) => name,
        Err(_) => {
            let why = crate::names::policy_name(&name)
                .err()
                .unwrap_or("is not valid");
            let message = format!("member {id:?} gives the policy name {name:?}, which {why}");
            at.push("members", message);
            return None;
        }
    };
    let secret_id = t.secret_id.replace(MEMBER, id);
    let store = template.target.store.as_str();
    if let Some(why) = secret_id_problem(known, Some(store), &secret_id) {
        let message = format!("member {id:?} gives a target.secret_id that is {why}");
        at.push("members", message);
        return None;
    }
    let mut policy = template.clone();
    policy.target.lease = lease(known, &template.target.store, &secret_id)?;
    policy.target.secret_id = secret_id.into();
    policy.name = name;
    if let Some(key_name) = &t.key_name {
        policy.key.name = key_name.replace(MEMBER, id);
    }
    Some(policy)
}

/// The member ids, inline or from `file:PATH`; every bad one reported.
fn members(
    at: &mut At,
    raw: Option<RawMembers>,
    known: &Known,
    member_files: &mut Vec<PathBuf>,
) -> Option<Vec<MemberId>> {
    match raw {
        None => {
            at.push("members", "required: a list of member ids or \"file:PATH\"");
            None
        }
        Some(RawMembers::List(ids)) => inline(at, &ids),
        Some(RawMembers::File(spec)) => {
            let Some(path) = spec.strip_prefix("file:").filter(|p| !p.trim().is_empty()) else {
                at.push(
                    "members",
                    "must be a list of member ids or \"file:PATH\" (value not shown)",
                );
                return None;
            };
            let path = resolve(known.base_dir, path.trim());
            member_files.push(path.clone());
            from_file(at, &path)
        }
    }
}

fn inline(at: &mut At, ids: &[String]) -> Option<Vec<MemberId>> {
    if ids.len() > MAX_MEMBERS {
        at.push("members", format!("more than {MAX_MEMBERS} members"));
        return None;
    }
    let text: String = ids.iter().flat_map(|id| [id.as_str(), "\n"]).collect();
    // An inline id is never blank or a comment: check those apart.
    let mut ok = true;
    for (i, id) in ids.iter().enumerate() {
        if id.trim().is_empty() || id.trim().starts_with('#') || id.contains('\n') {
            at.push(
                &format!("members[{i}]"),
                "is not a member id (value not shown)",
            );
            ok = false;
        }
    }
    match parse_members(&text) {
        Ok(members) if ok => Some(members),
        Ok(_) => None,
        Err(problems) => {
            for problem in problems {
                at.push(&format!("members[{}]", problem.line - 1), problem.message);
            }
            None
        }
    }
}

fn from_file(at: &mut At, path: &std::path::Path) -> Option<Vec<MemberId>> {
    let shown = shown_path(path);
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(why) => {
            at.push("members", format!("cannot read {shown}: {why}"));
            return None;
        }
    };
    match parse_members(&text) {
        Ok(members) => Some(members),
        Err(problems) => {
            for problem in problems {
                at.push(
                    "members",
                    format!("{shown} line {}: {}", problem.line, problem.message),
                );
            }
            None
        }
    }
}

/// The path, unless a part of it looks like a key (pasted into the wrong field).
fn shown_path(path: &std::path::Path) -> String {
    let mut parts = path.components().map(|c| c.as_os_str().to_string_lossy());
    match parts.all(|part| super::may_quote(&part)) {
        true => path.display().to_string(),
        false => "the members file (path not shown)".into(),
    }
}

fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let too_big = || format!("larger than {} MiB", MAX_MEMBERS_FILE_BYTES >> 20);
    if file
        .metadata()
        .is_ok_and(|m| m.len() > MAX_MEMBERS_FILE_BYTES)
    {
        return Err(too_big());
    }
    let mut text = String::new();
    (file.take(MAX_MEMBERS_FILE_BYTES + 1))
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_MEMBERS_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
