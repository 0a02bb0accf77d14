//! Loading (TOML read directly, YAML via the `config` crate; the
//! `REKEY_<SECTION>__<FIELD>` env overrides laid over either) and validation into typed [`Config`]. Every problem is
//! collected, each naming its field path.

use std::path::Path;

use chrono::Utc;

use super::Config;
use super::document;
pub use super::document::SourceFormat;
use super::origin::{EnvOrigins, covered};
use super::problem::{ConfigError, ConfigProblem};
use super::raw::RawConfig;
use super::strict::{self, Node, ShapeError};
use super::toml_tree;
use super::validate::validate;

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
    let origins = EnvOrigins::new(overrides.iter().flat_map(|vars| vars.keys()));
    let (tree, datetimes) =
        layered(text, format, overrides).map_err(|e| read_error(syntax_message(&e)))?;
    let mut problems: Vec<ConfigProblem> = datetimes
        .into_iter()
        .map(|path| ConfigProblem {
            path,
            message: DATETIME.into(),
        })
        .collect();
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

/// The file as a tree that still knows each value's type, with the
/// environment's variables laid over it (a variable replaces what the file
/// has at its path; tables on the way are made, or replace a value that is
/// not one, as the `config` crate layers them) and marked as text from a
/// variable; and the paths of the TOML dates. TOML is read by `toml`
/// directly, in one parse; YAML through the `config` crate.
fn layered(
    text: &str,
    format: SourceFormat,
    overrides: Option<config::Map<String, String>>,
) -> Result<(Node, Vec<String>), String> {
    let (mut tree, datetimes) = match format {
        SourceFormat::Toml => toml_tree::toml_tree(text)?,
        SourceFormat::Yaml => {
            let file = config::File::from_str(text, format.file_format());
            (
                root(config::Config::builder().add_source(file))?,
                Vec::new(),
            )
        }
    };
    if let Some(vars) = overrides.filter(|v| !v.is_empty()) {
        let env = root(config::Config::builder().add_source(environment(vars)))?;
        tree.overlay(env.into_env());
    }
    Ok((tree, datetimes))
}

fn root(builder: config::ConfigBuilder<config::builder::DefaultState>) -> Result<Node, String> {
    let table: config::Map<String, config::Value> = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())?;
    let value = config::Value::new(None, config::ValueKind::Table(table));
    Ok(Node::from_config(value))
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
mod tests;
