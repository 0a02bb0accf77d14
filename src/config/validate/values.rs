//! Checks of single string values whose failure must be caught by `rekey
//! check`, not at the first rotation: URLs, file-store secret ids; and the
//! rule for quoting a config value in a message at all.

/// Suffixes the file store gives a secret's side files (src/stores/file/mod.rs
/// `SUFFIXES`): a secret named like one would collide with another's.
const FILE_STORE_SUFFIXES: [&str; 3] = [".pending", ".previous", ".versions.json"];
/// The file store's atomic writes go through `.{name}.tmp-{uuid}` next to the file.
const FILE_STORE_TEMP: &str = ".tmp-";
/// Longest file name most file systems take.
const MAX_COMPONENT_BYTES: usize = 255;
/// AWS allows 512 characters in a name, 2048 in an ARN.
const MAX_SECRET_ID_LEN: usize = 2048;

/// A config value in a message: quoted when it can only be a name or an
/// enumeration value (a provider kind, a mode, a time zone, a policy name),
/// `<value not shown>` when it could be a credential pasted into the wrong
/// field. Free-form values (durations, URLs, paths, templates, references)
/// are never passed here: their messages say what is wrong without them.
pub(in crate::config) fn quoted(value: &str) -> String {
    if may_quote(value) {
        format!("{value:?}")
    } else {
        "<value not shown>".to_string()
    }
}

/// Names are short and have no long random-looking run; keys have one, or a
/// well-known key prefix (OpenRouter `sk-or-v1-`, OpenAI `sk-proj-`,
/// LiteLLM `sk-`, ARouter `lr_`, Anthropic `sk-ant-`).
pub(in crate::config) fn may_quote(value: &str) -> bool {
    const KEY_PREFIXES: [&str; 3] = ["sk-", "sk_", "lr_"];
    let mut run = 0usize;
    let mut longest = 0usize;
    for c in value.chars() {
        run = if c.is_ascii_alphanumeric() {
            run + 1
        } else {
            0
        };
        longest = longest.max(run);
    }
    value.chars().count() <= 64
        && longest < 16
        && !value.chars().any(char::is_control)
        && !KEY_PREFIXES
            .iter()
            .any(|p| value.to_ascii_lowercase().starts_with(p))
}

/// An absolute `http(s)` URL with a host and no credentials, query or
/// fragment (paths are appended to it); returned without a trailing slash.
pub(super) fn http_url(raw: &str) -> Result<String, &'static str> {
    let text = raw.trim();
    let url = reqwest::Url::parse(text)
        .map_err(|_| "is not a URL like \"https://host/path\" (value not shown)")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL (value not shown)");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host (value not shown)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (user:password@); value not shown");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?) or fragment (#): paths are appended to it");
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A file-store secret id: a relative path of plain names under the store's
/// `dir`, none of them named like the store's own side or temp files.
pub(super) fn file_secret_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_SECRET_ID_LEN {
        return Err(format!("longer than {MAX_SECRET_ID_LEN} bytes"));
    }
    if id.starts_with('/') {
        return Err("must be a path relative to the store's dir, not an absolute one".into());
    }
    for part in id.split('/') {
        component(part)?;
    }
    Ok(())
}

fn component(part: &str) -> Result<(), String> {
    match part {
        "" => {
            Err("must not have empty path components (a leading, doubled or trailing '/')".into())
        }
        "." | ".." => Err("must not contain '.' or '..' components".into()),
        _ if part.len() > MAX_COMPONENT_BYTES => Err(format!(
            "has a path component longer than {MAX_COMPONENT_BYTES} bytes"
        )),
        _ if part.chars().any(|c| c.is_control()) => {
            Err("must not contain control characters".into())
        }
        _ if FILE_STORE_SUFFIXES.iter().any(|s| part.ends_with(s)) => Err(format!(
            "must not end a path component in {} (the file store's side files)",
            FILE_STORE_SUFFIXES.join(", ")
        )),
        _ if part.contains(FILE_STORE_TEMP) => Err(format!(
            "must not contain {FILE_STORE_TEMP:?} (the file store's temp files)"
        )),
        _ => Ok(()),
    }
}

/// An AWS Secrets Manager secret id: a name or an ARN.
pub(super) fn aws_secret_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_SECRET_ID_LEN {
        return Err(format!("longer than {MAX_SECRET_ID_LEN} characters"));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_key_like_values_are_not() {
        for name in [
            "vault",
            "Europe/Berlinn",
            "openrouter-staging",
            "hourly",
            "prod/llm",
        ] {
            assert_eq!(quoted(name), format!("{name:?}"));
        }
        let long = "a-".repeat(40);
        let keys = [
            "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sk-Ab3_d-Ef9GhIjKlMnOpQr",
            "lr_live_abc",
            "AKIAIOSFODNN7EXAMPLE",
            long.as_str(),
        ];
        for key in keys {
            assert_eq!(quoted(key), "<value not shown>", "{key}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert_eq!(
            http_url("https://api.example.com/v1/"),
            Ok("https://api.example.com/v1".into())
        );
        assert_eq!(
            http_url("http://[::1]:4000"),
            Ok("http://[::1]:4000".into())
        );
        for bad in [
            "http://[::1",
            "ftp://x",
            "gw",
            "http://",
            "https://user:pw@host",
            "https://host/v1?x=1",
            "https://host/#f",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_secret_ids_are_plain_relative_paths() {
        for ok in ["llm", "prod/llm", "app.env", ".env", "a/b/c.json"] {
            assert_eq!(file_secret_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "a/../b",
            ".",
            "a/./b",
            "a//b",
            "a/",
            "x.pending",
            "x.previous",
            "x.versions.json",
            "dir.pending/x",
            ".x.tmp-1",
            "a\nb",
        ] {
            assert!(file_secret_id(bad).is_err(), "{bad:?}");
        }
        assert!(file_secret_id(&"a".repeat(256)).is_err());
    }
}
