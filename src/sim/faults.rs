//! Which injected fault, if any, a request to an endpoint meets.
//! Endpoint-specific knobs win over the `*` knob.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use super::Faults;

/// The endpoints faults can target, by the names `Faults` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Create,
    List,
    Get,
    Update,
    Delete,
    Whoami,
    Models,
    Chat,
}

impl Endpoint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Endpoint::Create => "create",
            Endpoint::List => "list",
            Endpoint::Get => "get",
            Endpoint::Update => "update",
            Endpoint::Delete => "delete",
            Endpoint::Whoami => "whoami",
            Endpoint::Models => "models",
            Endpoint::Chat => "chat",
        }
    }
}

/// What happens to a request before the API logic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    RateLimited { retry_after_secs: u64 },
    ServerError,
}

/// The configured knobs plus how many 429s each rate-limit knob has left.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Faults,
    rate_limit_left: BTreeMap<String, u32>,
}

const ALL: &str = "*";

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rate_limit_left = faults
            .rate_limit
            .iter()
            .map(|(k, v)| (k.clone(), v.count))
            .collect();
        Self {
            faults,
            rate_limit_left,
        }
    }

    pub(crate) fn latency(&self, endpoint: Endpoint) -> Duration {
        Duration::from_millis(
            lookup(&self.faults.latency_ms, endpoint)
                .copied()
                .unwrap_or(0),
        )
    }

    pub(crate) fn propagation_delay(&self) -> Duration {
        Duration::from_millis(self.faults.propagation_delay_ms)
    }

    pub(crate) fn reject_new_keys(&self) -> bool {
        self.faults.reject_new_keys
    }

    pub(crate) fn quota_exhausted(&self) -> bool {
        self.faults.quota_exhausted
    }

    /// Decides the fault for one request, spending one rate-limited answer if due.
    pub(crate) fn decide(&mut self, endpoint: Endpoint) -> Injected {
        if let Some(retry_after_secs) = self.take_rate_limit(endpoint) {
            return Injected::RateLimited { retry_after_secs };
        }
        let rate = lookup(&self.faults.error_rate, endpoint)
            .copied()
            .unwrap_or(0.0);
        // `random_bool` panics outside [0, 1]; NaN counts as "no errors".
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        if rate > 0.0 && rand::rng().random_bool(rate) {
            return Injected::ServerError;
        }
        Injected::None
    }

    fn take_rate_limit(&mut self, endpoint: Endpoint) -> Option<u64> {
        let name = [endpoint.as_str(), ALL].into_iter().find(|name| {
            self.rate_limit_left
                .get(*name)
                .is_some_and(|left| *left > 0)
        })?;
        let left = self.rate_limit_left.get_mut(name)?;
        *left -= 1;
        self.faults
            .rate_limit
            .get(name)
            .map(|fault| fault.retry_after_secs)
    }
}

fn lookup<T>(map: &BTreeMap<String, T>, endpoint: Endpoint) -> Option<&T> {
    map.get(endpoint.as_str()).or_else(|| map.get(ALL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::RateLimitFault;

    fn limited(endpoint: &str, count: u32, secs: u64) -> Faults {
        let fault = RateLimitFault {
            count,
            retry_after_secs: secs,
        };
        Faults {
            rate_limit: [(endpoint.to_string(), fault)].into(),
            ..Faults::default()
        }
    }

    #[test]
    fn rate_limit_answers_429_for_exactly_the_configured_count() {
        let mut state = FaultState::new(limited("chat", 2, 7));
        let limited = Injected::RateLimited {
            retry_after_secs: 7,
        };
        assert_eq!(state.decide(Endpoint::Chat), limited);
        assert_eq!(state.decide(Endpoint::List), Injected::None);
        assert_eq!(state.decide(Endpoint::Chat), limited);
        assert_eq!(state.decide(Endpoint::Chat), Injected::None);
    }

    #[test]
    fn star_applies_to_endpoints_without_their_own_knob() {
        let mut faults = limited("*", 1, 3);
        faults.latency_ms = [("*".to_string(), 5), ("get".to_string(), 9)].into();
        let mut state = FaultState::new(faults);
        assert_eq!(state.latency(Endpoint::Get), Duration::from_millis(9));
        assert_eq!(state.latency(Endpoint::Delete), Duration::from_millis(5));
        assert_eq!(
            state.decide(Endpoint::Models),
            Injected::RateLimited {
                retry_after_secs: 3
            }
        );
        assert_eq!(state.decide(Endpoint::Create), Injected::None);
    }

    #[test]
    fn error_rate_of_one_always_fails_and_zero_never_does() {
        let faults = Faults {
            error_rate: [("create".to_string(), 1.0), ("list".to_string(), 0.0)].into(),
            ..Faults::default()
        };
        let mut state = FaultState::new(faults);
        for _ in 0..20 {
            assert_eq!(state.decide(Endpoint::Create), Injected::ServerError);
            assert_eq!(state.decide(Endpoint::List), Injected::None);
        }
    }

    #[test]
    fn out_of_range_error_rates_do_not_panic() {
        let faults = Faults {
            error_rate: [("get".to_string(), 7.0), ("chat".to_string(), f64::NAN)].into(),
            ..Faults::default()
        };
        let mut state = FaultState::new(faults);
        assert_eq!(state.decide(Endpoint::Get), Injected::ServerError);
        assert_eq!(state.decide(Endpoint::Chat), Injected::None);
    }
}
