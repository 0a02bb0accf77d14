//! What a policy says about its consumers: how the old key is retired
//! (`revoke`: grace, mode, idle wait) and who is told that a new key is
//! current (`on_promote` hooks).

use std::path::Path;
use std::time::Duration;

use super::at::At;
use super::refs::secret_ref;
use crate::config::ProviderKind;
use crate::config::bounds::{MAX_GRACE, MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT, MAX_HOOKS, MAX_TEXT_LEN};
use crate::config::raw::{RawHook, RawRevoke};
use crate::policy::{Hook, HookAction, HookMethod, OnBusy, RevokeMode, RevokeSpec};

const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn revoke(
    at: &mut At,
    raw: RawRevoke,
    kind: Option<ProviderKind>,
) -> Option<RevokeSpec> {
    // Every field is read before any early return, so that a bad value
    // here is reported together with a bad grace or mode.
    let optional = |at: &mut At, field: &str, raw: Option<&str>| match raw {
        Some(text) => at.duration(field, Some(text), MAX_GRACE).map(Some),
        None => Some(None),
    };
    let consumer_refresh = optional(
        at,
        "revoke.consumer_refresh",
        raw.consumer_refresh.as_deref(),
    );
    let wait_idle = optional(at, "revoke.wait_idle", raw.wait_idle.as_deref());
    let max_wait = optional(at, "revoke.max_wait", raw.max_wait.as_deref());
    let on_busy = match raw.on_busy.as_deref() {
        None => Some(OnBusy::Revoke),
        given => at.choice(
            "revoke.on_busy",
            given,
            &[("revoke", OnBusy::Revoke), ("keep", OnBusy::Keep)],
        ),
    };
    let stray_on_busy = raw.on_busy.is_some() && raw.wait_idle.is_none();
    if stray_on_busy {
        at.push(
            "revoke.on_busy",
            "only used with revoke.wait_idle (what to do with an old key still in use after max_wait)",
        );
    }
    let grace = match raw.grace.as_deref() {
        // Zero is allowed: the old key is revoked at once.
        Some(text) => {
            at.p.duration(&at.path("revoke.grace"), Some(text), MAX_GRACE)
        }
        None => Some(DEFAULT_GRACE),
    };
    let modes = [
        ("delete", RevokeMode::Delete),
        ("disable", RevokeMode::Disable),
        ("archive", RevokeMode::Archive),
    ];
    let mode = match raw.mode.as_deref() {
        None => Some(kind.map_or(RevokeMode::Delete, ProviderKind::default_revoke_mode)),
        given => at.choice("revoke.mode", given, &modes),
    }?;
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
    if stray_on_busy {
        return None;
    }
    Some(RevokeSpec {
        grace: grace?,
        mode,
        consumer_refresh: consumer_refresh?,
        wait_idle: wait_idle?,
        max_wait: max_wait?.unwrap_or(DEFAULT_MAX_WAIT),
        on_busy: on_busy?,
    })
}

/// `on_promote = [{ exec = [...] } | { http = "<ref>" }, ...]`.
pub(super) fn on_promote(at: &mut At, raw: Vec<RawHook>, base_dir: &Path) -> Option<Vec<Hook>> {
    if raw.len() > MAX_HOOKS {
        at.push(
            "on_promote",
            format!("at most {MAX_HOOKS} hooks, got {}", raw.len()),
        );
        return None;
    }
    let hooks: Vec<Option<Hook>> = (raw.into_iter().enumerate())
        .map(|(i, hook)| self::hook(at, i, hook, base_dir))
        .collect();
    hooks.into_iter().collect()
}

fn hook(at: &mut At, i: usize, raw: RawHook, base_dir: &Path) -> Option<Hook> {
    let field = |name: &str| format!("on_promote[{i}].{name}");
    let action = match (raw.exec, raw.http) {
        (Some(argv), None) => {
            for name in ["method", "expect"] {
                let given = (name == "method" && raw.method.is_some())
                    || (name == "expect" && raw.expect.is_some());
                if given {
                    at.push(&field(name), "only used with http hooks");
                }
            }
            exec(at, &field("exec"), argv)
        }
        (None, Some(url)) => http(at, &field, &url, raw.method, raw.expect, base_dir),
        (Some(_), Some(_)) => {
            at.push(&format!("on_promote[{i}]"), "give exec or http, not both");
            None
        }
        (None, None) => {
            at.push(
                &format!("on_promote[{i}]"),
                "needs exec = [\"program\", \"arg\", ...] or http = \"<env:|file:|aws-sm: reference to the URL>\"",
            );
            None
        }
    };
    let default = match action {
        Some(HookAction::Exec(_)) => DEFAULT_EXEC_TIMEOUT,
        _ => DEFAULT_HTTP_TIMEOUT,
    };
    let timeout = match raw.timeout.as_deref() {
        Some(text) => at.duration(&field("timeout"), Some(text), MAX_HOOK_TIMEOUT),
        None => Some(default),
    };
    Some(Hook {
        action: action?,
        timeout: timeout?,
    })
}

fn exec(at: &mut At, field: &str, argv: Vec<String>) -> Option<HookAction> {
    if argv.is_empty() || argv[0].trim().is_empty() {
        at.push(
            field,
            "must name a program: exec = [\"program\", \"arg\", ...]",
        );
        return None;
    }
    if argv.len() > MAX_HOOK_ARGS {
        at.push(
            field,
            format!("at most {MAX_HOOK_ARGS} arguments, got {}", argv.len()),
        );
        return None;
    }
    if argv
        .iter()
        .any(|a| a.len() > MAX_TEXT_LEN || a.contains('\0'))
    {
        at.push(
            field,
            format!("an argument is longer than {MAX_TEXT_LEN} bytes or holds a NUL byte"),
        );
        return None;
    }
    Some(HookAction::Exec(argv))
}

fn http(
    at: &mut At,
    field: &dyn Fn(&str) -> String,
    url: &str,
    method: Option<String>,
    expect: Option<i64>,
    base_dir: &Path,
) -> Option<HookAction> {
    let url = secret_ref(at.p, &at.path(&field("http")), url, base_dir);
    let methods = [
        ("POST", HookMethod::Post),
        ("PUT", HookMethod::Put),
        ("PATCH", HookMethod::Patch),
        ("GET", HookMethod::Get),
    ];
    let method = match method.as_deref() {
        None => Some(HookMethod::Post),
        given => at.choice(&field("method"), given, &methods),
    };
    let expect = match expect {
        None => Some(None),
        Some(code) if (100..=599).contains(&code) => u16::try_from(code).ok().map(Some),
        Some(code) => {
            at.push(
                &field("expect"),
                format!("must be an HTTP status between 100 and 599, got {code}"),
            );
            None
        }
    };
    Some(HookAction::Http {
        url: url?,
        method: method?,
        expect: expect?,
    })
}
