//! References in the config file: credential references (`env:`, `file:`,
//! `aws-sm:`), environment variable names and paths relative to the file.

use std::path::{Path, PathBuf};

use super::problems::Problems;
use crate::config::SecretRef;

/// Parses `env:VAR`, `file:PATH` or `aws-sm:SECRET_ID[#field]`. The value is
/// never echoed in a problem: a mistake here may well be the secret itself.
pub(super) fn secret_ref(
    p: &mut Problems,
    path: &str,
    raw: &str,
    base_dir: &Path,
) -> Option<SecretRef> {
    let parsed = if let Some(var) = raw.strip_prefix("env:") {
        is_env_name(var).then(|| SecretRef::Env(var.to_string()))
    } else if let Some(file) = raw.strip_prefix("file:") {
        (!file.is_empty()).then(|| SecretRef::File(resolve(base_dir, file)))
    } else if let Some(rest) = raw.strip_prefix("aws-sm:") {
        let (secret_id, field) = match rest.split_once('#') {
            Some((id, field)) => (id, Some(field)),
            None => (rest, None),
        };
        let ok = !secret_id.is_empty() && field.is_none_or(|f| !f.is_empty());
        ok.then(|| SecretRef::AwsSm {
            secret_id: secret_id.to_string(),
            field: field.map(str::to_string),
        })
    } else {
        p.push(
            path,
            "must be a reference: env:VAR, file:PATH or aws-sm:SECRET_ID[#field] \
             (literal secrets are not allowed in the config file; value not shown)",
        );
        return None;
    };
    if parsed.is_none() {
        p.push(path, "malformed reference: expected env:VAR, file:PATH or aws-sm:SECRET_ID[#field] (value not shown)");
    }
    parsed
}

pub(super) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Relative paths in the file are relative to the file, not to the daemon's working directory.
pub(super) fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}
