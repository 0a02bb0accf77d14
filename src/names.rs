//! The names and ids rekey passes around, each its own type, made once where
//! config and journals are parsed: policy, provider and store entry names,
//! the secret a policy writes, rotation ids and the lease key. A leaf module:
//! it depends on nothing else in the crate.
//!
//! Each derefs to `str`, prints as itself and serializes as a plain string,
//! so log lines, metrics labels and the journal format are unchanged.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Why a journal or argument's name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} {why}")]
pub struct NameError {
    what: &'static str,
    value: String,
    why: &'static str,
}

macro_rules! string_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        /// As the string it holds (`"llm"`), so messages that quote a name
        /// with `{:?}` read the same as before the type existed.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                *self.0 == *other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                *self == *other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                **self == *other.0
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0.to_string()
            }
        }

        impl From<&$name> for String {
            fn from(name: &$name) -> String {
                name.0.to_string()
            }
        }
    };
}

/// A type whose every string is valid (entry names are TOML keys, already
/// checked by the config reader).
macro_rules! any_string {
    ($name:ident) => {
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self(s.into()))
            }
        }
    };
}

/// A type whose strings are checked by `$check`: parsing is the only way in.
macro_rules! checked_string {
    ($name:ident, $what:literal, $check:expr) => {
        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&s) {
                    Ok(()) => Ok(Self(s.into())),
                    Err(why) => Err(NameError {
                        what: $what,
                        value: s.chars().take(80).collect(),
                        why,
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_type!(
    /// A `[[policy]]` name: `[a-z0-9][a-z0-9_-]*`, at most 63 characters (it
    /// names a journal file and a metrics label).
    PolicyName
);
checked_string!(PolicyName, "policy name", policy_name);

/// The rule for policy names (DESIGN.md's config contract).
pub fn policy_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > 63 {
        Err("is longer than 63 characters")
    } else if !first_ok
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        Err("is not a policy name ([a-z0-9][a-z0-9_-]*)")
    } else {
        Ok(())
    }
}

string_type!(
    /// The name of a `[providers.<name>]` entry.
    ProviderName
);
any_string!(ProviderName);

string_type!(
    /// The name of a `[stores.<name>]` entry.
    StoreName
);
any_string!(StoreName);

string_type!(
    /// The secret a policy writes, as the config names it: an AWS secret name
    /// or ARN, or a path relative to a file store's directory. Checked by the
    /// config validation for its store's kind.
    SecretId
);
any_string!(SecretId);

string_type!(
    /// A rotation's id: time-ordered (UUIDv7), the `{rotation}` in key names
    /// and the base of the store's staging token.
    RotationId
);
checked_string!(RotationId, "rotation id", rotation_id);

impl RotationId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string().into())
    }
}

fn rotation_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 {
        Err("must be 1 to 64 characters")
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Err("may hold only letters, digits and '-'")
    } else {
        Ok(())
    }
}

string_type!(
    /// The identity of a secret, which names its lease: two policies (or two
    /// store entries) that write one secret compute one key, offline, so
    /// their rotations exclude each other.
    ///
    /// - AWS Secrets Manager: `aws-sm:<region>/<name>`, where an ARN is
    ///   reduced to its region and its name without AWS's 6-character suffix.
    /// - File store: `file:<path>`, the secret file's absolute path with
    ///   `.` and `..` resolved, and symlinks of the part that exists.
    LeaseKey
);
checked_string!(LeaseKey, "lease key", lease_key);

fn lease_key(key: &str) -> Result<(), &'static str> {
    let known = key.starts_with("aws-sm:") || key.starts_with("file:");
    if !known {
        Err("must start with aws-sm: or file:")
    } else if key.len() > 4096 || key.chars().any(char::is_control) {
        Err("is longer than 4096 bytes or holds control characters")
    } else {
        Ok(())
    }
}

impl LeaseKey {
    /// The lease of an AWS secret named `secret_id` (a name or an ARN) in a
    /// store configured for `region`.
    pub fn aws(region: &str, secret_id: &str) -> Self {
        let (region, name) = match arn_parts(secret_id) {
            Some((arn_region, name)) => (arn_region, strip_aws_suffix(name)),
            None => (region, secret_id),
        };
        Self(format!("aws-sm:{region}/{name}").into())
    }

    /// The lease of the file `secret_id` under a file store's `dir`.
    pub fn file(dir: &Path, secret_id: &str) -> Self {
        let path = canonical(&dir.join(secret_id));
        Self(format!("file:{}", path.display()).into())
    }
}

/// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME` → (REGION, NAME).
fn arn_parts(id: &str) -> Option<(&str, &str)> {
    let mut parts = id.splitn(7, ':');
    let (arn, _partition, service, region, _account, kind, name) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn == "arn" && service == "secretsmanager" && kind == "secret" && !name.is_empty())
        .then_some((region, name))
}

/// AWS appends `-` and six random characters to a secret's name in its ARN.
fn strip_aws_suffix(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, suffix))
            if !base.is_empty()
                && suffix.len() == 6
                && suffix.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            base
        }
        _ => name,
    }
}

/// `path` made absolute, `.`/`..` resolved lexically, and the longest
/// existing prefix resolved through symlinks (the file itself may not exist
/// yet: `create = true`).
fn canonical(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut lexical = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            let mut out = resolved;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

#[cfg(test)]
mod tests;
