//! Secret formats: the key as the whole value (`raw`), one field of a JSON
//! object (`json`), or one `NAME=value` line (`env`).
//!
//! Pure functions shared by every store: [`extract_key`] reads the key out of
//! a full secret value, [`replace_key`] builds the next full value with only
//! the key changed. Everything else in the value is kept byte-for-byte, so a
//! rotation never rewrites fields or lines that other tools own.

use secrecy::{ExposeSecret, SecretString};

use super::StoreError;
use crate::policy::{Format, Target};

mod json;

/// The key held in `value` (the full secret string), or `None` when there is
/// no key yet: no value, an empty raw value, or the field absent.
/// A raw value is trimmed: a key never has surrounding whitespace, and
/// hand-edited files usually end in a newline.
pub fn extract_key(
    target: &Target,
    value: Option<&str>,
) -> Result<Option<SecretString>, StoreError> {
    let Some(value) = value else { return Ok(None) };
    let key = match target.format {
        Format::Raw => Some(value.trim().to_string()),
        Format::Json => json::field(target, value, field(target)?)?,
        Format::Env => env_field(value, field(target)?).map(str::to_string),
    };
    Ok(key.filter(|k| !k.is_empty()).map(SecretString::from))
}

/// The full secret value that results from putting `key` into `current`.
pub fn replace_key(
    target: &Target,
    current: Option<&str>,
    key: &SecretString,
) -> Result<SecretString, StoreError> {
    let key = key.expose_secret();
    let value = match target.format {
        Format::Raw => key.to_string(),
        Format::Json => json::with_field(target, current.unwrap_or(""), field(target)?, key)?,
        Format::Env => with_env_field(target, current.unwrap_or(""), field(target)?, key)?,
    };
    Ok(SecretString::from(value))
}

fn field(target: &Target) -> Result<&str, StoreError> {
    target
        .field
        .as_deref()
        .ok_or_else(|| StoreError::Permanent {
            store: target.store.to_string(),
            message: format!(
                "secret {:?}: the json and env formats need a field",
                target.secret_id
            ),
        })
}

pub(super) fn shape(target: &Target, message: &str) -> StoreError {
    StoreError::Shape {
        store: target.store.to_string(),
        secret_id: target.secret_id.to_string(),
        message: message.to_string(),
    }
}

/// The value of `NAME=value` for `name`; the last such line wins, as with
/// systemd and docker. Quotes around the value are tolerated on read.
fn env_field<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .lines()
        .filter_map(|line| env_assignment(line, name))
        .next_back()
        .map(unquote)
}

fn env_assignment<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let (lhs, rhs) = line.split_once('=')?;
    let lhs = lhs.trim();
    let lhs = lhs
        .strip_prefix("export ")
        .map(str::trim_start)
        .unwrap_or(lhs);
    (lhs == name).then_some(rhs.trim_end_matches('\r'))
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// Replaces every line assigning `name` (so no stale duplicate can win) or
/// appends one; all other lines, comments and the trailing newline are kept.
fn with_env_field(
    target: &Target,
    current: &str,
    name: &str,
    key: &str,
) -> Result<String, StoreError> {
    if key.contains(['\n', '\r']) {
        return Err(StoreError::Permanent {
            store: target.store.to_string(),
            message: format!(
                "secret {:?}: the new key contains a line break, which the env format cannot hold",
                target.secret_id
            ),
        });
    }
    let line = format!("{name}={key}");
    let mut out = String::with_capacity(current.len() + line.len() + 1);
    let mut replaced = false;
    for old in current.split_inclusive('\n') {
        let body = old.trim_end_matches(['\r', '\n']);
        if env_assignment(body, name).is_some() {
            out.push_str(&line);
            out.push_str(&old[body.len()..]);
            replaced = true;
        } else {
            out.push_str(old);
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
