//! Every config fixture against what it must produce: the valid ones load
//! into the expected types, each invalid one yields exactly its listed
//! problems. A fixture without a table entry fails the run, so none rots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rekey::config::load::load_file_with_env;
use rekey::config::{Config, ConfigError, ConfigProblem, SecretRef, StateLocation, StoreKind};
use rekey::policy::{Format, LimitReset, RevokeMode, VerifyMode};

/// (fixture file name, [(problem path, fragment of its message)]).
const INVALID: &[(&str, &[(&str, &str)])] = &[
    (
        "unknown-field.toml",
        &[(
            "policy[0].verify.modle",
            "unknown field; did you mean \"model\"?",
        )],
    ),
    (
        "unknown-field.yaml",
        &[(
            "daemon.max_concurent_rotations",
            "unknown field; did you mean \"max_concurrent_rotations\"?",
        )],
    ),
    (
        "unknown-fields-everywhere.toml",
        &[
            ("daemon.admin_lisen", "did you mean \"admin_listen\"?"),
            ("stores.aws.regoin", "did you mean \"region\"?"),
            // The misspelt field leaves the real one unset, which is a problem too.
            ("stores.aws.region", "required"),
            ("policy[0].revoke.graze", "did you mean \"grace\"?"),
            (
                "policy[0].colour",
                "unknown field; expected one of name, provider",
            ),
        ],
    ),
    (
        "bad-cron.toml",
        &[("policy[0].schedule", "minute field `61`")],
    ),
    (
        "bad-duration.toml",
        &[("policy[0].max_age", "not a duration")],
    ),
    (
        "bad-timezone.toml",
        &[("policy[0].timezone", "unknown time zone \"Europe/Berlinn\"")],
    ),
    (
        "grace-too-long.toml",
        &[(
            "policy[0].revoke.grace",
            "shorter than the rotation interval 1d (",
        )],
    ),
    (
        "literal-secret.toml",
        &[(
            "providers.openrouter-prod.management_key",
            "literal secrets are not allowed",
        )],
    ),
    (
        "same-field-twice.toml",
        &[(
            "policy[1].target",
            "same field \"OPENROUTER_API_KEY\" of secret \"prod/llm\"",
        )],
    ),
    (
        "raw-shares-secret.toml",
        &[("policy[1].target", "writes the same secret \"prod/llm\"")],
    ),
    (
        "two-entries-one-secret.toml",
        &[(
            "policy[1].target",
            "which it names as \"prod/llm\" in store \"aws\" (both are aws-sm:us-east-1/prod/llm)",
        )],
    ),
    (
        "unknown-provider.toml",
        &[(
            "policy[0].provider",
            "no provider named \"openrouter-staging\"",
        )],
    ),
    (
        "unknown-store.toml",
        &[(
            "policy[0].target.store",
            "no store named \"vault\"; defined: \"aws\"",
        )],
    ),
    (
        "duplicate-policy.toml",
        &[(
            "policy[1].name",
            "duplicate policy name \"prod-openrouter\"",
        )],
    ),
    (
        "no-schedule.toml",
        &[("policy[0].schedule", "needs a schedule, a max_age, or both")],
    ),
    (
        "missing-field-for-json.toml",
        &[(
            "policy[0].target.field",
            "required for the json and env formats",
        )],
    ),
    (
        "field-for-raw.toml",
        &[(
            "policy[0].target.field",
            "only used by the json and env formats",
        )],
    ),
    (
        "name-without-rotation.toml",
        &[("policy[0].key.name", "must contain {rotation}")],
    ),
    (
        "bad-state.toml",
        &[(
            "daemon.state",
            "write \"file:<dir>\" or \"dynamodb:<table>\"",
        )],
    ),
    ("missing-state.toml", &[("daemon.state", "required")]),
    (
        "chat-without-model.toml",
        &[(
            "policy[0].verify.model",
            "required when verify.mode is \"chat\"",
        )],
    ),
    (
        "bad-policy-name.toml",
        &[("policy[0].name", "must be 1-63 of a-z")],
    ),
    (
        "store-field-of-other-kind.toml",
        &[(
            "stores.local.region",
            "only applies to stores of kind \"aws-secrets-manager\"",
        )],
    ),
    (
        "backoff-min-over-max.toml",
        &[("daemon.failure_backoff", "min (2h) is longer than max (1h)")],
    ),
    (
        "wrong-type.toml",
        &[(
            "daemon.max_concurrent_rotations",
            "invalid type: string, expected an integer",
        )],
    ),
    (
        "openai-default-project.toml",
        &[(
            "policy[0].project_id",
            "OpenAI's Default project cannot hold service accounts",
        )],
    ),
    ("never-fires.toml", &[("policy[0].schedule", "never fires")]),
    (
        "expires-before-replaced.toml",
        &[("policy[0].key.expires_after", "would expire keys before")],
    ),
    (
        "arouter-with-litellm-param.toml",
        &[(
            "policy[0].key.models",
            "not supported by arouter providers (it supports limit, limit_reset, expires_after, allowed_providers, allowed_models)",
        )],
    ),
    (
        "litellm-with-arouter-param.toml",
        &[(
            "policy[0].key.allowed_models",
            "not supported by litellm providers (it supports models, max_budget, budget_duration)",
        )],
    ),
    (
        "duration-past-bound.toml",
        &[("policy[0].max_age", "must be at most 3650d")],
    ),
    (
        "grace-past-bound.toml",
        &[("policy[0].revoke.grace", "must be at most 90d")],
    ),
    (
        "daemon-durations-past-bound.toml",
        &[
            ("daemon.catch_up_jitter", "must be at most 1d"),
            ("daemon.shutdown_timeout", "must be at most 1h"),
            ("daemon.failure_backoff.max", "must be at most 30d"),
        ],
    ),
    (
        "float-for-integer.toml",
        &[(
            "daemon.max_concurrent_rotations",
            "invalid type: floating point number, expected an integer",
        )],
    ),
    (
        "bool-for-string.toml",
        &[("policy[0].name", "invalid type: boolean, expected a string")],
    ),
    (
        "date-for-string.toml",
        &[("policy[0].name", "invalid type: date/time")],
    ),
    (
        "inf-limit.toml",
        &[("policy[0].key.limit", "must be a finite number")],
    ),
    (
        "amount-past-bound.toml",
        &[("policy[0].key.limit", "must be between 0 and 1e9")],
    ),
    (
        "file-secret-id-escapes.toml",
        &[(
            "policy[0].target.secret_id",
            "must not contain '.' or '..' components",
        )],
    ),
    (
        "file-secret-id-dot.toml",
        &[(
            "policy[0].target.secret_id",
            "must not contain '.' or '..' components",
        )],
    ),
    (
        "file-secret-id-reserved.toml",
        &[(
            "policy[0].target.secret_id",
            "must not end a path component in .pending",
        )],
    ),
    (
        "bad-url.toml",
        &[
            ("providers.litellm.base_url", "is not a URL"),
            (
                "stores.aws.endpoint_url",
                "must be an http:// or https:// URL",
            ),
        ],
    ),
    (
        "key-in-duration.toml",
        &[("policy[0].max_age", "not a duration")],
    ),
    (
        "key-in-enum.toml",
        &[(
            "policy[0].target.format",
            "<value not shown> is not one of \"raw\", \"json\", \"env\"",
        )],
    ),
    (
        "set-member-collides.toml",
        &[(
            "policy_set[0].name",
            "duplicate policy name \"tenant-acme\" (also policy[0]) (member \"acme\")",
        )],
    ),
    (
        "set-bad-members-file.toml",
        &[
            (
                "policy_set[0].members",
                "bad-tenants.txt line 2: member id may hold only",
            ),
            (
                "policy_set[0].members",
                "bad-tenants.txt line 3: duplicate member \"acme\" (also line 1)",
            ),
        ],
    ),
    (
        "set-spread-too-long.toml",
        &[
            (
                "policy_set[0].spread",
                "6h must be shorter than the schedule's shortest gap between ticks 6h",
            ),
            (
                "policy_set[0].target.secret_id",
                "must contain {member}: otherwise every member writes the same secret",
            ),
        ],
    ),
    (
        "multiple-problems.toml",
        &[
            (
                "daemon.max_concurrent_rotations",
                "between 1 and 1024, got 0",
            ),
            ("policy[0].schedule", "found 4"),
            ("policy[0].target.store", "no store named \"vault\""),
        ],
    ),
];

/// Documents refused before they are parsed into a tree: (file, fragment of the message).
const UNREADABLE: &[(&str, &str)] = &[
    ("alias-bomb.yaml", "YAML anchors (&name) are not supported"),
    ("deep-nesting.yaml", "nested deeper than 32 levels"),
];

fn resources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/configs")
}

fn load(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, Vec::new())
}

fn problems_of(path: &Path) -> Vec<ConfigProblem> {
    match load(path) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("{}: expected Invalid, got {other:?}", path.display()),
    }
}

#[test]
fn every_invalid_fixture_yields_exactly_its_listed_problems() {
    let dir = resources().join("invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some((_, expected)) = INVALID.iter().find(|(file, _)| *file == name) else {
            panic!("fixture {name} has no entry in INVALID");
        };
        let problems = problems_of(&path);
        for (want_path, fragment) in *expected {
            let found = problems
                .iter()
                .any(|p| p.path == *want_path && p.message.contains(fragment));
            assert!(
                found,
                "{name}: no problem at {want_path} containing {fragment:?}; got {problems:#?}"
            );
        }
        assert_eq!(
            problems.len(),
            expected.len(),
            "{name}: unexpected extra problems: {problems:#?}"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        INVALID.len(),
        "INVALID lists fixtures that do not exist"
    );
}

#[test]
fn every_unreadable_fixture_is_refused_with_its_reason_and_position() {
    let dir = resources().join("unreadable");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some((_, fragment)) = UNREADABLE.iter().find(|(file, _)| *file == name) else {
            panic!("fixture {name} has no entry in UNREADABLE");
        };
        match load(&path) {
            Err(ConfigError::Read { message, .. }) => {
                assert!(message.contains(fragment), "{name}: {message}");
                assert!(message.starts_with("line "), "{name}: {message}");
            }
            other => panic!("{name}: expected Read, got {other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, UNREADABLE.len());
}

#[test]
fn a_key_pasted_into_any_field_is_not_echoed_by_rekey_check() {
    for name in ["key-in-duration.toml", "key-in-enum.toml"] {
        let path = resources().join("invalid").join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("rekey runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            !stderr.contains("0123456789abcdef"),
            "{name} leaked: {stderr}"
        );
    }
}

#[test]
fn rotate_refuses_a_grace_past_its_bound_as_a_usage_error() {
    let config = resources().join("valid-minimal.toml");
    for (grace, fragment) in [
        ("300000y", "must be at most 90d"),
        ("18446744073709551615s", "must be at most 90d"),
        ("sk-or-v1-0123456789abcdef", "not a duration"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
            .args(["rotate", "-c"])
            .arg(&config)
            .args(["dev", "--now", "--grace", grace])
            .output()
            .expect("rekey runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{grace}: {stderr}");
        assert!(stderr.contains(&format!("--grace: {fragment}")), "{stderr}");
        assert!(!stderr.contains(grace), "{grace} echoed: {stderr}");
    }
}

#[test]
fn a_literal_secret_is_refused_without_echoing_it() {
    let path = resources().join("invalid/literal-secret.toml");
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("literal secrets are not allowed"), "{err}");
    assert!(
        !err.contains("sk-or-v1"),
        "the secret leaked into the error: {err}"
    );
}

#[test]
fn an_invalid_config_prints_every_problem_on_its_own_line() {
    let path = resources().join("invalid/multiple-problems.toml");
    let text = load(&path).unwrap_err().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("multiple-problems.toml: 3 problems:"),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.trim().starts_with("daemon.max_concurrent_rotations: "))
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.trim().starts_with("policy[0].schedule: "))
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.trim().starts_with("policy[0].target.store: "))
    );
}

#[test]
fn the_minimal_config_gets_every_default() {
    let config = load(&resources().join("valid-minimal.toml")).unwrap();
    let d = &config.daemon;
    assert_eq!(d.state, StateLocation::File(resources().join("state")));
    assert_eq!(d.admin_listen.to_string(), "127.0.0.1:9477");
    assert_eq!(d.max_concurrent_rotations, 8);
    assert_eq!(
        (d.failure_backoff.min, d.failure_backoff.max),
        (mins(5), hours(24))
    );
    assert_eq!(d.catch_up_jitter, Duration::from_secs(30));
    let provider = &config.providers["openrouter"];
    assert_eq!(provider.base_url, "https://openrouter.ai/api/v1");
    assert_eq!(provider.request_timeout, Duration::from_secs(30));
    let store = &config.stores["local"].kind;
    assert_eq!(
        *store,
        StoreKind::File {
            dir: resources().join("secrets")
        }
    );
    let policy = config.policy("dev").unwrap();
    assert!(policy.schedule.is_none());
    assert_eq!(policy.key.name, "rekey-{policy}-{rotation}");
    assert_eq!(
        (policy.target.format, policy.target.create),
        (Format::Raw, false)
    );
    assert_eq!(policy.verify.mode, VerifyMode::KeyInfo);
    assert_eq!(policy.verify.timeout, mins(2));
    assert_eq!(
        (policy.revoke.grace, policy.revoke.mode),
        (hours(1), RevokeMode::Delete)
    );
}

#[test]
fn the_example_config_loads_with_every_field_as_written() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rekey.example.toml");
    assert_example(&load(&path).unwrap());
}

#[test]
fn the_yaml_twin_loads_to_the_same_config_as_the_example() {
    assert_example(&load(&resources().join("valid.yaml")).unwrap());
}

fn assert_example(config: &Config) {
    assert_eq!(
        config.daemon.state,
        StateLocation::File("/var/lib/rekey/state".into())
    );
    let key = SecretRef::AwsSm {
        secret_id: "rekey/openrouter-management".into(),
        field: Some("key".into()),
    };
    assert_eq!(config.providers["openrouter-prod"].management_key, key);
    let batch_key = SecretRef::File("/etc/rekey/openrouter-batch.key".into());
    assert_eq!(
        config.providers["openrouter-batch"].management_key,
        batch_key
    );
    let aws = StoreKind::AwsSecretsManager {
        region: "eu-central-1".into(),
        endpoint_url: None,
    };
    assert_eq!(config.stores["aws"].kind, aws);
    let prod = config.policy("prod-openrouter").unwrap();
    assert_eq!(
        prod.schedule.as_ref().unwrap().to_string(),
        "0 3 1 * * (Europe/Berlin)"
    );
    assert_eq!(prod.max_age, Some(days(35)));
    assert_eq!(prod.revoke.consumer_refresh, Some(hours(1)));
    assert_eq!(
        (prod.key.limit, prod.key.limit_reset),
        (Some(500.0), Some(LimitReset::Monthly))
    );
    assert_eq!(
        (prod.key.include_byok_in_limit, prod.key.expires_after),
        (Some(false), Some(days(60)))
    );
    assert_eq!(
        (prod.target.format, prod.target.field.as_deref()),
        (Format::Json, Some("OPENROUTER_API_KEY"))
    );
    assert_eq!(
        prod.verify.mode,
        VerifyMode::Chat {
            model: "openai/gpt-4o-mini".into()
        }
    );
    assert_eq!(prod.adopt.key_id.as_deref(), Some("0f3c6a1e9b"));
    let batch = config.policy("batch-worker").unwrap();
    assert_eq!(
        (batch.target.format, batch.target.create),
        (Format::Env, true)
    );
    assert_eq!(
        (batch.revoke.grace, batch.revoke.mode),
        (hours(6), RevokeMode::Disable)
    );
    assert_eq!(batch.verify.mode, VerifyMode::KeyInfo);
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

fn hours(n: u64) -> Duration {
    mins(n * 60)
}

fn days(n: u64) -> Duration {
    hours(n * 24)
}

#[test]
fn rekey_check_refuses_every_invalid_fixture_with_exit_2_and_its_field_paths() {
    for (name, expected) in INVALID {
        let path = resources().join("invalid").join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
            .args(["check", "-c"])
            .arg(&path)
            .env_remove("REKEY_DAEMON__STATE")
            .output()
            .expect("rekey runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: exit code; stderr: {stderr}"
        );
        for (want_path, fragment) in *expected {
            assert!(
                stderr.contains(&format!("{want_path}: ")) && stderr.contains(fragment),
                "{name}: stderr names {want_path} and {fragment:?}: {stderr}"
            );
        }
    }
}

#[test]
fn rekey_check_refuses_every_unreadable_fixture_with_exit_2() {
    for (name, fragment) in UNREADABLE {
        let path = resources().join("unreadable").join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("rekey runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(fragment), "{name}: {stderr}");
    }
}

#[test]
fn rekey_check_accepts_the_shipped_example_and_prints_each_policys_next_due_time() {
    // The example's shape is valid; of its credentials, the environment
    // variables are set here and the two files under /etc/rekey cannot exist
    // on a test machine: `check` names exactly those two, and exits 1 (a
    // restart can fix them), never 2 (a shape error).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rekey.example.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
        .args(["check", "-c"])
        .arg(&example)
        .env("ANTHROPIC_ADMIN_KEY", "set")
        .env("OPENAI_ADMIN_KEY", "set")
        .env("SLACK_WEBHOOK_URL", "https://hooks.example.invalid/x")
        .output()
        .expect("rekey runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        [
            "error: providers.openrouter-batch.management_key: cannot read /etc/rekey/openrouter-batch.key: No such file or directory (os error 2)",
            "error: daemon.admin_token: cannot read /etc/rekey/admin-token: No such file or directory (os error 2)",
        ],
        "{stdout}{stderr}"
    );
    let config = load(&example).unwrap();
    for policy in &config.policies {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{}:", policy.name)));
        assert!(
            line.is_some_and(|l| l.contains("next due")),
            "{}: {stdout}",
            policy.name
        );
    }
}

#[test]
fn a_policy_set_fixture_expands_to_one_policy_per_member_of_its_file() {
    let path = resources().join("valid-policy-set.toml");
    let config = load(&path).unwrap();
    let names: Vec<&str> = config.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tenant-acme", "tenant-globex", "tenant-initech"]);
    let globex = &config.policies[1];
    assert_eq!(globex.target.secret_id.as_str(), "tenants/globex/llm");
    assert_eq!(globex.key.name, "tenant-globex-{rotation}");
    assert_eq!(globex.key.limit_reset, Some(LimitReset::Monthly));
    let offsets: Vec<u64> = (config.policies.iter())
        .map(|p| p.spread_offset().as_secs())
        .collect();
    assert!(offsets.iter().all(|&o| o < 4 * 3600), "{offsets:?}");
    assert_eq!(offsets[0], 7950, "fnv1a64(\"tenant-acme\") mod 4h");
    assert_eq!(
        config.member_files,
        [resources().join("members/tenants.txt")]
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
        .args(["check", "-c"])
        .arg(&path)
        .env("OPENROUTER_MANAGEMENT_KEY", "set")
        .output()
        .expect("rekey runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok, 3 policies"), "{stdout}");
    assert!(
        stdout.contains("  tenant-acme: provider openrouter-prod, secret aws:tenants/acme/llm, schedule 0 3 * * * (UTC) +2h 12m 30s (spread), next due"),
        "{stdout}"
    );
    let warning = "warning: policy set \"tenant-{member}\": revoke.grace (1h) is shorter than \
                   revoke.consumer_refresh (2h): a consumer that re-reads the store every 2h \
                   may still be using the old key when it is revoked; make the grace at least 2h";
    assert_eq!(
        stdout.matches("warning: ").count(),
        1,
        "once for the set: {stdout}"
    );
    assert!(stdout.contains(warning), "{stdout}");
}
