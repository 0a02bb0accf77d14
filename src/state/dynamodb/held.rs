//! What a held lease and its renewal task share: the lease's identity and
//! fence, and the clock of its last successful acquire or renewal (or why
//! it is lost). Time on this replica: the wall clock written into lease
//! items, and the skew margin taken off what a lease may promise.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::warn;

use super::Health;
use super::table::Table;
use crate::names::LeaseKey;
use crate::state::Fence;

/// Now on this replica's wall clock, in Unix milliseconds.
pub(super) fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// max(lease/10, 1s): see the module documentation. The config checks
/// with the same rule that a call's timeout fits in a lease.
pub(super) fn skew_margin(lease: Duration) -> Duration {
    crate::config::bounds::lease_skew_margin(lease)
}

/// What a lease and its renewal task share.
pub(super) struct Shared {
    pub(super) table: Arc<Table>,
    pub(super) health: Arc<Health>,
    pub(super) key: LeaseKey,
    pub(super) pk: String,
    pub(super) fence: Fence,
    pub(super) length: Duration,
    pub(super) clock: Mutex<Clock>,
}

pub(super) struct Clock {
    /// When the last acquire or renewal that succeeded was sent.
    pub(super) sent: Instant,
    /// Why the lease is lost; `Some` is final.
    pub(super) lost: Option<String>,
}

impl Clock {
    pub(super) fn new(sent: Instant) -> Self {
        Self { sent, lost: None }
    }
}

impl Shared {
    pub(super) fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lose(&self, why: &str) {
        let mut clock = self.clock();
        if clock.lost.is_none() {
            warn!(lease = %self.key, why, "lease lost");
            clock.lost = Some(why.to_string());
        }
    }
}
