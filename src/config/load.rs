//! Loading (TOML/YAML via the `config` crate, `REKEY_<SECTION>__<FIELD>` env
//! overrides) and validation into typed [`Config`]. Every problem is
//! collected, each naming its field path.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::Config;
use super::raw::RawConfig;
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
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
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
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
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

/// Only `REKEY_*` variables with a `__` are config: `REKEY_FAILPOINT`,
/// `REKEY_LOG` and friends configure other things and would be refused as
/// unknown fields.
fn env_overrides(env: impl IntoIterator<Item = (String, String)>) -> config::Map<String, String> {
    env.into_iter()
        .filter(|(k, _)| k.starts_with("REKEY_") && k.contains("__"))
        .collect()
}

fn load(
    text: &str,
    format: SourceFormat,
    base_dir: &Path,
    file: &Path,
    overrides: Option<config::Map<String, String>>,
) -> Result<Config, ConfigError> {
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(text, format.file_format()));
    if let Some(vars) = overrides {
        let env = config::Environment::with_prefix("REKEY")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars));
        builder = builder.add_source(env);
    }
    let file = file.to_path_buf();
    let merged = builder.build().map_err(|e| ConfigError::Read {
        file: file.clone(),
        message: syntax_message(&e.to_string()),
    })?;
    let raw: RawConfig = merged.try_deserialize().map_err(|e| ConfigError::Invalid {
        file: file.clone(),
        problems: vec![shape_problem(&e.to_string())],
    })?;
    validate(raw, base_dir, Utc::now()).map_err(|problems| ConfigError::Invalid { file, problems })
}

/// Parser errors quote the offending source line, which may hold a secret:
/// keep the position (first line) and the reason (last line) only.
fn syntax_message(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("cannot parse");
    match lines.last() {
        Some(reason) if !reason.starts_with('|') && !reason.contains(" | ") => {
            format!("{first}: {reason}")
        }
        _ => first.to_string(),
    }
}

/// Turns a serde error from the `config` crate ("unknown field `modle`, expected
/// one of ... for key `policy[0]verify`") into a problem with a clean path.
fn shape_problem(message: &str) -> ConfigProblem {
    let (what, path) = match message.rsplit_once(" for key `") {
        Some((what, key)) => (what, normalize_key(key.trim_end_matches('`'))),
        None => (message, "(top level)".to_string()),
    };
    let message = if let Some(rest) = what.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ").replace('`', "");
        format!("unknown field {field:?}; {expected}")
    } else {
        hide_value(what)
    };
    ConfigProblem { path, message }
}

/// `policy[0]verify` → `policy[0].verify`.
fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']' && chars.peek().is_some_and(|n| *n != '.' && *n != '[') {
            out.push('.');
        }
    }
    out
}

/// `invalid type: string "sk-…", expected a boolean` → `invalid type: string, expected a boolean`:
/// a value in the wrong field may be a key.
fn hide_value(message: &str) -> String {
    match (message.find(" \""), message.rfind("\", ")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &message[..start], &message[end + 1..])
        }
        _ => message.to_string(),
    }
}
