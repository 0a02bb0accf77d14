//! Raw config → typed [`Config`], collecting every problem with its field
//! path instead of stopping at the first. The daemon, provider and store
//! sections live here; policies (and the checks across them) in `policy`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::bounds::{
    self, MAX_CATCH_UP_JITTER, MAX_FAILURE_BACKOFF, MAX_REQUEST_TIMEOUT, MAX_SHUTDOWN_TIMEOUT,
    MAX_WORKSPACE_ID,
};
use super::raw::{RawConfig, RawDaemon, RawProvider, RawStore};
use super::{
    ApiShape, Backoff, Config, ConfigProblem, DaemonConfig, ProviderConfig, ProviderKind,
    SecretRef, StateLocation, StoreConfig, StoreKind,
};

mod kind;
mod notify;
mod policy;
mod rules;
mod values;

pub(super) use super::bounds::human;
pub(in crate::config) use values::{may_quote, quoted};

const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9477";
const DEFAULT_MAX_CONCURRENT: i64 = 8;
const MAX_CONCURRENT_RANGE: std::ops::RangeInclusive<i64> = 1..=1024;
const DEFAULT_SWEEP_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_SWEEP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_BACKOFF: Backoff = Backoff {
    min: Duration::from_secs(5 * 60),
    max: Duration::from_secs(24 * 3600),
};
const DEFAULT_CATCH_UP_JITTER: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `now` anchors the schedule sampling behind the grace-vs-interval check.
pub(crate) fn validate(
    raw: RawConfig,
    base_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Config, Vec<ConfigProblem>> {
    let mut p = Problems::default();
    // Policies are checked against the names declared, valid or not, so a
    // bad provider is reported once and not again by every policy using it.
    // A provider whose kind is unknown still counts as declared (kind `None`).
    let provider_kinds = (raw.providers.iter())
        .map(|(name, r)| {
            (
                name.clone(),
                r.kind.as_deref().and_then(ProviderKind::parse),
            )
        })
        .collect();
    let store_names = raw.stores.keys().cloned().collect();
    let file_stores = (raw.stores.iter())
        .filter(|(_, r)| r.kind.as_deref() == Some("file"))
        .map(|(name, _)| name.clone())
        .collect();
    let notifier_names = raw.notify.keys().cloned().collect();
    let daemon = daemon(&mut p, raw.daemon.unwrap_or_default(), base_dir);
    let providers: BTreeMap<_, _> = (raw.providers.into_iter())
        .filter_map(|(name, r)| Some((name.clone(), provider(&mut p, name, r, base_dir)?)))
        .collect();
    let notify = notify::notifiers(&mut p, raw.notify, base_dir);
    let stores: BTreeMap<_, _> = (raw.stores.into_iter())
        .filter_map(|(name, r)| Some((name.clone(), store(&mut p, name, r, base_dir)?)))
        .collect();
    let names = policy::Known {
        providers: &provider_kinds,
        stores: &store_names,
        file_stores: &file_stores,
        notifiers: &notifier_names,
        now,
    };
    let policies = policy::policies(&mut p, raw.policy, &names);
    match (daemon, p.0.is_empty()) {
        (Some(daemon), true) => Ok(Config {
            daemon,
            providers,
            stores,
            policies,
            notify,
        }),
        _ => Err(p.0),
    }
}

/// The problems found so far. Helpers return `None` for a missing or bad
/// value and record why, so callers only decide what is required.
#[derive(Default)]
pub(super) struct Problems(Vec<ConfigProblem>);

impl Problems {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn required<'a>(&mut self, path: &str, raw: Option<&'a str>) -> Option<&'a str> {
        match raw.map(str::trim) {
            Some(value) if !value.is_empty() => Some(value),
            _ => {
                self.push(path, "required");
                None
            }
        }
    }

    /// A duration of at most `max` (see `bounds`); zero allowed.
    pub(super) fn duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        max: Duration,
    ) -> Option<Duration> {
        match bounds::parse_duration(raw?, max) {
            Ok(d) => Some(d),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }

    /// A duration that must not be zero (timeouts, ages, backoff), at most `max`.
    pub(super) fn positive_duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        max: Duration,
    ) -> Option<Duration> {
        let d = self.duration(path, raw, max)?;
        if d.is_zero() {
            self.push(path, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    /// An `http(s)://host[:port][/path]` URL; returned without a trailing slash.
    pub(super) fn http_url(&mut self, path: &str, raw: &str) -> Option<String> {
        match values::http_url(raw) {
            Ok(url) => Some(url),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }
}

fn daemon(p: &mut Problems, raw: RawDaemon, base_dir: &Path) -> Option<DaemonConfig> {
    let state = p
        .required("daemon.state", raw.state.as_deref())
        .and_then(|s| match s.strip_prefix("file:") {
            Some(dir) if !dir.trim().is_empty() => {
                Some(StateLocation::File(resolve(base_dir, dir)))
            }
            _ => {
                p.push(
                    "daemon.state",
                    "is not supported (value not shown); only \"file:<dir>\" is",
                );
                None
            }
        });
    let listen = raw.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let admin_listen = listen.parse::<SocketAddr>().map_err(|_| {
        p.push(
            "daemon.admin_listen",
            "is not an address like \"127.0.0.1:9477\" (value not shown)",
        );
    });
    let max = raw
        .max_concurrent_rotations
        .unwrap_or(DEFAULT_MAX_CONCURRENT);
    if !MAX_CONCURRENT_RANGE.contains(&max) {
        p.push(
            "daemon.max_concurrent_rotations",
            format!("must be between 1 and 1024, got {max}"),
        );
    }
    let failure_backoff = backoff(p, raw.failure_backoff.unwrap_or_default());
    let jitter = p.duration(
        "daemon.catch_up_jitter",
        raw.catch_up_jitter.as_deref(),
        MAX_CATCH_UP_JITTER,
    );
    let audit_log = match raw.audit_log.as_deref().map(str::trim) {
        Some("") => {
            p.push(
                "daemon.audit_log",
                "must not be empty (leave it out for no audit log)",
            );
            None
        }
        other => Some(other.map(|path| resolve(base_dir, path))),
    };
    let admin_token = match raw.admin_token.as_deref() {
        Some(r) => secret_ref(p, "daemon.admin_token", r, base_dir).map(Some),
        None => Some(None),
    };
    let shutdown = p.positive_duration(
        "daemon.shutdown_timeout",
        raw.shutdown_timeout.as_deref(),
        MAX_SHUTDOWN_TIMEOUT,
    );
    let shutdown_timeout = if raw.shutdown_timeout.is_some() {
        shutdown
    } else {
        Some(DEFAULT_SHUTDOWN_TIMEOUT)
    };
    let sweep_timeout = match raw.sweep_timeout.as_deref() {
        None => Some(DEFAULT_SWEEP_TIMEOUT),
        raw => p.positive_duration("daemon.sweep_timeout", raw, MAX_SWEEP_TIMEOUT),
    };
    Some(DaemonConfig {
        state: state?,
        admin_listen: admin_listen.ok()?,
        max_concurrent_rotations: usize::try_from(max).ok()?,
        failure_backoff: failure_backoff?,
        catch_up_jitter: jitter.unwrap_or(DEFAULT_CATCH_UP_JITTER),
        audit_log: audit_log?,
        admin_token: admin_token?,
        shutdown_timeout: shutdown_timeout?,
        sweep_timeout: sweep_timeout?,
    })
}

fn backoff(p: &mut Problems, raw: super::raw::RawBackoff) -> Option<Backoff> {
    let min = p.positive_duration(
        "daemon.failure_backoff.min",
        raw.min.as_deref(),
        MAX_FAILURE_BACKOFF,
    );
    let max = p.positive_duration(
        "daemon.failure_backoff.max",
        raw.max.as_deref(),
        MAX_FAILURE_BACKOFF,
    );
    // A bad value was already reported; comparing its stand-in would only add noise.
    let min = if raw.min.is_some() {
        min?
    } else {
        DEFAULT_BACKOFF.min
    };
    let max = if raw.max.is_some() {
        max?
    } else {
        DEFAULT_BACKOFF.max
    };
    if min > max {
        p.push(
            "daemon.failure_backoff",
            format!("min ({}) is longer than max ({})", human(min), human(max)),
        );
        return None;
    }
    Some(Backoff { min, max })
}

fn provider(
    p: &mut Problems,
    name: String,
    raw: RawProvider,
    base_dir: &Path,
) -> Option<ProviderConfig> {
    let at = |field: &str| format!("providers.{name}.{field}");
    let kind =
        p.required(&at("kind"), raw.kind.as_deref())
            .and_then(|k| match ProviderKind::parse(k) {
                Some(kind) => Some(kind),
                None => {
                    let known: Vec<String> = (ProviderKind::ALL.iter())
                        .map(|k| format!("{:?}", k.as_str()))
                        .collect();
                    p.push(
                        at("kind"),
                        format!(
                            "unknown provider kind {}; expected one of {}",
                            quoted(k),
                            known.join(", ")
                        ),
                    );
                    None
                }
            });
    let key = p.required(&at("management_key"), raw.management_key.as_deref());
    let management_key = key.and_then(|k| secret_ref(p, &at("management_key"), k, base_dir));
    let base_url = match (
        raw.base_url.as_deref(),
        kind.and_then(ProviderKind::default_base_url),
    ) {
        (Some(url), _) | (None, Some(url)) => p.http_url(&at("base_url"), url),
        (None, None) if kind.is_some() => {
            p.push(
                at("base_url"),
                "required: a self-hosted LiteLLM proxy has no default address",
            );
            None
        }
        (None, None) => None,
    };
    let timeout = p.positive_duration(
        &at("request_timeout"),
        raw.request_timeout.as_deref(),
        MAX_REQUEST_TIMEOUT,
    );
    let request_timeout = if raw.request_timeout.is_some() {
        timeout?
    } else {
        DEFAULT_REQUEST_TIMEOUT
    };
    let workspace_id = workspace_id(p, &name, kind?, raw.workspace_id.as_deref());
    let (api, keys_path) = arouter_shape(p, &name, kind?, &raw)?;
    Some(ProviderConfig {
        name,
        kind: kind?,
        base_url: base_url?,
        management_key: management_key?,
        request_timeout,
        api,
        keys_path,
        workspace_id: workspace_id?,
    })
}

/// `workspace_id` exists for OpenRouter only: one id, sent as a query value
/// and a JSON string, so no spaces or control characters.
fn workspace_id(
    p: &mut Problems,
    name: &str,
    kind: ProviderKind,
    raw: Option<&str>,
) -> Option<Option<String>> {
    let at = format!("providers.{name}.workspace_id");
    if kind != ProviderKind::OpenRouter {
        refuse_field(p, &at, raw.is_some(), "provider", "openrouter");
        return raw.is_none().then_some(None);
    }
    match raw {
        None => Some(None),
        Some(id) if valid_workspace_id(id) => Some(Some(id.to_string())),
        Some(id) => {
            p.push(
                at,
                format!(
                    "{} is not a workspace id: expected 1 to {MAX_WORKSPACE_ID} characters without spaces or control characters",
                    quoted(id)
                ),
            );
            None
        }
    }
}

fn valid_workspace_id(id: &str) -> bool {
    (1..=MAX_WORKSPACE_ID).contains(&id.chars().count())
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `api` and `keys_path` exist for ARouter only.
fn arouter_shape(
    p: &mut Problems,
    name: &str,
    kind: ProviderKind,
    raw: &RawProvider,
) -> Option<(ApiShape, Option<String>)> {
    let at = |field: &str| format!("providers.{name}.{field}");
    if kind != ProviderKind::ARouter {
        refuse_field(p, &at("api"), raw.api.is_some(), "provider", "arouter");
        refuse_field(
            p,
            &at("keys_path"),
            raw.keys_path.is_some(),
            "provider",
            "arouter",
        );
        return (raw.api.is_none() && raw.keys_path.is_none())
            .then_some((ApiShape::default(), None));
    }
    let api = match raw.api.as_deref() {
        None | Some("reference") => ApiShape::Reference,
        Some("guide") => ApiShape::Guide,
        Some(other) => {
            p.push(
                at("api"),
                format!("{} is not one of \"reference\" (the API reference: /api/v1/keys, hash, limit) or \"guide\" (the rotation guide: /v1/keys, id, spending_limit)", quoted(other)),
            );
            return None;
        }
    };
    match raw.keys_path.as_deref() {
        Some(path) if !path.starts_with('/') || path.contains(['?', '#']) => {
            p.push(
                at("keys_path"),
                "must be a path starting with '/', like \"/api/v1/keys\", without ? or # (value not shown)",
            );
            None
        }
        path => Some((api, path.map(|p| p.trim_end_matches('/').to_string()))),
    }
}

fn store(p: &mut Problems, name: String, raw: RawStore, base_dir: &Path) -> Option<StoreConfig> {
    let at = |field: &str| format!("stores.{name}.{field}");
    let kind = match p.required(&at("kind"), raw.kind.as_deref())? {
        "aws-secrets-manager" => {
            refuse_field(p, &at("dir"), raw.dir.is_some(), "store", "file");
            let region = p
                .required(&at("region"), raw.region.as_deref())
                .map(str::to_string);
            let endpoint_url = match raw.endpoint_url.as_deref() {
                Some(url) => Some(p.http_url(&at("endpoint_url"), url)?),
                None => None,
            };
            StoreKind::AwsSecretsManager {
                region: region?,
                endpoint_url,
            }
        }
        "file" => {
            let aws = "aws-secrets-manager";
            refuse_field(p, &at("region"), raw.region.is_some(), "store", aws);
            refuse_field(
                p,
                &at("endpoint_url"),
                raw.endpoint_url.is_some(),
                "store",
                aws,
            );
            let dir = p.required(&at("dir"), raw.dir.as_deref())?;
            StoreKind::File {
                dir: resolve(base_dir, dir),
            }
        }
        other => {
            p.push(
                at("kind"),
                format!(
                    "unknown store kind {}; expected \"aws-secrets-manager\" or \"file\"",
                    quoted(other)
                ),
            );
            return None;
        }
    };
    Some(StoreConfig { name, kind })
}

fn refuse_field(p: &mut Problems, path: &str, present: bool, what: &str, owner_kind: &str) {
    if present {
        p.push(
            path,
            format!("only applies to {what}s of kind {owner_kind:?}"),
        );
    }
}

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
fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod kinds_tests;
#[cfg(test)]
mod tests;
