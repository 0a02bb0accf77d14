//! The one backoff policy every retry and wait loop uses: a first pause,
//! multiplied per attempt up to a cap, optionally jittered. Jitter is on where
//! many callers may retry the same thing at once (provider and store call
//! retries, webhook deliveries) and off where a schedule is documented and
//! tested exactly (the failure backoff, the credential wait). The arithmetic
//! saturates: no attempt number or duration makes it panic.

use std::time::Duration;

use rand::Rng;

/// How a pause is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the schedule.
    None,
    /// Anywhere in `[pause / 2, pause]`: callers that failed together spread
    /// out, yet each still waits at least half the schedule.
    Equal,
}

/// Pauses of `first`, `first * factor`, `first * factor²`, … capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    factor: u32,
    jitter: Jitter,
}

impl Backoff {
    /// Doubling from `first` up to `max`, no jitter.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            factor: 2,
            jitter: Jitter::None,
        }
    }

    /// The same pause every time (a poll after a failure).
    pub const fn constant(pause: Duration) -> Backoff {
        Backoff::new(pause, pause).with_factor(1)
    }

    /// Grows by `factor` per attempt; 0 counts as 1 (a pause never shrinks).
    pub const fn with_factor(self, factor: u32) -> Backoff {
        let factor = if factor == 0 { 1 } else { factor };
        Backoff { factor, ..self }
    }

    pub const fn with_jitter(self, jitter: Jitter) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// The pause before retry number `attempt + 1` (attempt 0 is `first`),
    /// jittered when the policy says so.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }

    /// [`Backoff::delay`] drawing the jitter from `rng` (seeded in tests).
    pub fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let pause = self.scheduled(attempt);
        match self.jitter {
            Jitter::None => pause,
            Jitter::Equal => rng.random_range(pause - pause / 2..=pause),
        }
    }

    /// The un-jittered pause for `attempt`: saturating, capped at `max`.
    pub fn scheduled(&self, attempt: u32) -> Duration {
        let grown = match self.factor.checked_pow(attempt) {
            Some(multiple) => self.first.saturating_mul(multiple),
            None if self.first.is_zero() => Duration::ZERO,
            None => Duration::MAX,
        };
        grown.min(self.max)
    }
}

/// `daemon.failure_backoff`: doubling from `min` to `max`, exact — its
/// schedule is documented.
impl From<crate::config::Backoff> for Backoff {
    fn from(config: crate::config::Backoff) -> Backoff {
        Backoff::new(config.min, config.max)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn without_jitter_the_schedule_doubles_exactly_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(60), Duration::from_secs(600));
        let got: Vec<u64> = (0..6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(got, vec![60, 120, 240, 480, 600, 600]);
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for attempt in [31, 32, 33, 64, 1_000, u32::MAX] {
            assert_eq!(
                b.delay(attempt),
                Duration::from_secs(60),
                "attempt {attempt}"
            );
        }
        let unbounded = Backoff::new(Duration::from_secs(1), Duration::MAX).with_factor(u32::MAX);
        assert_eq!(unbounded.delay(u32::MAX), Duration::MAX);
        assert_eq!(unbounded.delay(1), Duration::from_secs(u64::from(u32::MAX)));
    }

    #[test]
    fn a_constant_backoff_never_grows_and_factor_zero_counts_as_one() {
        let c = Backoff::constant(Duration::from_secs(30));
        assert!((0..100).all(|n| c.delay(n) == Duration::from_secs(30)));
        let zero = Backoff::new(ms(500), Duration::from_secs(9)).with_factor(0);
        assert_eq!(zero.delay(5), ms(500));
    }

    #[test]
    fn a_cap_below_the_first_pause_wins() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(b.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn equal_jitter_stays_within_half_and_the_whole_pause_and_never_above_max() {
        let b = Backoff::new(ms(500), Duration::from_secs(30)).with_jitter(Jitter::Equal);
        let mut rng = StdRng::seed_from_u64(11);
        for attempt in 0..40 {
            let scheduled = b.scheduled(attempt);
            for _ in 0..200 {
                let d = b.delay_with(attempt, &mut rng);
                assert!(
                    d >= scheduled / 2 && d <= scheduled,
                    "{d:?} for {scheduled:?}"
                );
                assert!(d <= Duration::from_secs(30));
            }
        }
    }

    #[test]
    fn equal_jitter_actually_varies_the_pause() {
        let b =
            Backoff::new(Duration::from_secs(8), Duration::from_secs(8)).with_jitter(Jitter::Equal);
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..50).map(|_| b.delay_with(0, &mut rng)).collect();
        let (lo, hi) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(
            hi.saturating_sub(*lo) > Duration::from_secs(1),
            "{lo:?}..{hi:?}"
        );
    }

    #[test]
    fn jitter_on_a_zero_or_saturated_pause_does_not_panic() {
        let zero = Backoff::constant(Duration::ZERO).with_jitter(Jitter::Equal);
        assert_eq!(zero.delay(3), Duration::ZERO);
        let doubling_zero = Backoff::new(Duration::ZERO, Duration::from_secs(9));
        assert_eq!(doubling_zero.delay(u32::MAX), Duration::ZERO);
        let huge = Backoff::new(Duration::MAX, Duration::MAX).with_jitter(Jitter::Equal);
        assert!(huge.delay(u32::MAX) >= Duration::MAX / 2);
    }

    #[test]
    fn the_config_backoff_converts_to_an_exact_doubling() {
        let config = crate::config::Backoff {
            min: Duration::from_secs(300),
            max: Duration::from_secs(86_400),
        };
        let b = Backoff::from(config);
        assert_eq!(b, Backoff::new(config.min, config.max));
        assert_eq!(b.delay(2), Duration::from_secs(1_200));
    }
}
