//! `[[policy]]` entries → typed [`Policy`], plus the checks that span
//! policies: unique names and no two policies writing the same field.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Problems, is_env_name, rules};
use crate::config::ProviderKind;
use crate::config::raw::{RawKey, RawPolicy, RawRevoke, RawTarget, RawVerify};
use crate::policy::{
    AdoptSpec, Format, KeyTemplate, LimitReset, Policy, RevokeMode, RevokeSpec, Target, VerifyKind,
    VerifyMode, VerifySpec,
};
use crate::schedule::Schedule;

const DEFAULT_KEY_NAME: &str = "rekey-{policy}-{rotation}";
const KEY_NAME_PLACEHOLDERS: [&str; 3] = ["{policy}", "{date}", "{rotation}"];
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// What policies may refer to, and the instant schedules are sampled from.
pub(super) struct Known<'a> {
    /// Declared providers with their kind (`None`: the kind itself is invalid).
    pub providers: &'a BTreeMap<String, Option<ProviderKind>>,
    pub stores: &'a BTreeSet<String>,
    pub notifiers: &'a BTreeSet<String>,
    pub now: DateTime<Utc>,
}

pub(super) fn policies(p: &mut Problems, raw: Vec<RawPolicy>, known: &Known) -> Vec<Policy> {
    let parsed: Vec<(usize, Policy)> = (raw.into_iter().enumerate())
        .filter_map(|(i, r)| Some((i, policy(&mut At { p, i, name: None }, r, known)?)))
        .collect();
    rules::duplicate_names(p, &parsed);
    rules::conflicting_targets(p, &parsed);
    parsed.into_iter().map(|(_, policy)| policy).collect()
}

/// Records problems under `policy[i].<field>`, naming the policy once known.
pub(super) struct At<'p> {
    p: &'p mut Problems,
    i: usize,
    name: Option<String>,
}

impl At<'_> {
    fn path(&self, field: &str) -> String {
        format!("policy[{}].{field}", self.i)
    }

    pub(super) fn push(&mut self, field: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(name) = &self.name {
            message = format!("{message} (policy {name:?})");
        }
        self.p.push(self.path(field), message);
    }

    fn required<'a>(&mut self, field: &str, raw: Option<&'a str>) -> Option<&'a str> {
        let found = raw.map(str::trim).filter(|s| !s.is_empty());
        if found.is_none() {
            self.push(field, "required");
        }
        found
    }

    fn duration(&mut self, field: &str, raw: Option<&str>) -> Option<Duration> {
        self.p.positive_duration(&self.path(field), raw)
    }

    /// `raw` must be one of `allowed` (by name); `None` if absent or not allowed.
    fn choice<T: Copy>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        allowed: &[(&str, T)],
    ) -> Option<T> {
        let raw = raw?;
        let found = allowed
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<String> = allowed.iter().map(|(n, _)| format!("{n:?}")).collect();
            self.push(field, format!("{raw:?} is not one of {}", names.join(", ")));
        }
        found
    }
}

fn policy(at: &mut At, raw: RawPolicy, known: &Known) -> Option<Policy> {
    let name = at.required("name", raw.name.as_deref()).map(str::to_string);
    if let Some(name) = &name {
        if !is_policy_name(name) {
            at.push(
                "name",
                format!(
                    "{name:?} must be 1-63 of a-z, 0-9, '_', '-', starting with a letter or digit"
                ),
            );
        }
        at.name = Some(name.clone());
    }
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
            format!("no provider named {provider:?}; {}", defined(&names)),
        );
    }
    // Checks that depend on the kind are skipped when it is unknown (already reported).
    let kind = provider
        .as_deref()
        .and_then(|p| known.providers.get(p).copied().flatten());
    let (schedule, max_age) = when(at, &raw, known.now);
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
    let key_id = raw.adopt.and_then(|a| a.key_id);
    if key_id.as_deref().is_some_and(|k| k.trim().is_empty()) {
        at.push("adopt.key_id", "must not be empty");
    }
    let (schedule, key, revoke) = (schedule?, key?, revoke?);
    rules::check_grace(at, schedule.as_ref(), max_age, &revoke, known.now);
    rules::check_expiry(at, max_age, &key, &revoke);
    Some(Policy {
        name: name?,
        provider: provider?,
        schedule,
        max_age,
        key,
        target: target?,
        verify: verify?,
        revoke,
        adopt: AdoptSpec { key_id },
        project_id: project_id?,
        notify: notify?,
    })
}

/// OpenAI rotates by service account inside one project; the Default
/// project cannot hold service accounts.
fn project_id(
    at: &mut At,
    raw: Option<String>,
    kind: Option<ProviderKind>,
) -> Option<Option<String>> {
    match (kind, raw) {
        (Some(ProviderKind::OpenAi), None) => {
            at.push("project_id", "required for an openai provider: the project (proj_...) whose service accounts carry the keys");
            None
        }
        (Some(ProviderKind::OpenAi), Some(id)) => {
            let id = id.trim().to_string();
            let lower = id.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "default" | "default project" | "default-project" | ""
            ) {
                at.push("project_id", format!("{id:?}: OpenAI's Default project cannot hold service accounts; create a project for these keys and use its id (proj_...)"));
                return None;
            }
            if id.contains(['/', '?', '#', ' ']) {
                at.push(
                    "project_id",
                    format!("{id:?} is not a project id like \"proj_abc123\""),
                );
                return None;
            }
            Some(Some(id))
        }
        (Some(other), Some(_)) => {
            at.push(
                "project_id",
                format!("only applies to openai providers, not {:?}", other.as_str()),
            );
            None
        }
        (_, id) => Some(id),
    }
}

fn notify(at: &mut At, names: Vec<String>, known: &BTreeSet<String>) -> Option<Vec<String>> {
    let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(*n)).collect();
    for name in &unknown {
        at.push(
            "notify",
            format!("no notifier named {name:?}; {}", defined(known)),
        );
    }
    unknown.is_empty().then_some(names)
}

/// Schedule (in its time zone) and max_age; the outer `None` means invalid.
fn when(
    at: &mut At,
    raw: &RawPolicy,
    now: DateTime<Utc>,
) -> (Option<Option<Schedule>>, Option<Duration>) {
    if raw.schedule.is_none() && raw.max_age.is_none() {
        at.push("schedule", "a policy needs a schedule, a max_age, or both");
    }
    let tz = raw.timezone.as_deref().and_then(|name| match name.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            at.push("timezone", format!("unknown time zone {name:?}; use an IANA name like \"Europe/Berlin\" or \"UTC\""));
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
        .map(|expr| Schedule::parse(expr, tz))
    {
        None => Some(None),
        Some(Ok(s)) if s.next_after(now).is_none() => {
            at.push("schedule", format!("{:?} never fires", s.expression));
            None
        }
        Some(Ok(s)) => Some(Some(s)),
        Some(Err(e)) => {
            at.push("schedule", e);
            None
        }
    };
    let max_age = at.duration("max_age", raw.max_age.as_deref());
    (schedule, max_age)
}

fn key(at: &mut At, raw: RawKey, kind: Option<ProviderKind>) -> Option<KeyTemplate> {
    let name = raw
        .name
        .clone()
        .unwrap_or_else(|| DEFAULT_KEY_NAME.to_string());
    let mut ok = true;
    if let Some(kind) = kind {
        ok &= key_params_supported(at, &raw, kind);
    }
    if !name.contains("{rotation}") {
        // Recovery after a crash finds keys it created by the rotation id in their name.
        at.push("key.name", format!("{name:?} must contain {{rotation}}"));
        ok = false;
    }
    if let Some(unknown) = unknown_placeholder(&name) {
        at.push(
            "key.name",
            format!("unknown placeholder {unknown}; use {{policy}}, {{date}}, {{rotation}}"),
        );
        ok = false;
    }
    if let Some(limit) = raw.limit.filter(|l| !l.is_finite() || *l < 0.0) {
        at.push("key.limit", format!("must be zero or more, got {limit}"));
        ok = false;
    }
    let resets = [
        ("daily", LimitReset::Daily),
        ("weekly", LimitReset::Weekly),
        ("monthly", LimitReset::Monthly),
    ];
    let limit_reset = at.choice("key.limit_reset", raw.limit_reset.as_deref(), &resets);
    let expires_after = at.duration("key.expires_after", raw.expires_after.as_deref());
    if let Some(budget) = raw.max_budget.filter(|b| !b.is_finite() || *b < 0.0) {
        at.push(
            "key.max_budget",
            format!("must be zero or more, got {budget}"),
        );
        ok = false;
    }
    if let Some(period) = raw
        .budget_duration
        .as_deref()
        .filter(|d| !is_litellm_duration(d))
    {
        at.push("key.budget_duration", format!("{period:?} is not a LiteLLM duration like \"30s\", \"30m\", \"1h\", \"1d\" or \"30d\""));
        ok = false;
    }
    for (field, list) in [
        ("key.allowed_providers", &raw.allowed_providers),
        ("key.allowed_models", &raw.allowed_models),
        ("key.models", &raw.models),
    ] {
        if list
            .as_ref()
            .is_some_and(|l| l.iter().any(|s| s.trim().is_empty()))
        {
            at.push(field, "must not contain empty names");
            ok = false;
        }
    }
    let all_ok = ok
        && raw.limit_reset.is_some() == limit_reset.is_some()
        && raw.expires_after.is_some() == expires_after.is_some();
    all_ok.then_some(KeyTemplate {
        name,
        limit: raw.limit,
        limit_reset,
        include_byok_in_limit: raw.include_byok_in_limit,
        expires_after,
        allowed_providers: raw.allowed_providers,
        allowed_models: raw.allowed_models,
        models: raw.models,
        max_budget: raw.max_budget,
        budget_duration: raw.budget_duration,
    })
}

/// A key parameter the provider cannot apply is refused, not silently dropped.
fn key_params_supported(at: &mut At, raw: &RawKey, kind: ProviderKind) -> bool {
    let given = [
        ("limit", raw.limit.is_some()),
        ("limit_reset", raw.limit_reset.is_some()),
        ("include_byok_in_limit", raw.include_byok_in_limit.is_some()),
        ("expires_after", raw.expires_after.is_some()),
        ("allowed_providers", raw.allowed_providers.is_some()),
        ("allowed_models", raw.allowed_models.is_some()),
        ("models", raw.models.is_some()),
        ("max_budget", raw.max_budget.is_some()),
        ("budget_duration", raw.budget_duration.is_some()),
    ];
    let supported = kind.key_params();
    let mut ok = true;
    for (param, _) in given
        .iter()
        .filter(|(p, set)| *set && !supported.contains(p))
    {
        let offer = if supported.is_empty() {
            "it takes no key parameters".to_string()
        } else {
            format!("it supports {}", supported.join(", "))
        };
        at.push(
            &format!("key.{param}"),
            format!("not supported by {} providers ({offer})", kind.as_str()),
        );
        ok = false;
    }
    if kind.is_assisted() && raw.name.is_some() {
        at.push(
            "key.name",
            format!(
                "{} keys are made by a person, not by rekey: there is no name to set",
                kind.as_str()
            ),
        );
        ok = false;
    }
    ok
}

/// LiteLLM's `budget_duration`: a number and one of s, m, h, d.
fn is_litellm_duration(text: &str) -> bool {
    let Some(unit) = text.chars().last() else {
        return false;
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    matches!(unit, 's' | 'm' | 'h' | 'd')
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
}

fn unknown_placeholder(name: &str) -> Option<&str> {
    let mut rest = name;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let placeholder = &rest[start..end];
        if !KEY_NAME_PLACEHOLDERS.contains(&placeholder) {
            return Some(placeholder);
        }
        rest = &rest[end..];
    }
    None
}

fn target(at: &mut At, raw: RawTarget, known: &Known) -> Option<Target> {
    let store = at
        .required("target.store", raw.store.as_deref())
        .map(str::to_string);
    if let Some(store) = store.as_deref().filter(|s| !known.stores.contains(*s)) {
        at.push(
            "target.store",
            format!("no store named {store:?}; {}", defined(known.stores)),
        );
    }
    let secret_id = at
        .required("target.secret_id", raw.secret_id.as_deref())
        .map(str::to_string);
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
            &format!("{f:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
        ),
        (Some(_), Some("")) => field_problem(at, "must not be empty"),
        _ => true,
    };
    field_ok.then_some(())?;
    Some(Target {
        store: store?,
        secret_id: secret_id?,
        format: format?,
        field: raw.field,
        create: raw.create.unwrap_or(false),
    })
}

fn field_problem(at: &mut At, message: &str) -> bool {
    at.push("target.field", message);
    false
}

fn verify(at: &mut At, raw: RawVerify, kind: Option<ProviderKind>) -> Option<VerifySpec> {
    let modes = kind.map_or(
        &[VerifyKind::KeyInfo, VerifyKind::Chat, VerifyKind::Models][..],
        ProviderKind::verify_modes,
    );
    // Naming a model is enough to ask for a chat check.
    let default_mode = if raw.model.is_some() {
        VerifyKind::Chat
    } else {
        modes[0]
    };
    let all = [VerifyKind::Chat, VerifyKind::KeyInfo, VerifyKind::Models];
    let named = match raw.mode.as_deref() {
        None => Some(default_mode),
        Some(text) => {
            let found = all.into_iter().find(|m| m.as_str() == text);
            if found.is_none() {
                at.push(
                    "verify.mode",
                    format!("{text:?} is not one of \"chat\", \"key-info\", \"models\""),
                );
            }
            found
        }
    };
    // Through a gateway, verification is OpenAI-compatible whatever the provider.
    let gateway_modes = [VerifyKind::Models, VerifyKind::Chat];
    let offered = if raw.base_url.is_some() {
        &gateway_modes[..]
    } else {
        modes
    };
    let named = named.filter(|m| {
        let ok = offered.contains(m);
        if !ok {
            let list: Vec<String> = offered
                .iter()
                .map(|m| format!("{:?}", m.as_str()))
                .collect();
            let whose = match (raw.base_url.is_some(), kind) {
                (true, _) => "verification through verify.base_url".to_string(),
                (false, Some(k)) => format!("{} providers", k.as_str()),
                (false, None) => "this provider".to_string(),
            };
            at.push(
                "verify.mode",
                format!(
                    "{:?} is not available for {whose}; use one of {}",
                    m.as_str(),
                    list.join(", ")
                ),
            );
        }
        ok
    });
    let mode = match (named, raw.model) {
        (Some(VerifyKind::Chat), Some(model)) if !model.trim().is_empty() => {
            Some(VerifyMode::Chat { model })
        }
        (Some(VerifyKind::Chat), _) => {
            at.push("verify.model", "required when verify.mode is \"chat\"");
            None
        }
        (Some(_), Some(_)) => {
            at.push("verify.model", "only used when verify.mode is \"chat\"");
            None
        }
        (Some(VerifyKind::KeyInfo), None) => Some(VerifyMode::KeyInfo),
        (Some(VerifyKind::Models), None) => Some(VerifyMode::Models),
        (None, _) => None,
    };
    let base_url = match raw.base_url.as_deref() {
        Some(url) => Some(at.p.http_url(&at.path("verify.base_url"), url)?),
        None => None,
    };
    let timeout = at.duration("verify.timeout", raw.timeout.as_deref());
    let timeout = if raw.timeout.is_some() {
        timeout?
    } else {
        DEFAULT_VERIFY_TIMEOUT
    };
    Some(VerifySpec {
        mode: mode?,
        timeout,
        base_url,
    })
}

fn revoke(at: &mut At, raw: RawRevoke, kind: Option<ProviderKind>) -> Option<RevokeSpec> {
    let grace = match raw.grace.as_deref() {
        Some(text) => at.p.duration(&at.path("revoke.grace"), Some(text))?,
        None => DEFAULT_GRACE,
    };
    let modes = [
        ("delete", RevokeMode::Delete),
        ("disable", RevokeMode::Disable),
        ("archive", RevokeMode::Archive),
    ];
    let mode = match raw.mode.as_deref() {
        None => kind.map_or(RevokeMode::Delete, ProviderKind::default_revoke_mode),
        given => at.choice("revoke.mode", given, &modes)?,
    };
    if let Some(kind) = kind.filter(|k| !k.revoke_modes().contains(&mode)) {
        let list: Vec<String> = kind
            .revoke_modes()
            .iter()
            .map(|m| format!("{:?}", m.as_str()))
            .collect();
        at.push(
            "revoke.mode",
            format!(
                "{:?} is not available for {} providers; use {}",
                mode.as_str(),
                kind.as_str(),
                list.join(" or ")
            ),
        );
        return None;
    }
    Some(RevokeSpec { grace, mode })
}

fn defined(names: &BTreeSet<String>) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if names.is_empty() {
        "none are defined".to_string()
    } else {
        format!("defined: {}", names.join(", "))
    }
}

/// `[a-z0-9][a-z0-9_-]{0,62}`: safe in key names, metric labels and file names.
fn is_policy_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}
