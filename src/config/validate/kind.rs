//! The parts of a policy whose rules depend on its provider's kind: the
//! key template and its parameters, `project_id`, verification and revoke
//! modes (`ProviderKind`'s capability table).

use std::time::Duration;

use super::at::At;
use super::quoted;
use crate::config::ProviderKind;
use crate::config::bounds::{
    MAX_AMOUNT, MAX_BUDGET_DURATION, MAX_EXPIRES_AFTER, MAX_LIST_LEN, MAX_VERIFY_TIMEOUT,
};
use crate::config::raw::{RawKey, RawVerify};
use crate::policy::{KeyTemplate, LimitReset, VerifyKind, VerifyMode, VerifySpec};

const DEFAULT_KEY_NAME: &str = "rekey-{policy}-{rotation}";
const KEY_NAME_PLACEHOLDERS: [&str; 3] = ["{policy}", "{date}", "{rotation}"];
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// OpenAI rotates by service account inside one project; the Default
/// project cannot hold service accounts.
pub(super) fn project_id(
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
                at.push("project_id", "OpenAI's Default project cannot hold service accounts; create a project for these keys and use its id (proj_...)");
                return None;
            }
            if id.contains(['/', '?', '#', ' ']) {
                at.push(
                    "project_id",
                    "is not a project id like \"proj_abc123\" (value not shown)",
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

pub(super) fn key(at: &mut At, raw: RawKey, kind: Option<ProviderKind>) -> Option<KeyTemplate> {
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
        at.push("key.name", "must contain {rotation}");
        ok = false;
    }
    if let Some(unknown) = unknown_placeholder(&name) {
        at.push(
            "key.name",
            format!(
                "unknown placeholder {}; use {{policy}}, {{date}}, {{rotation}}",
                quoted(unknown)
            ),
        );
        ok = false;
    }
    ok &= amount(at, "key.limit", raw.limit);
    let resets = [
        ("daily", LimitReset::Daily),
        ("weekly", LimitReset::Weekly),
        ("monthly", LimitReset::Monthly),
    ];
    let limit_reset = at.choice("key.limit_reset", raw.limit_reset.as_deref(), &resets);
    let expires_after = at.duration(
        "key.expires_after",
        raw.expires_after.as_deref(),
        MAX_EXPIRES_AFTER,
    );
    ok &= amount(at, "key.max_budget", raw.max_budget);
    if let Some(message) = (raw.budget_duration.as_deref()).and_then(litellm_duration_problem) {
        at.push("key.budget_duration", message);
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
        if list.as_ref().is_some_and(|l| l.len() > MAX_LIST_LEN) {
            at.push(field, format!("more than {MAX_LIST_LEN} entries"));
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

/// A money amount (`key.limit`, `key.max_budget`): finite, 0 to [`MAX_AMOUNT`].
fn amount(at: &mut At, field: &str, value: Option<f64>) -> bool {
    let ok = value.is_none_or(|v| v.is_finite() && (0.0..=MAX_AMOUNT).contains(&v));
    if !ok {
        at.push(field, format!("must be between 0 and {MAX_AMOUNT:e}"));
    }
    ok
}

/// LiteLLM's `budget_duration`: a number and one of s, m, h, d, at most
/// [`MAX_BUDGET_DURATION`]; `None` when it is one.
fn litellm_duration_problem(text: &str) -> Option<String> {
    let shape = "is not a LiteLLM duration like \"30s\", \"30m\", \"1h\", \"1d\" or \"30d\" (value not shown)";
    let Some(unit) = text.chars().last() else {
        return Some(shape.to_string());
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Some(shape.to_string()),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Some(shape.to_string());
    }
    let total = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds));
    match total {
        Some(secs) if secs <= MAX_BUDGET_DURATION.as_secs() => None,
        _ => Some(format!(
            "must be at most {}",
            crate::config::bounds::human(MAX_BUDGET_DURATION)
        )),
    }
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

pub(super) fn verify(
    at: &mut At,
    raw: RawVerify,
    kind: Option<ProviderKind>,
) -> Option<VerifySpec> {
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
                    format!(
                        "{} is not one of \"chat\", \"key-info\", \"models\"",
                        quoted(text)
                    ),
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
    let timeout = at.duration("verify.timeout", raw.timeout.as_deref(), MAX_VERIFY_TIMEOUT);
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
