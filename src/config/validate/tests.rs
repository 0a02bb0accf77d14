//! Validation scenarios for the daemon, provider and store sections, secret
//! references and single policies (cross-policy rules are tested in `rules`).

use super::*;
use crate::config::SecretRef;

/// A config with one provider (`or`) and two stores (`aws`, `local`) plus `extra`,
/// validated at a fixed instant; returns the problems as `path: message` lines.
pub(in crate::config) fn problems_with(extra: &str) -> Vec<String> {
    let text = format!(
        "[daemon]\nstate = \"file:/s\"\n[providers.or]\nkind = \"openrouter\"\n\
         management_key = \"env:K\"\n[stores.aws]\nkind = \"aws-secrets-manager\"\n\
         region = \"r\"\n[stores.local]\nkind = \"file\"\ndir = \"/d\"\n{extra}"
    );
    let raw = raw_of(&text);
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    match validate(raw, Path::new("/etc/rekey"), now) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// The raw config of a TOML text, read strictly as `load` reads it.
pub(in crate::config) fn raw_of(text: &str) -> RawConfig {
    let (tree, _) = crate::config::toml_tree::toml_tree(text).unwrap();
    crate::config::strict::from_node(tree).unwrap()
}

fn parse_ref(raw: &str) -> (Option<SecretRef>, Vec<ConfigProblem>) {
    let mut p = Problems::default();
    let parsed = secret_ref(
        &mut p,
        "providers.x.management_key",
        raw,
        Path::new("/etc/rekey"),
    );
    (parsed, p.0)
}

#[test]
fn the_three_secret_reference_forms_parse() {
    let cases = [
        (
            "env:OPENROUTER_KEY",
            SecretRef::Env("OPENROUTER_KEY".into()),
        ),
        ("file:/run/keys/or", SecretRef::File("/run/keys/or".into())),
        ("file:keys/or", SecretRef::File("/etc/rekey/keys/or".into())),
        (
            "aws-sm:rekey/mgmt",
            SecretRef::AwsSm {
                secret_id: "rekey/mgmt".into(),
                field: None,
            },
        ),
        (
            "aws-sm:rekey/mgmt#key",
            SecretRef::AwsSm {
                secret_id: "rekey/mgmt".into(),
                field: Some("key".into()),
            },
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(parse_ref(raw), (Some(want), Vec::new()), "{raw}");
    }
}

#[test]
fn literals_and_malformed_references_are_refused_without_echoing_them() {
    let cases = [
        ("sk-or-v1-abcdef", "literal secrets are not allowed"),
        ("env:", "malformed reference"),
        ("env:sk-or-v1-abcdef", "malformed reference"),
        ("file:", "malformed reference"),
        ("aws-sm:", "malformed reference"),
        ("aws-sm:id#", "malformed reference"),
    ];
    for (raw, fragment) in cases {
        let (parsed, problems) = parse_ref(raw);
        assert!(parsed.is_none(), "{raw}");
        assert_eq!(problems.len(), 1, "{raw}");
        assert!(
            problems[0].message.contains(fragment),
            "{raw}: {}",
            problems[0].message
        );
        assert!(
            !problems[0].message.contains("abcdef"),
            "echoed: {}",
            problems[0].message
        );
    }
}

#[test]
fn store_kinds_require_their_own_fields_and_refuse_the_others() {
    let got = problems_with(
        "[stores.a]\nkind = \"aws-secrets-manager\"\ndir = \"/x\"\n\
         [stores.f]\nkind = \"file\"\nendpoint_url = \"http://x\"\n\
         [stores.v]\nkind = \"vault\"\n",
    );
    assert_eq!(
        got,
        [
            "stores.a.dir: only applies to stores of kind \"file\"",
            "stores.a.region: required",
            "stores.f.endpoint_url: only applies to stores of kind \"aws-secrets-manager\"",
            "stores.f.dir: required",
            "stores.v.kind: unknown store kind \"vault\"; expected \"aws-secrets-manager\" or \"file\"",
        ]
    );
}

#[test]
fn daemon_values_are_checked_against_their_ranges() {
    let text = "[daemon]\nstate = \"file:/s\"\nadmin_listen = \"localhost\"\n\
                max_concurrent_rotations = 2000\ncatch_up_jitter = \"soon\"\n\
                failure_backoff = { min = \"0s\" }\n";
    let raw = raw_of(text);
    let problems = validate(raw, Path::new("/"), Utc::now()).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "daemon.admin_listen",
            "daemon.max_concurrent_rotations",
            "daemon.failure_backoff.min",
            "daemon.catch_up_jitter"
        ]
    );
}

#[test]
fn durations_are_written_like_the_config_file_writes_them() {
    assert_eq!(human(Duration::from_secs(35 * 86400)), "35d");
    assert_eq!(human(Duration::from_secs(90)), "1m 30s");
    assert_eq!(human(Duration::from_secs(86400 + 3600)), "1d 1h");
    assert_eq!(human(Duration::ZERO), "0ms");
}

// Single policies.

fn one(extra: &str) -> Vec<String> {
    problems_with(&format!(
        "[[policy]]\nname = \"p\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
         target = {{ store = \"aws\", secret_id = \"s\", format = \"env\", field = \"KEY\" }}\n{extra}"
    ))
}

#[test]
fn a_complete_policy_has_no_problems() {
    assert_eq!(one(""), Vec::<String>::new());
}

#[test]
fn verify_mode_follows_the_model_unless_stated() {
    assert!(one("verify = { model = \"openai/gpt-4o-mini\" }").is_empty());
    assert_eq!(
        one("verify = { mode = \"key-info\", model = \"m\" }"),
        ["policy[0].verify.model: only used when verify.mode is \"chat\" (policy \"p\")"]
    );
    assert_eq!(
        one("verify = { mode = \"ping\" }"),
        [
            "policy[0].verify.mode: \"ping\" is not one of \"chat\", \"key-info\", \"models\" (policy \"p\")"
        ]
    );
}

#[test]
fn key_names_may_use_only_the_known_placeholders() {
    assert!(one("key = { name = \"{policy}-{date}-{rotation}\" }").is_empty());
    let got = one("key = { name = \"{team}-{rotation}\" }");
    assert_eq!(
        got,
        [
            "policy[0].key.name: unknown placeholder \"{team}\"; use {policy}, {date}, {rotation} (policy \"p\")"
        ]
    );
}

#[test]
fn key_limits_and_resets_are_checked() {
    let got = one("key = { limit = -1, limit_reset = \"hourly\" }");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("policy[0].key.limit: must be between 0 and 1e9"));
    assert!(got[1].starts_with("policy[0].key.limit_reset: \"hourly\" is not one of"));
    assert!(one("key = { limit = 0, limit_reset = \"daily\" }").is_empty());
}

#[test]
fn an_env_target_field_must_be_a_variable_name() {
    let got = problems_with(
        "[[policy]]\nname = \"p\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
         target = { store = \"aws\", secret_id = \"s\", format = \"env\", field = \"MY-KEY\" }\n",
    );
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("policy[0].target.field: \"MY-KEY\" is not a variable name"));
}

#[test]
fn a_timezone_without_a_schedule_is_refused() {
    let got = one("timezone = \"Europe/Berlin\"");
    assert_eq!(
        got,
        ["policy[0].timezone: is set but there is no schedule for it to apply to (policy \"p\")"]
    );
}

#[test]
fn a_policy_missing_everything_reports_each_required_field() {
    let got = problems_with("[[policy]]\n");
    let paths: Vec<&str> = got.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "policy[0].name",
            "policy[0].provider",
            "policy[0].schedule",
            "policy[0].target"
        ]
    );
}
