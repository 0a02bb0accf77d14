//! Pacing of management calls per provider entry: `rate_limit = "R/s"` or
//! `"R/m"` (a token bucket, burst R/10, at least 1) and `max_concurrent = N` (calls in
//! flight at once), plus the provider's own 429s, which hold every further
//! call to the entry until its `Retry-After` (or, without one, an
//! exponential pause from [`crate::backoff::Backoff`]), instead of each
//! caller retrying into the limit on its own.
//!
//! Management calls, paced: `create_key`, `list_keys`, `get_key`,
//! `disable_key`, `delete_key`, `archive_key` (made with the management
//! key). Not paced: `verify_key`, made with the new key itself, which the
//! provider limits separately (and which verification bounds on its own).
//!
//! One [`Pace`] is built per provider entry in `App::build` and shared by
//! every client of the entry: the per-policy clients
//! (`providers::for_policy`) and the readiness probe. A reload builds the
//! providers anew, so a new `Pace` starts, full, even when the entry's
//! limit settings did not change.
//!
//! The rate is the cluster's: each [`Pace`] reads a [`Replicas`] count (1
//! unless told otherwise; `App::set_replicas` sets it from the DynamoDB
//! state's heartbeats) and takes 1/N of it: the interval between calls
//! times N, the burst divided by N (at least 1). `max_concurrent` stays per
//! process: N replicas may have N x `max_concurrent` calls in flight.
//!
//! The bucket is GCRA (a "theoretical arrival time") on tokio's clock, so
//! tests drive it with paused time. `governor` was not used: its
//! `until_ready` sleeps on `futures-timer` and its clocks are not tokio's,
//! so paused-time tests could not drive it, and it would add crates for
//! the twenty lines below.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::warn;

use super::{CreatedKey, Deleted, KeyInfo, KeySpec, Provider, ProviderError};
use crate::backoff::{Backoff, Jitter};
use crate::config::ProviderLimits;
use crate::policy::{Policy, VerifyMode};

/// The longest a 429 holds the entry: a longer `Retry-After` is cut to
/// this (the retry then fails the call, and the rotation backs off).
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// The pause after a 429 without `Retry-After`, growing per 429 in a row.
const PAUSE: Backoff =
    Backoff::new(Duration::from_millis(500), MAX_HOLD).with_jitter(Jitter::Equal);

/// The burst is this fraction of the rate (at least one call): a provider
/// whose own bucket is as large as the configured rate keeps the rest in
/// reserve for calls that arrive bunched (latencies vary), so pacing at
/// its exact limit meets no 429s once the burst is spent.
const BURST_DIVISOR: u32 = 10;

/// The shared limiter of one provider entry.
/// Told how long a call waited for its turn (the entry, the wait): the
/// throttled-seconds metric, kept out of this module so providers do not
/// depend on metrics. Called once with zero at the start.
pub type WaitCounter = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// How many replicas share each provider's rate (this process included;
/// 0 reads as 1). Shared by every [`Pace`] of a process and its reloads.
pub type Replicas = Arc<AtomicUsize>;

pub struct Pace {
    entry: String,
    /// The configured rate: time per call and the burst (calls), for the
    /// whole cluster.
    rate: Option<(Duration, u32)>,
    replicas: Replicas,
    permits: Option<Semaphore>,
    state: Mutex<PaceState>,
    waited: Option<WaitCounter>,
}

#[derive(Debug)]
struct PaceState {
    /// When the bucket is empty again if nothing else is taken (GCRA).
    tat: Instant,
    /// A 429 holds every call until then.
    not_before: Instant,
    /// 429s without `Retry-After` in a row: the exponent of the pause.
    pauses: u32,
}

impl Pace {
    pub fn new(entry: &str, limits: ProviderLimits, waited: Option<WaitCounter>) -> Self {
        let rate = (limits.rate).map(|rate| (rate.interval(), rate.count));
        let permits = (limits.max_concurrent).map(|n| Semaphore::new(n as usize));
        if let Some(count) = &waited {
            // The series exists at 0 from the start, so a rate over it works.
            count(entry, Duration::ZERO);
        }
        let now = Instant::now();
        Pace {
            entry: entry.to_string(),
            rate,
            replicas: Arc::new(AtomicUsize::new(1)),
            permits,
            state: Mutex::new(PaceState {
                tat: now,
                not_before: now,
                pauses: 0,
            }),
            waited,
        }
    }

    /// The pace taking its share of the rate from `replicas`.
    pub fn shared(mut self, replicas: Replicas) -> Self {
        self.replicas = replicas;
        self
    }

    /// This process's bucket now: time per call and the burst allowance
    /// (`interval * (burst - 1)`), the configured rate divided by the
    /// replicas alive.
    fn bucket(&self) -> Option<(Duration, Duration)> {
        let (interval, count) = self.rate?;
        let share = u32::try_from(self.replicas.load(Ordering::Relaxed))
            .unwrap_or(u32::MAX)
            .max(1);
        let interval = interval.saturating_mul(share);
        let burst = (count / share / BURST_DIVISOR).max(1);
        Some((interval, interval.saturating_mul(burst - 1)))
    }

    /// Waits for a concurrency permit and the call's turn, then makes the
    /// call, and learns from its answer.
    pub async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let asked = Instant::now();
        // A closed semaphore cannot happen (it is never closed); without a
        // permit the call would still be paced by the bucket.
        let _permit = match &self.permits {
            Some(permits) => permits.acquire().await.ok(),
            None => None,
        };
        let start = self.reserve(Instant::now());
        tokio::time::sleep_until(start).await;
        // A 429 that came back while this call waited holds it too.
        loop {
            let held = self.lock().not_before;
            if held <= Instant::now() {
                break;
            }
            tokio::time::sleep_until(held).await;
        }
        self.count_wait(asked.elapsed());
        let result = call.await;
        self.learn(&result);
        result
    }

    /// How long a management call asked for at `now` would wait for its
    /// turn (a 429's hold, the bucket), without taking a place: the part of
    /// a side effect's span the limiter adds. An estimate: callers that
    /// reserve in between push it back by one interval each.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        let state = self.lock();
        let mut start = now.max(state.not_before);
        if let Some((_, burst)) = self.bucket() {
            start = start.max(state.tat.checked_sub(burst).unwrap_or(now));
        }
        start.saturating_duration_since(now)
    }

    /// The instant this call may start; takes its place in the bucket.
    fn reserve(&self, now: Instant) -> Instant {
        let mut state = self.lock();
        let mut start = now.max(state.not_before);
        if let Some((interval, burst)) = self.bucket() {
            let earliest = state.tat.checked_sub(burst).unwrap_or(now);
            start = start.max(earliest);
            state.tat = state.tat.max(start) + interval;
        }
        start
    }

    fn learn<T>(&self, result: &Result<T, ProviderError>) {
        match result {
            Err(ProviderError::RateLimited {
                status: 429,
                retry_after,
                ..
            }) => self.hold(*retry_after, Instant::now()),
            Ok(_) => self.lock().pauses = 0,
            Err(_) => {}
        }
    }

    /// Holds every further call until `retry_after` from `now` (or an
    /// exponential pause without one). Logs once per pause: a 429 that
    /// does not push the hold further (a call already in flight when the
    /// first came back) stays silent.
    fn hold(&self, retry_after: Option<Duration>, now: Instant) {
        let mut state = self.lock();
        let wait = match retry_after {
            Some(after) => after,
            None => {
                state.pauses = state.pauses.saturating_add(1);
                PAUSE.delay(state.pauses - 1)
            }
        };
        let until = now + wait.min(MAX_HOLD);
        if until <= state.not_before {
            return;
        }
        let already_held = state.not_before > now;
        state.not_before = until;
        drop(state);
        if !already_held {
            let held = wait.min(MAX_HOLD);
            let wall = chrono::TimeDelta::from_std(held).unwrap_or_default();
            let until =
                (chrono::Utc::now() + wall).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            warn!(provider = %self.entry, until, hold_ms = held.as_millis() as u64, "provider answered 429: holding its management calls until then");
        }
    }

    fn count_wait(&self, waited: Duration) {
        if let Some(count) = &self.waited
            && !waited.is_zero()
        {
            count(&self.entry, waited);
        }
    }

    fn lock(&self) -> MutexGuard<'_, PaceState> {
        // Every update is a few assignments that cannot panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `inner` with its management calls paced by `pace`.
pub fn wrap(inner: Arc<dyn Provider>, pace: Arc<Pace>) -> Arc<dyn Provider> {
    Arc::new(Limited { inner, pace })
}

pub struct Limited {
    inner: Arc<dyn Provider>,
    pace: Arc<Pace>,
}

#[async_trait]
impl Provider for Limited {
    fn entry(&self) -> &str {
        self.inner.entry()
    }

    async fn create_key(&self, spec: &KeySpec) -> Result<CreatedKey, ProviderError> {
        self.pace.run(self.inner.create_key(spec)).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
        self.pace.run(self.inner.list_keys()).await
    }

    /// One paced call: the provider's own cheap probe, not a full listing.
    async fn probe(&self) -> Result<(), ProviderError> {
        self.pace.run(self.inner.probe()).await
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, ProviderError> {
        self.pace.run(self.inner.get_key(id)).await
    }

    async fn disable_key(&self, id: &str) -> Result<(), ProviderError> {
        self.pace.run(self.inner.disable_key(id)).await
    }

    async fn delete_key(&self, id: &str) -> Result<Deleted, ProviderError> {
        self.pace.run(self.inner.delete_key(id)).await
    }

    /// Made with the new key: not a management call, never paced.
    async fn verify_key(&self, key: &SecretString, mode: &VerifyMode) -> Result<(), ProviderError> {
        self.inner.verify_key(key, mode).await
    }

    async fn archive_key(&self, id: &str) -> Result<(), ProviderError> {
        self.pace.run(self.inner.archive_key(id)).await
    }

    fn assisted(&self) -> bool {
        self.inner.assisted()
    }

    fn paced(&self) -> bool {
        true
    }

    fn queue_delay(&self) -> Duration {
        self.pace.queue_delay(Instant::now())
    }

    fn for_policy(&self, policy: &Policy) -> Option<Arc<dyn Provider>> {
        let scoped = self.inner.for_policy(policy)?;
        Some(wrap(scoped, self.pace.clone()))
    }
}

#[cfg(test)]
#[path = "limited_tests.rs"]
mod tests;
