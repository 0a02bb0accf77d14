//! Which injected fault, if any, a request to an endpoint meets.
//! Endpoint-specific knobs win over the `*` knob. The `after_effect` knobs
//! are spent only by calls that take effect (see `after_effect`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand::Rng;

use super::after_effect::{CreateAnswer, ListAnswer};
use super::{Api, Faults};

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
    /// Whether the call is made with the management key (the ones the
    /// `management_rate_per_sec` bucket paces), not with a key under test.
    pub(crate) fn is_management(self) -> bool {
        matches!(
            self,
            Endpoint::Create | Endpoint::List | Endpoint::Get | Endpoint::Update | Endpoint::Delete
        )
    }

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

/// The configured knobs plus how many 429s each rate-limit knob has left,
/// and how many calls each `after_effect` knob has left (`None`: no limit).
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Faults,
    rate_limit_left: BTreeMap<String, u32>,
    create_left: Option<u32>,
    delete_left: Option<u32>,
    list_left: Option<u32>,
    /// Per API, how the listing under way answers: set by its first page,
    /// kept by the pages after it.
    listings: BTreeMap<Api, Option<ListAnswer>>,
    /// The number of the next phantom key (`ListAnswer::Endless`).
    next_phantom: u64,
    /// The `management_rate_per_sec` bucket.
    bucket: Option<Bucket>,
    /// Management calls the bucket answered 429.
    throttled: u64,
}

/// A token bucket of `rate` tokens a second holding at most `rate`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token, or says in how many whole seconds (at least 1) one is due.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.rate;
        // Saturating float-to-int cast: a tiny rate cannot overflow.
        Err((wait.ceil() as u64).max(1))
    }
}

/// How one page of a listing answers, and the phantom numbers it may use.
pub(crate) struct Listing {
    pub answer: Option<ListAnswer>,
    pub phantoms: Range<u64>,
}

const ALL: &str = "*";

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rate_limit_left = faults
            .rate_limit
            .iter()
            .map(|(k, v)| (k.clone(), v.count))
            .collect();
        let after = &faults.after_effect;
        let bucket = (faults.management_rate_per_sec).map(|rate| Bucket::new(rate, Instant::now()));
        Self {
            bucket,
            create_left: after.create.and_then(|f| f.count),
            delete_left: after.delete.and_then(|f| f.count),
            list_left: after.list.and_then(|f| f.count),
            rate_limit_left,
            faults,
            ..Self::default()
        }
    }

    /// How a create that made its key answers; spends one from the count.
    pub(crate) fn after_create(&mut self) -> Option<CreateAnswer> {
        let fault = self.faults.after_effect.create?;
        spend(&mut self.create_left).then_some(fault.answer)
    }

    /// Whether a delete of a key that exists answers 404 and leaves it be;
    /// spends one from the count.
    pub(crate) fn after_delete(&mut self) -> bool {
        self.faults.after_effect.delete.is_some() && spend(&mut self.delete_left)
    }

    /// How a page of a listing at `api` answers. A first page starts a
    /// listing and spends one from the count; later pages follow it.
    /// An endless page of `size` gets `size` fresh phantom numbers.
    pub(crate) fn listing(&mut self, api: Api, first_page: bool, size: usize) -> Listing {
        if first_page {
            let fault = self.faults.after_effect.list;
            let answer = fault.filter(|_| spend(&mut self.list_left));
            self.listings.insert(api, answer.map(|f| f.answer));
        }
        let answer = self.listings.get(&api).copied().flatten();
        let start = self.next_phantom;
        if answer == Some(ListAnswer::Endless) {
            self.next_phantom += u64::try_from(size).unwrap_or(u64::MAX);
        }
        Listing {
            answer,
            phantoms: start..self.next_phantom,
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

    pub(crate) fn throttled(&self) -> u64 {
        self.throttled
    }

    /// Decides the fault for one request, spending one rate-limited answer
    /// if due, then a token of the management bucket.
    pub(crate) fn decide(&mut self, endpoint: Endpoint) -> Injected {
        self.decide_at(endpoint, Instant::now())
    }

    fn decide_at(&mut self, endpoint: Endpoint, now: Instant) -> Injected {
        if let Some(retry_after_secs) = self.take_rate_limit(endpoint) {
            return Injected::RateLimited { retry_after_secs };
        }
        if endpoint.is_management()
            && let Some(bucket) = &mut self.bucket
            && let Err(retry_after_secs) = bucket.take(now)
        {
            self.throttled += 1;
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

/// Spends one call of a counted knob: `None` never runs out.
fn spend(left: &mut Option<u32>) -> bool {
    match left {
        None => true,
        Some(0) => false,
        Some(n) => {
            *n -= 1;
            true
        }
    }
}

fn lookup<T>(map: &BTreeMap<String, T>, endpoint: Endpoint) -> Option<&T> {
    map.get(endpoint.as_str()).or_else(|| map.get(ALL))
}

#[cfg(test)]
mod tests;
