//! Loading (TOML/YAML via the `config` crate, `REKEY_<SECTION>__<FIELD>` env
//! overrides) and validation into typed [`Config`]. Every problem is
//! collected, each naming its field path.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::Config;
use super::document;
use super::origin::{EnvOrigins, covered};
use super::raw::RawConfig;
use super::strict::{self, Node, ShapeError};
use super::validate::validate;

/// One thing wrong with a config, at one field path (`policy[2].schedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}: {}:\n{}", crate::text::plural(problems.len(), "problem", "problems"), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

/// The syntax of a config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Toml,
    Yaml,
}

impl SourceFormat {
    /// By extension: `.toml`, `.yaml` or `.yml`.
    pub fn from_path(path: &Path) -> Option<SourceFormat> {
        match path.extension()?.to_str()? {
            "toml" => Some(SourceFormat::Toml),
            "yaml" | "yml" => Some(SourceFormat::Yaml),
            _ => None,
        }
    }

    fn file_format(self) -> config::FileFormat {
        match self {
            SourceFormat::Toml => config::FileFormat::Toml,
            SourceFormat::Yaml => config::FileFormat::Yaml,
        }
    }
}

/// Reads and validates `path`, applying `REKEY_<SECTION>__<FIELD>` overrides
/// from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, std::env::vars())
}

/// [`load_file`] with the environment passed in, so tests need not mutate the process's.
pub fn load_file_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let read_error = |message: String| ConfigError::Read {
        file: path.to_path_buf(),
        message,
    };
    let format = SourceFormat::from_path(path)
        .ok_or_else(|| read_error("unsupported extension; use .toml, .yaml or .yml".into()))?;
    let text = document::read_bounded(path).map_err(read_error)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Absolute, so relative paths in the file stay right if the daemon changes directory.
    let base_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    load(&text, format, &base_dir, path, Some(env_overrides(env)))
}

/// Validates a config text (no env overrides); relative paths resolve against `base_dir`.
pub fn load_str(text: &str, format: SourceFormat, base_dir: &Path) -> Result<Config, ConfigError> {
    load(text, format, base_dir, Path::new("<inline config>"), None)
}

/// [`load_str`] with `REKEY_*` overrides passed in.
pub fn load_str_with_env(
    text: &str,
    format: SourceFormat,
    base_dir: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let overrides = Some(env_overrides(env));
    load(
        text,
        format,
        base_dir,
        Path::new("<inline config>"),
        overrides,
    )
}

/// Only `REKEY_*` variables with a `__` are config: `REKEY_FAILPOINT`,
/// `REKEY_LOG` and friends configure other things and would be refused as
/// unknown fields.
fn env_overrides(env: impl IntoIterator<Item = (String, String)>) -> config::Map<String, String> {
    env.into_iter()
        .filter(|(k, _)| k.starts_with("REKEY_") && k.contains("__"))
        .collect()
}

/// Env values stay text here (`try_parsing(false)`): the strict reader
/// parses each as the type of the field it lands in.
fn environment(vars: config::Map<String, String>) -> config::Environment {
    config::Environment::with_prefix("REKEY")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(false)
        .source(Some(vars))
}

fn load(
    text: &str,
    format: SourceFormat,
    base_dir: &Path,
    file: &Path,
    overrides: Option<config::Map<String, String>>,
) -> Result<Config, ConfigError> {
    let file = file.to_path_buf();
    let read_error = |message: String| ConfigError::Read {
        file: file.clone(),
        message,
    };
    document::check(text, format).map_err(read_error)?;
    let mut problems = match format {
        SourceFormat::Toml => document::toml_datetimes(text)
            .into_iter()
            .map(|path| ConfigProblem {
                path,
                message: DATETIME.into(),
            })
            .collect(),
        SourceFormat::Yaml => Vec::new(),
    };
    let origins = EnvOrigins::new(overrides.iter().flat_map(|vars| vars.keys()));
    let tree =
        layered(text, format, overrides).map_err(|e| read_error(syntax_message(&e.to_string())))?;
    let (raw, shape) = strict::read::<RawConfig>(tree);
    problems.extend(shape.into_iter().map(|e| origins.shape(shape_problem(e))));
    let reported: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
    let validated = match raw {
        Some(raw) => validate(raw, base_dir, Utc::now()),
        None => Err(Vec::new()),
    };
    match validated {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(ConfigError::Invalid { file, problems }),
        Err(more) => {
            let more = more.into_iter().filter(|p| !covered(&reported, &p.path));
            problems.extend(more.map(|p| origins.value(p)));
            Err(ConfigError::Invalid { file, problems })
        }
    }
}

const DATETIME: &str =
    "invalid type: date/time, expected a string, number or table (quote it if it is text)";

/// The file with the environment layered over it by the `config` crate, as
/// a tree that still knows each value's type and which leaves came from a
/// variable.
fn layered(
    text: &str,
    format: SourceFormat,
    overrides: Option<config::Map<String, String>>,
) -> Result<Node, config::ConfigError> {
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(text, format.file_format()));
    let mut env_layer = None;
    if let Some(vars) = overrides.filter(|v| !v.is_empty()) {
        builder = builder.add_source(environment(vars.clone()));
        let alone = config::Config::builder()
            .add_source(environment(vars))
            .build()?;
        env_layer = Some(root(alone, None)?);
    }
    root(builder.build()?, env_layer.as_ref())
}

fn root(config: config::Config, env: Option<&Node>) -> Result<Node, config::ConfigError> {
    let table: config::Map<String, config::Value> = config.try_deserialize()?;
    let value = config::Value::new(None, config::ValueKind::Table(table));
    Ok(Node::from_config(value, env))
}

/// Parser errors quote the offending source line, which may hold a secret:
/// keep the position (first line) and the reason (last line) only. Two
/// errors of the `config` crate's YAML conversion quote a value or a key
/// without a position: they get a fixed text.
fn syntax_message(message: &str) -> String {
    if message.starts_with("Parsing ") && message.ends_with("as floating point number failed") {
        return "a number is not finite or not valid (YAML .nan and .inf are not allowed)".into();
    }
    if message.ends_with("because it is an unsupported hash key type") {
        return "a mapping key is not a plain string, number or boolean".into();
    }
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("cannot parse");
    let kept = match lines.next_back() {
        Some(reason) if !reason.starts_with('|') && !reason.contains(" | ") => {
            format!("{first}: {reason}")
        }
        _ => first.to_string(),
    };
    hide_quoted(&kept)
}

/// `invalid type: string "sk-…", expected a map` → `invalid type: string
/// (value not shown), expected a map`: everything from the first to the
/// last double quote goes, since a value there may be a key.
fn hide_quoted(message: &str) -> String {
    match (message.find('"'), message.rfind('"')) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}(value not shown){}",
                &message[..start],
                &message[end + 1..]
            )
        }
        _ => message.to_string(),
    }
}

/// A strict-typing error as a problem; the document's root is "(top level)".
fn shape_problem(e: ShapeError) -> ConfigProblem {
    let path = if e.path.is_empty() {
        "(top level)".to_string()
    } else {
        e.path
    };
    ConfigProblem {
        path,
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
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
        let text =
            "[daemon]\nstate = \"file:/s\"\nmax_concurrent_rotations = \"sk-or-v1-secret\"\n";
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
}
