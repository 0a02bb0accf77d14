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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
