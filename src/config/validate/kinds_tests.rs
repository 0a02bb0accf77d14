//! What each provider kind accepts: key parameters, verification and revoke
//! modes, `project_id`, ARouter's API shape; plus notifiers and the daemon's
//! operating fields.

use super::tests::problems_with;

/// Provider `p` of `kind` (with `provider_extra` lines) and one policy using
/// it with `policy_extra` lines.
fn with(kind: &str, provider_extra: &str, policy_extra: &str) -> Vec<String> {
    problems_with(&format!(
        "[providers.p]\nkind = \"{kind}\"\nmanagement_key = \"env:K\"\n{provider_extra}\n\
         [[policy]]\nname = \"x\"\nprovider = \"p\"\nmax_age = \"30d\"\n\
         target = {{ store = \"aws\", secret_id = \"s\" }}\n{policy_extra}"
    ))
}

#[test]
fn every_provider_kind_is_accepted_with_its_defaults() {
    assert_eq!(with("openrouter", "", ""), Vec::<String>::new());
    assert_eq!(with("arouter", "", ""), Vec::<String>::new());
    assert_eq!(with("anthropic", "", ""), Vec::<String>::new());
    assert_eq!(
        with("openai", "", "project_id = \"proj_abc\""),
        Vec::<String>::new()
    );
    assert_eq!(
        with("litellm", "base_url = \"http://litellm:4000\"", ""),
        Vec::<String>::new()
    );
}

#[test]
fn an_unknown_kind_lists_the_known_ones() {
    let got = with("mistral", "", "");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("providers.p.kind: unknown provider kind \"mistral\"")
            && got[0].contains("\"anthropic\""),
        "{got:?}"
    );
}

#[test]
fn a_litellm_proxy_needs_its_address() {
    assert_eq!(
        with("litellm", "", ""),
        ["providers.p.base_url: required: a self-hosted LiteLLM proxy has no default address"]
    );
}

#[test]
fn the_api_shape_belongs_to_arouter_only() {
    assert_eq!(with("arouter", "api = \"guide\"", ""), Vec::<String>::new());
    assert_eq!(
        with("arouter", "keys_path = \"/v2/keys\"", ""),
        Vec::<String>::new()
    );
    assert_eq!(
        with("openrouter", "api = \"guide\"", ""),
        ["providers.p.api: only applies to providers of kind \"arouter\""]
    );
    let got = with("arouter", "api = \"v2\"", "");
    assert!(
        got[0].starts_with("providers.p.api: \"v2\" is not one of"),
        "{got:?}"
    );
    let got = with("arouter", "keys_path = \"keys\"", "");
    assert!(
        got[0].starts_with("providers.p.keys_path: must be a path starting with '/'"),
        "{got:?}"
    );
}

#[test]
fn the_workspace_belongs_to_openrouter_only_and_is_one_plain_id() {
    assert_eq!(
        with("openrouter", "workspace_id = \"ws_123-abc\"", ""),
        Vec::<String>::new()
    );
    for kind in ["arouter", "openai", "litellm", "anthropic"] {
        let got = with(
            kind,
            "workspace_id = \"ws_1\"\nbase_url = \"http://x:1\"",
            "",
        );
        assert!(
            got.contains(
                &"providers.p.workspace_id: only applies to providers of kind \"openrouter\""
                    .to_string()
            ),
            "{kind}: {got:?}"
        );
    }
    for bad in ["", "ws 1", "ws\\n1", &"w".repeat(129)] {
        let got = with("openrouter", &format!("workspace_id = \"{bad}\""), "");
        assert_eq!(got.len(), 1, "{bad:?}: {got:?}");
        assert!(
            got[0].starts_with("providers.p.workspace_id: ")
                && got[0].contains("is not a workspace id: expected 1 to 128 characters"),
            "{bad:?}: {got:?}"
        );
    }
}

#[test]
fn a_key_parameter_the_provider_cannot_apply_is_named() {
    assert_eq!(
        with("openrouter", "", "key = { models = [\"gpt-4o\"] }"),
        [
            "policy[0].key.models: not supported by openrouter providers (it supports limit, limit_reset, include_byok_in_limit, expires_after) (policy \"x\")"
        ]
    );
    assert_eq!(
        with("arouter", "", "key = { include_byok_in_limit = true }").len(),
        1
    );
    assert_eq!(
        with(
            "arouter",
            "",
            "key = { limit = 5.0, allowed_providers = [\"openai\"], allowed_models = [\"openai/gpt-4o-mini\"] }"
        ),
        Vec::<String>::new()
    );
    let litellm = "base_url = \"http://l:4000\"";
    assert_eq!(
        with(
            "litellm",
            litellm,
            "key = { models = [\"gpt-4o\"], max_budget = 10.0, budget_duration = \"30d\" }"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        with("litellm", litellm, "key = { limit = 10.0 }"),
        [
            "policy[0].key.limit: not supported by litellm providers (it supports models, max_budget, budget_duration) (policy \"x\")"
        ]
    );
    assert_eq!(
        with(
            "openai",
            "",
            "project_id = \"proj_a\"\nkey = { limit = 1.0 }"
        ),
        [
            "policy[0].key.limit: not supported by openai providers (it takes no key parameters) (policy \"x\")"
        ]
    );
}

#[test]
fn litellm_budget_values_are_checked() {
    let litellm = "base_url = \"http://l:4000\"";
    let got = with(
        "litellm",
        litellm,
        "key = { budget_duration = \"monthly\", max_budget = -1.0 }",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .any(|p| p.starts_with("policy[0].key.budget_duration: is not a LiteLLM duration"))
    );
    assert!(
        got.iter()
            .any(|p| p.starts_with("policy[0].key.max_budget: must be between 0 and 1e9"))
    );
}

#[test]
fn openai_needs_a_project_and_refuses_the_default_one() {
    assert_eq!(with("openai", "", "").len(), 1, "project_id is required");
    assert!(with("openai", "", "")[0].starts_with("policy[0].project_id: required"));
    let got = with("openai", "", "project_id = \"Default\"");
    assert!(
        got[0].starts_with(
            "policy[0].project_id: OpenAI's Default project cannot hold service accounts"
        ),
        "{got:?}"
    );
    assert_eq!(
        with("openrouter", "", "project_id = \"proj_a\""),
        [
            "policy[0].project_id: only applies to openai providers, not \"openrouter\" (policy \"x\")"
        ]
    );
}

#[test]
fn openai_revokes_by_deleting_the_service_account_only() {
    assert_eq!(
        with(
            "openai",
            "",
            "project_id = \"proj_a\"\nrevoke = { mode = \"disable\" }"
        ),
        [
            "policy[0].revoke.mode: \"disable\" is not available for openai providers; use \"delete\" (policy \"x\")"
        ]
    );
}

#[test]
fn anthropic_keys_are_placed_by_a_person_and_retired_not_deleted() {
    assert_eq!(
        with("anthropic", "", "revoke = { mode = \"archive\" }"),
        Vec::<String>::new()
    );
    assert_eq!(
        with("anthropic", "", "revoke = { mode = \"delete\" }"),
        [
            "policy[0].revoke.mode: \"delete\" is not available for anthropic providers; use \"disable\" or \"archive\" (policy \"x\")"
        ]
    );
    let got = with("anthropic", "", "key = { name = \"k-{rotation}\" }");
    assert!(
        got[0].starts_with("policy[0].key.name: anthropic keys are made by a person"),
        "{got:?}"
    );
    let got = with("anthropic", "", "verify = { model = \"claude-3-5-haiku\" }");
    assert!(
        got[0].starts_with(
            "policy[0].verify.mode: \"chat\" is not available for anthropic providers"
        ),
        "{got:?}"
    );
}

#[test]
fn openrouter_models_list_proves_nothing_unless_through_a_gateway() {
    let got = with("openrouter", "", "verify = { mode = \"models\" }");
    assert!(
        got[0].starts_with(
            "policy[0].verify.mode: \"models\" is not available for openrouter providers"
        ),
        "{got:?}"
    );
    assert_eq!(
        with(
            "openrouter",
            "",
            "verify = { mode = \"models\", base_url = \"https://gw.internal/v1\" }"
        ),
        Vec::<String>::new()
    );
    let got = with(
        "openrouter",
        "",
        "verify = { mode = \"key-info\", base_url = \"https://gw/v1\" }",
    );
    assert!(
        got[0].contains("is not available for verification through verify.base_url"),
        "{got:?}"
    );
    let got = with("openrouter", "", "verify = { base_url = \"gw\" }");
    assert!(
        got.iter()
            .any(|p| p.starts_with("policy[0].verify.base_url: is not a URL")),
        "{got:?}"
    );
}

#[test]
fn notifiers_are_checked_and_policies_must_name_existing_ones() {
    let ok =
        "[notify.ops]\nurl = \"env:HOOK\"\nformat = \"slack\"\non = [\"failure\", \"success\"]\n";
    assert_eq!(
        problems_with(&format!(
            "{ok}[[policy]]\nname = \"x\"\nprovider = \"or\"\nmax_age = \"30d\"\nnotify = [\"ops\"]\ntarget = {{ store = \"aws\", secret_id = \"s\" }}\n"
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        with("openrouter", "", "notify = [\"pager\"]"),
        ["policy[0].notify: no notifier named \"pager\"; none are defined (policy \"x\")"]
    );
    let got = problems_with(
        "[notify.bad]\nurl = \"https://hooks.slack.com/services/T/B/secret\"\nformat = \"teams\"\nretries = 99\non = [\"sometimes\"]\ntimeout = \"0s\"\n",
    );
    let paths: Vec<&str> = got.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "notify.bad.format",
            "notify.bad.url",
            "notify.bad.timeout",
            "notify.bad.retries",
            "notify.bad.on"
        ],
        "{got:?}"
    );
    assert!(
        got.iter().all(|p| !p.contains("hooks.slack.com")),
        "a literal webhook URL is never echoed: {got:?}"
    );
}

#[test]
fn operating_fields_of_the_daemon_are_checked() {
    let text = "[daemon]\nstate = \"file:/s\"\naudit_log = \"\"\nadmin_token = \"hunter2\"\nshutdown_timeout = \"0s\"\n";
    let raw: crate::config::raw::RawConfig = toml_raw(text);
    let now = chrono::Utc::now();
    let problems = super::validate(raw, std::path::Path::new("/"), now).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "daemon.audit_log",
            "daemon.admin_token",
            "daemon.shutdown_timeout"
        ]
    );
    assert!(problems.iter().all(|p| !p.message.contains("hunter2")));
}

fn toml_raw(text: &str) -> crate::config::raw::RawConfig {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

#[test]
fn rate_limit_and_max_concurrent_are_optional_and_bounded() {
    let good = "rate_limit = \"50/s\"\nmax_concurrent = 4";
    assert_eq!(with("openrouter", good, ""), Vec::<String>::new());
    let edges = "rate_limit = \"10000/m\"\nmax_concurrent = 1024";
    assert_eq!(with("anthropic", edges, ""), Vec::<String>::new());
    assert_eq!(
        with("openrouter", "rate_limit = \"1/s\"\nmax_concurrent = 1", ""),
        Vec::<String>::new()
    );
    for bad in [
        "0/s",
        "10001/s",
        "50",
        "50/h",
        "50/S",
        "-5/s",
        "+5/s",
        " 5/s",
        "5/s ",
        "5.5/s",
        "/s",
        "5/",
        "99999999999999999999/s",
        "",
    ] {
        let got = with("openrouter", &format!("rate_limit = \"{bad}\""), "");
        assert_eq!(got.len(), 1, "{bad:?}: {got:?}");
        assert!(
            got[0].starts_with("providers.p.rate_limit: ")
                && got[0].contains("is not a rate: expected \"R/s\" or \"R/m\""),
            "{bad:?}: {got:?}"
        );
    }
    for bad in [0, -1, 1025, i64::MAX] {
        let got = with("openrouter", &format!("max_concurrent = {bad}"), "");
        assert_eq!(
            got,
            vec![format!(
                "providers.p.max_concurrent: must be between 1 and 1024, got {bad}"
            )],
        );
    }
}

#[test]
fn a_rate_is_its_count_per_second_or_minute() {
    use super::entries::parse_rate;
    use std::time::Duration;
    let rate = parse_rate("50/s").unwrap();
    assert_eq!((rate.count, rate.per), (50, Duration::from_secs(1)));
    assert_eq!(rate.interval(), Duration::from_millis(20));
    let rate = parse_rate("600/m").unwrap();
    assert_eq!((rate.count, rate.per), (600, Duration::from_secs(60)));
    assert_eq!(rate.interval(), Duration::from_millis(100));
    assert!(parse_rate("0/m").is_none());
}
