//! The `[providers.<name>]` and `[stores.<name>]` entries: kinds, the
//! fields each kind takes (others refused) and their values.

use std::path::Path;
use std::time::Duration;

use super::problems::Problems;
use super::refs::{resolve, secret_ref};
use super::values::quoted;
use crate::config::bounds::{
    MAX_CONCURRENT_CALLS, MAX_RATE_COUNT, MAX_REQUEST_TIMEOUT, MAX_WORKSPACE_ID,
};
use crate::config::raw::{RawProvider, RawStore};
use crate::config::{
    ApiShape, DEFAULT_STORE_REQUEST_TIMEOUT, FILE_STORE_CALL, ProviderConfig, ProviderKind,
    ProviderLimits, Rate, StoreConfig, StoreKind,
};

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn provider(
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
    let limits = limits(p, &name, &raw);
    let (api, keys_path) = arouter_shape(p, &name, kind?, &raw)?;
    Some(ProviderConfig {
        name: name.into(),
        kind: kind?,
        base_url: base_url?,
        management_key: management_key?,
        request_timeout,
        api,
        keys_path,
        workspace_id: workspace_id?,
        limits: limits?,
    })
}

/// `rate_limit` (`"R/s"` or `"R/m"`, R in 1..=10000) and `max_concurrent`
/// (1..=1024); both optional, absent means no limit.
fn limits(p: &mut Problems, name: &str, raw: &RawProvider) -> Option<ProviderLimits> {
    let rate = match raw.rate_limit.as_deref() {
        None => Some(None),
        Some(text) => match parse_rate(text) {
            Some(rate) => Some(Some(rate)),
            None => {
                p.push(
                    format!("providers.{name}.rate_limit"),
                    format!(
                        "{} is not a rate: expected \"R/s\" or \"R/m\" with R a whole number from 1 to {MAX_RATE_COUNT}, e.g. \"50/s\" or \"600/m\"",
                        quoted(text)
                    ),
                );
                None
            }
        },
    };
    let max_concurrent = match raw.max_concurrent {
        None => Some(None),
        Some(n) if MAX_CONCURRENT_CALLS.contains(&n) => u32::try_from(n).ok().map(Some),
        Some(n) => {
            p.push(
                format!("providers.{name}.max_concurrent"),
                format!(
                    "must be between {} and {}, got {n}",
                    MAX_CONCURRENT_CALLS.start(),
                    MAX_CONCURRENT_CALLS.end()
                ),
            );
            None
        }
    };
    Some(ProviderLimits {
        rate: rate?,
        max_concurrent: max_concurrent?,
    })
}

/// `"50/s"`, `"600/m"`: digits only (no sign, no spaces), within bounds.
pub(crate) fn parse_rate(text: &str) -> Option<Rate> {
    let (count, unit) = text.split_once('/')?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u32 = count.parse().ok()?;
    if !(1..=MAX_RATE_COUNT).contains(&count) {
        return None;
    }
    let per = match unit {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        _ => return None,
    };
    Some(Rate { count, per })
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

pub(super) fn store(
    p: &mut Problems,
    name: String,
    raw: RawStore,
    base_dir: &Path,
) -> Option<StoreConfig> {
    let at = |field: &str| format!("stores.{name}.{field}");
    let mut request_timeout = DEFAULT_STORE_REQUEST_TIMEOUT;
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
            if raw.request_timeout.is_some() {
                request_timeout = p.positive_duration(
                    &at("request_timeout"),
                    raw.request_timeout.as_deref(),
                    MAX_REQUEST_TIMEOUT,
                )?;
            }
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
            refuse_field(
                p,
                &at("request_timeout"),
                raw.request_timeout.is_some(),
                "store",
                aws,
            );
            request_timeout = FILE_STORE_CALL;
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
    Some(StoreConfig {
        name: name.into(),
        kind,
        request_timeout,
    })
}

fn refuse_field(p: &mut Problems, path: &str, present: bool, what: &str, owner_kind: &str) {
    if present {
        p.push(
            path,
            format!("only applies to {what}s of kind {owner_kind:?}"),
        );
    }
}
