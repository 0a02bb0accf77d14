//! Loading a config text end to end: syntax, env overrides, shape and
//! validation problems, each by its field path.
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::{SecretRef, StateLocation, StoreKind};

const BASE: &str = r#"
[daemon]
state = "file:state"

[providers.openrouter]
kind = "openrouter"
management_key = "file:keys/management"

[stores.aws]
kind = "aws-secrets-manager"
region = "us-east-1"

[stores.local]
kind = "file"
dir = "/abs/secrets"
"#;

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rekey.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_overrides_replace_fields_in_any_section() {
    let (_dir, path) = write_config(BASE);
    let env = vars(&[
        ("REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS", "4"),
        ("REKEY_STORES__AWS__ENDPOINT_URL", "http://127.0.0.1:5000"),
    ]);
    let config = load_file_with_env(&path, env).unwrap();
    assert_eq!(config.daemon.max_concurrent_rotations, 4);
    let aws = StoreKind::AwsSecretsManager {
        region: "us-east-1".into(),
        endpoint_url: Some("http://127.0.0.1:5000".into()),
    };
    assert_eq!(config.stores["aws"].kind, aws);
}

#[test]
fn rekey_variables_without_a_double_underscore_are_not_config() {
    let (_dir, path) = write_config(BASE);
    let env = vars(&[
        ("REKEY_FAILPOINT", "after_create"),
        ("REKEY_TEST_MOTO_URL", "http://127.0.0.1:5000"),
        ("REKEY_LOG", "debug"),
        ("OTHER__THING", "1"),
    ]);
    assert!(load_file_with_env(&path, env).is_ok());
}

#[test]
fn a_bad_env_override_is_reported_at_its_field() {
    let (_dir, path) = write_config(BASE);
    let env = vars(&[("REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS", "0")]);
    let Err(ConfigError::Invalid { problems, .. }) = load_file_with_env(&path, env) else {
        panic!("expected Invalid");
    };
    assert_eq!(problems[0].path, "daemon.max_concurrent_rotations");
}

#[test]
fn relative_paths_resolve_against_the_config_files_directory() {
    let (dir, path) = write_config(BASE);
    let config = load_file_with_env(&path, Vec::new()).unwrap();
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(config.daemon.state, StateLocation::File(base.join("state")));
    let key = SecretRef::File(base.join("keys/management"));
    assert_eq!(config.providers["openrouter"].management_key, key);
    let local = StoreKind::File {
        dir: "/abs/secrets".into(),
    };
    assert_eq!(config.stores["local"].kind, local);
}

#[test]
fn the_extension_picks_the_format() {
    assert_eq!(
        SourceFormat::from_path(Path::new("a.toml")),
        Some(SourceFormat::Toml)
    );
    assert_eq!(
        SourceFormat::from_path(Path::new("a.yml")),
        Some(SourceFormat::Yaml)
    );
    assert_eq!(
        SourceFormat::from_path(Path::new("a.yaml")),
        Some(SourceFormat::Yaml)
    );
    assert_eq!(SourceFormat::from_path(Path::new("a.json")), None);
    let err = load_file_with_env(Path::new("/nonexistent/rekey.json"), Vec::new());
    assert!(matches!(err, Err(ConfigError::Read { message, .. }) if message.contains(".toml")));
}

#[test]
fn a_missing_file_is_a_read_error_naming_the_file() {
    let err = load_file_with_env(Path::new("/nonexistent/rekey.toml"), Vec::new()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/rekey.toml: "),
        "{err}"
    );
}

#[test]
fn a_syntax_error_gives_position_and_reason_but_not_the_line() {
    let text = "[providers.x]\nmanagement_key = \"sk-or-v1-secret\n";
    let err = load_str(text, SourceFormat::Toml, Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("sk-or-v1"), "the line leaked: {err}");
    let yaml = "daemon:\n  state: [\"sk-or-v1-secret\"\n";
    let err = load_str(yaml, SourceFormat::Yaml, Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains("sk-or-v1"), "the line leaked: {err}");
}

#[test]
fn a_value_of_the_wrong_type_is_not_echoed() {
    let text = "[daemon]\nstate = \"file:/s\"\nmax_concurrent_rotations = \"sk-or-v1-secret\"\n";
    let Err(ConfigError::Invalid { problems, .. }) =
        load_str(text, SourceFormat::Toml, Path::new("/"))
    else {
        panic!("expected Invalid");
    };
    assert_eq!(problems[0].path, "daemon.max_concurrent_rotations");
    assert!(
        !problems[0].message.contains("sk-or"),
        "{}",
        problems[0].message
    );
}

#[test]
fn an_unknown_field_is_named_by_its_path_with_a_suggestion() {
    let text =
        "[daemon]\nstate = \"file:/s\"\n[[policy]]\nname = \"a\"\nverify = { modle = \"x\" }\n";
    let Err(ConfigError::Invalid { problems, .. }) =
        load_str(text, SourceFormat::Toml, Path::new("/"))
    else {
        panic!("expected Invalid");
    };
    assert_eq!(
        problems[0].to_string(),
        "policy[0].verify.modle: unknown field; did you mean \"model\"?"
    );
    let Err(ConfigError::Invalid { problems, .. }) =
        load_str("bogus = 1\n", SourceFormat::Toml, Path::new("/"))
    else {
        panic!("expected Invalid");
    };
    assert_eq!(problems[0].path, "bogus");
}

#[test]
fn nesting_far_past_any_config_is_refused_not_a_stack_overflow() {
    let yaml = "[".repeat(100_000) + &"]".repeat(100_000);
    let err = load_str(&yaml, SourceFormat::Yaml, Path::new("/")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    let toml = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = load_str(&toml, SourceFormat::Toml, Path::new("/")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn a_yaml_alias_bomb_is_refused_as_a_read_error() {
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
    let err = load_str(bomb, SourceFormat::Yaml, Path::new("/")).unwrap_err();
    let ConfigError::Read { message, .. } = err else {
        panic!("expected Read, got {err}");
    };
    assert!(message.contains("YAML anchors"), "{message}");
}

#[test]
fn env_values_must_parse_as_the_fields_type() {
    let (_dir, path) = write_config(BASE);
    for (var, value, field) in [
        (
            "REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS",
            "1.5",
            "daemon.max_concurrent_rotations",
        ),
        (
            "REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS",
            "sk-or-v1-abcdef",
            "daemon.max_concurrent_rotations",
        ),
    ] {
        let Err(ConfigError::Invalid { problems, .. }) =
            load_file_with_env(&path, vars(&[(var, value)]))
        else {
            panic!("{var}={value} must be refused");
        };
        assert_eq!(problems[0].path, field);
        assert!(
            !problems[0].message.contains("abcdef"),
            "{}",
            problems[0].message
        );
    }
    let env = vars(&[("REKEY_DAEMON__ADMIN_LISTEN", "127.0.0.1:1")]);
    let config = load_file_with_env(&path, env).unwrap();
    assert_eq!(config.daemon.admin_listen.port(), 1);
}

#[test]
fn wrong_types_in_the_file_are_refused_not_converted() {
    let cases = [
        (
            "[daemon]\nstate = \"file:/s\"\nmax_concurrent_rotations = 1.5\n",
            "daemon.max_concurrent_rotations",
        ),
        ("[daemon]\nstate = true\n", "daemon.state"),
        (
            "[daemon]\nstate = \"file:/s\"\n[[policy]]\nname = true\n",
            "policy[0].name",
        ),
        (
            "[daemon]\nstate = \"file:/s\"\n[[policy]]\ntarget = { create = 1.5 }\n",
            "policy[0].target.create",
        ),
        (
            "[daemon]\nstate = \"file:/s\"\n[[policy]]\nkey = { include_byok_in_limit = nan }\n",
            "policy[0].key.include_byok_in_limit",
        ),
        (
            "[daemon]\nstate = \"file:/s\"\n[[policy]]\nkey = { limit = nan }\n",
            "policy[0].key.limit",
        ),
    ];
    for (text, field) in cases {
        let Err(ConfigError::Invalid { problems, .. }) =
            load_str(text, SourceFormat::Toml, Path::new("/"))
        else {
            panic!("{text} must be refused");
        };
        assert_eq!(problems[0].path, field, "{text}");
    }
}

#[test]
fn yaml_nan_and_unsupported_keys_are_refused_without_quoting_them() {
    let nan = "daemon:\n  state: file:/s\npolicy:\n  - key: { limit: .nan }\n";
    let err = load_str(nan, SourceFormat::Yaml, Path::new("/")).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    let root = "sk-or-v1-abcdef\n";
    let err = load_str(root, SourceFormat::Yaml, Path::new("/")).unwrap_err();
    assert!(!err.to_string().contains("abcdef"), "{err}");
    let key = "daemon:\n  state: file:/s\n? [sk-or-v1-abcdef]\n: 1\n";
    let err = load_str(key, SourceFormat::Yaml, Path::new("/")).unwrap_err();
    assert!(!err.to_string().contains("abcdef"), "{err}");
}

fn invalid(result: Result<Config, ConfigError>) -> Vec<String> {
    match result {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unknown_fields_in_different_tables_are_all_reported() {
    let text = format!(
            "{BASE}\n[daemon.failure_backoff]\nminn = \"1s\"\n\n[[policy]]\nname = \"a\"\nshedule = \"@daily\"\n"
        )
        .replace("region = \"us-east-1\"", "regoin = \"us-east-1\"");
    let problems = invalid(load_str(&text, SourceFormat::Toml, Path::new("/")));
    for expected in [
        "daemon.failure_backoff.minn: unknown field; did you mean \"min\"?",
        "policy[0].shedule: unknown field; did you mean \"schedule\"?",
        "stores.aws.regoin: unknown field; did you mean \"region\"?",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "{expected} in {problems:#?}"
        );
    }
}

#[test]
fn a_wrong_type_is_reported_once_not_again_as_missing() {
    let text =
        "[daemon]\nstate = 5\nbogus = 1\n[[policy]]\nname = \"a\"\nschedule = \"61 * * * *\"\n";
    let problems = invalid(load_str(text, SourceFormat::Toml, Path::new("/")));
    let state: Vec<_> = problems
        .iter()
        .filter(|p| p.starts_with("daemon.state"))
        .collect();
    assert_eq!(state.len(), 1, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("daemon.bogus: unknown field"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("policy[0].schedule: minute field")),
        "validation still runs past shape problems: {problems:#?}"
    );
}

#[test]
fn a_misspelt_env_override_names_its_variable() {
    let (_dir, path) = write_config(BASE);
    let env = vars(&[("REKEY_DAEMON__MAX_CONCURENT_ROTATIONS", "2")]);
    let problems = invalid(load_file_with_env(&path, env));
    assert_eq!(
        problems,
        [
            "daemon.max_concurent_rotations: unknown field (from the environment variable \
              REKEY_DAEMON__MAX_CONCURENT_ROTATIONS); did you mean \"max_concurrent_rotations\"?"
        ]
    );
}

#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    let (_dir, path) = write_config(BASE);
    let env = vars(&[
        ("REKEY_DAEMON__SWEEP_TIMEOUT", "forever"),
        ("REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS", "many"),
    ]);
    let problems = invalid(load_file_with_env(&path, env));
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for (field, var) in [
        ("daemon.sweep_timeout", "REKEY_DAEMON__SWEEP_TIMEOUT"),
        (
            "daemon.max_concurrent_rotations",
            "REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS",
        ),
    ] {
        let problem = problems.iter().find(|p| p.starts_with(field)).unwrap();
        assert!(
            problem.contains(&format!("(from the environment variable {var})")),
            "{problem}"
        );
        assert!(
            !problem.contains("forever") && !problem.contains("many"),
            "{problem}"
        );
    }
}

#[test]
fn every_toml_date_is_reported_with_the_other_problems() {
    let text = "[daemon]\nstate = 2026-01-01\nbogus = 1\n";
    let problems = invalid(load_str(text, SourceFormat::Toml, Path::new("/")));
    assert!(
        problems[0].starts_with("daemon.state: invalid type: date/time"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("daemon.bogus: unknown field"))
    );
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.starts_with("daemon.state"))
            .count(),
        1
    );
}

#[test]
fn zero_policies_is_a_valid_config() {
    let config = load_str(
        "[daemon]\nstate = \"file:/s\"\n",
        SourceFormat::Toml,
        Path::new("/"),
    )
    .unwrap();
    assert!(config.policies.is_empty());
    assert_eq!(config.daemon.catch_up_jitter, Duration::from_secs(30));
}
