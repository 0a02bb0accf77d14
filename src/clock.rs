//! Injectable wall clock ([`App::build_with_clock`](crate::app::App::build_with_clock)); production uses [`SystemClock`].

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// `at + d`, saturating at chrono's last instant instead of panicking
/// (`DateTime + std::time::Duration` panics on overflow). Config bounds keep
/// real sums decades away from the limit; this keeps a corrupt journal
/// timestamp from turning into a panic.
pub fn later(at: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An instant as people read it in logs and command output: RFC 3339 in UTC,
/// whole seconds (`2026-03-10T12:00:00Z`). `DateTime`'s own `Display`
/// (`2026-03-10 12:00:00 UTC`) is not RFC 3339.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_is_whole_seconds_in_utc() {
        let at: DateTime<Utc> = "2026-03-10T12:00:00.750Z".parse().unwrap();
        assert_eq!(rfc3339(at), "2026-03-10T12:00:00Z");
        assert!(DateTime::parse_from_rfc3339(&rfc3339(Utc::now())).is_ok());
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(
            later(now, Duration::from_secs(60)),
            now + Duration::from_secs(60)
        );
        assert_eq!(later(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        let near_end = DateTime::<Utc>::MAX_UTC - chrono::TimeDelta::days(1);
        assert_eq!(
            later(near_end, Duration::from_secs(2 * 86400)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
