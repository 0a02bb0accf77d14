//! Raw config → typed [`Config`], collecting every problem with its field
//! path instead of stopping at the first. The daemon, provider and store
//! sections live here; policies (and the checks across them) in `policy`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::bounds::{
    MAX_CATCH_UP_JITTER, MAX_FAILURE_BACKOFF, MAX_SHUTDOWN_TIMEOUT, MAX_USAGE_POLL, MIN_USAGE_POLL,
};
use super::raw::{RawConfig, RawDaemon};
use super::{Backoff, Config, ConfigProblem, DaemonConfig, ProviderKind};

mod at;
mod consumers;
mod entries;
mod kind;
mod notify;
mod policy;
mod problems;
mod refs;
mod rules;
mod set;
mod state;
mod values;

use entries::{provider, store};
use problems::Problems;
use refs::{resolve, secret_ref};

pub(super) use super::bounds::human;
pub(in crate::config) use values::{may_quote, quoted};

const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9477";
const DEFAULT_MAX_CONCURRENT: i64 = 8;
const MAX_CONCURRENT_RANGE: std::ops::RangeInclusive<i64> = 1..=1024;
const DEFAULT_SWEEP_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_SWEEP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_USAGE_POLL: Duration = Duration::from_secs(300);
const DEFAULT_BACKOFF: Backoff = Backoff {
    min: Duration::from_secs(5 * 60),
    max: Duration::from_secs(24 * 3600),
};
const DEFAULT_CATCH_UP_JITTER: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

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
        .filter_map(|(name, r)| Some((name.as_str().into(), provider(&mut p, name, r, base_dir)?)))
        .collect();
    let notify = notify::notifiers(&mut p, raw.notify, base_dir);
    let stores: BTreeMap<_, _> = (raw.stores.into_iter())
        .filter_map(|(name, r)| Some((name.as_str().into(), store(&mut p, name, r, base_dir)?)))
        .collect();
    let intervals = rules::Intervals::default();
    let names = policy::Known {
        providers: &provider_kinds,
        stores: &store_names,
        file_stores: &file_stores,
        notifiers: &notifier_names,
        valid_stores: &stores,
        now,
        intervals: &intervals,
        base_dir,
    };
    let mut member_files = Vec::new();
    let mut parsed = policy::policies(&mut p, raw.policy, &names);
    parsed.extend(set::expand(
        &mut p,
        raw.policy_set,
        &names,
        &mut member_files,
    ));
    let policies = policy::checked_together(&mut p, parsed, &names);
    if let Some(daemon) = &daemon {
        state::calls_fit_in_lease(&mut p, &daemon.state, &providers, &stores, &policies);
    }
    match (daemon, p.0.is_empty()) {
        (Some(daemon), true) => Ok(Config {
            daemon,
            providers,
            stores,
            policies,
            notify,
            member_files,
        }),
        _ => Err(p.0),
    }
}

fn daemon(p: &mut Problems, raw: RawDaemon, base_dir: &Path) -> Option<DaemonConfig> {
    let (state, dynamodb) = state::state(p, raw.state.as_deref(), raw.dynamodb, base_dir);
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
    let usage_poll = match raw.usage_poll.as_deref() {
        None => Some(DEFAULT_USAGE_POLL),
        raw => p
            .positive_duration("daemon.usage_poll", raw, MAX_USAGE_POLL)
            .filter(|poll| {
                let ok = *poll >= MIN_USAGE_POLL;
                if !ok {
                    p.push(
                        "daemon.usage_poll",
                        format!("must be at least {}s", MIN_USAGE_POLL.as_secs()),
                    );
                }
                ok
            }),
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
        usage_poll: usage_poll?,
        dynamodb: dynamodb?,
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

#[cfg(test)]
mod kinds_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;
