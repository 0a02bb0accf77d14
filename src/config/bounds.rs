//! Upper bounds of every duration, count and size an operator can set (the
//! config file, `rekey rotate --grace`, the admin API's `grace`), and the one
//! duration parser they all go through. The bounds are generous for any real
//! operation and keep every later `instant + duration` far from chrono's
//! limits (year 262143), so engine arithmetic cannot overflow. Documented
//! next to each field in config/README.md.

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// `revoke.grace`, `rotate --grace`, the admin API's `grace`.
pub const MAX_GRACE: Duration = Duration::from_secs(90 * DAY);
/// `max_age` (about 10 years).
pub const MAX_AGE: Duration = Duration::from_secs(3650 * DAY);
/// `key.expires_after`.
pub const MAX_EXPIRES_AFTER: Duration = Duration::from_secs(3650 * DAY);
/// `key.budget_duration` (LiteLLM's own form, `30d`).
pub const MAX_BUDGET_DURATION: Duration = Duration::from_secs(3650 * DAY);
/// `verify.timeout`.
pub const MAX_VERIFY_TIMEOUT: Duration = Duration::from_secs(HOUR);
/// `daemon.catch_up_jitter`.
pub const MAX_CATCH_UP_JITTER: Duration = Duration::from_secs(24 * HOUR);
/// `daemon.failure_backoff.min` and `.max`.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(30 * DAY);
/// `daemon.shutdown_timeout`.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(HOUR);
/// `daemon.dynamodb.lease`: at least this (renewal every third of it
/// must fit a table round trip and the skew margin)...
pub const MIN_DYNAMO_LEASE: Duration = Duration::from_secs(2);
/// ...and at most this (a crashed replica's rotation waits this long).
pub const MAX_DYNAMO_LEASE: Duration = Duration::from_secs(10 * MINUTE);
/// `providers.<name>.request_timeout`.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(10 * MINUTE);
/// `providers.<name>.rate_limit`: the most calls per second or minute.
pub const MAX_RATE_COUNT: u32 = 10_000;
/// `providers.<name>.max_concurrent`.
pub const MAX_CONCURRENT_CALLS: std::ops::RangeInclusive<i64> = 1..=1024;
/// `notify.<name>.timeout`.
pub const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5 * MINUTE);
/// `key.limit` and `key.max_budget` (the provider's currency unit).
pub const MAX_AMOUNT: f64 = 1e9;
/// Entries of a list field (`key.models`, `key.allowed_models`, `notify`, ...).
pub const MAX_LIST_LEN: usize = 1000;
/// Characters of a free-form string field (names, ids, paths, URLs, templates).
pub const MAX_TEXT_LEN: usize = 2048;
/// `providers.<name>.workspace_id` (OpenRouter).
pub const MAX_WORKSPACE_ID: usize = 128;
/// The config file.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Nesting of tables and lists in a YAML document (a valid config needs 4).
pub const MAX_NESTING: usize = 32;

/// A duration as the config writes it (`"90s"`, `"1h 30m"`, `"35d"`) that is
/// at most `max`. The message never repeats the text: it may be a key in
/// the wrong field.
pub fn parse_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "not a duration ({}; value not shown); write e.g. \"90s\", \"5m\", \"1h\", \"35d\"",
            why(&e)
        )
    })?;
    if d > max {
        return Err(format!("must be at most {}", human(max)));
    }
    Ok(d)
}

/// The grace of a manual rotation (CLI and admin API): the bound of `revoke.grace`.
pub fn parse_grace(text: &str) -> Result<Duration, String> {
    parse_duration(text, MAX_GRACE)
}

/// humantime's reason without the part of the text it quotes.
fn why(e: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match e {
        E::InvalidCharacter(at) => format!("invalid character at byte {at}"),
        E::NumberExpected(at) => format!("a number expected at byte {at}"),
        E::UnknownUnit { start, .. } => format!("unknown unit at byte {start}"),
        E::NumberOverflow => "number too large".to_string(),
        E::Empty => "empty".to_string(),
    }
}

/// "35d", "1d 12h", "90s" → "1m 30s": humantime's own formatting counts
/// months of 30.44 days, which reads badly next to a "35d" in the file.
pub fn human(d: Duration) -> String {
    let units = [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (1, "s")];
    let mut left = d.as_secs();
    let mut parts = Vec::new();
    for (size, unit) in units {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if parts.is_empty() {
        format!("{}ms", d.as_millis())
    } else {
        parts.join(" ")
    }
}

/// The part of a DynamoDB lease a replica does not count on: clocks of
/// replicas may differ by this much (NTP keeps them far closer), and a
/// renewal's answer may take this long. max(lease/10, 1 s).
pub fn lease_skew_margin(lease: Duration) -> Duration {
    (lease / 10).max(Duration::from_secs(1))
}

/// `on_promote`: hooks per policy, arguments per `exec`, and one run's timeout.
pub const MAX_HOOKS: usize = 16;
pub const MAX_HOOK_ARGS: usize = 64;
pub const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(HOUR);
/// `daemon.usage_poll`.
pub const MIN_USAGE_POLL: Duration = Duration::from_secs(10);
pub const MAX_USAGE_POLL: Duration = Duration::from_secs(24 * HOUR);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_near_chronos_limit_are_refused_with_the_bound() {
        for text in ["300000y", "18446744073709551615s", "91d", "2160h 1s"] {
            assert_eq!(
                parse_grace(text),
                Err("must be at most 90d".to_string()),
                "{text}"
            );
        }
        assert_eq!(parse_grace("90d"), Ok(MAX_GRACE));
        assert_eq!(parse_grace("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_bad_duration_is_explained_without_repeating_it() {
        for text in [
            "sk-or-v1-0123456789abcdef",
            "5sk-or-v1-abcdef",
            "soon",
            "-1s",
            "",
        ] {
            let err = parse_grace(text).unwrap_err();
            assert!(err.starts_with("not a duration ("), "{text}: {err}");
            if text.len() > 4 {
                assert!(!err.contains(&text[1..]), "{text} echoed: {err}");
            }
        }
        let overflow = parse_grace("99999999999999999999999s").unwrap_err();
        assert!(overflow.contains("number too large"), "{overflow}");
    }

    #[test]
    fn durations_are_written_like_the_config_file_writes_them() {
        assert_eq!(human(Duration::from_secs(35 * DAY)), "35d");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_secs(DAY + HOUR)), "1d 1h");
        assert_eq!(human(Duration::ZERO), "0ms");
    }
}
