//! One pass of the daemon loop over the policies the [`DueIndex`] says to
//! look at: read the journal, feed the gauges, decide, and start a rotation
//! when one is due — as the concurrency limit frees up, never more tasks
//! than it allows. What a pass learns plans the policy's next look.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::index::DueIndex;
use super::observe::observe;
use super::rules::{catch_up_delay, cooling_down, is_running, journal_unreadable};
use super::task::spawn_rotation;
use super::{Mode, Shared};
use crate::app::App;
use crate::names::{LeaseKey, PolicyName};
use crate::rotation::{Decision, Request, WaitReason, decide};

/// How often the gauges of policies not read in a pass are brought up to
/// date (key age and "due" move with the clock, not with the journal): as
/// often as an idle loop used to pass over every journal.
const GAUGE_REFRESH: Duration = super::MAX_SLEEP;

/// The loop's memory across passes (see the module doc of `index`).
pub(super) struct Looker {
    mode: Mode,
    pub(super) index: DueIndex,
    /// Policy name → its place in the app's config.
    positions: HashMap<PolicyName, usize>,
    /// Lease key → the policies writing that secret.
    by_lease: HashMap<LeaseKey, Vec<PolicyName>>,
    /// Overdue starts spread over `catch_up_jitter`, planned once.
    held_back: HashMap<PolicyName, DateTime<Utc>>,
    /// The first pass after start or a reload: overdue work is spread.
    first_pass: bool,
    next_refresh: DateTime<Utc>,
    next_lease_scan: DateTime<Utc>,
}

/// What a pass ended with.
pub(super) struct Passed {
    /// Rotations started.
    pub ran: usize,
    /// A due policy waits for a rotation to end (the concurrency limit).
    pub blocked: bool,
}

impl Looker {
    /// Every policy of `app` is looked at in the first pass.
    pub(super) fn new(app: &App, mode: Mode, now: DateTime<Utc>) -> Looker {
        let mut looker = Looker {
            mode,
            index: DueIndex::default(),
            positions: HashMap::new(),
            by_lease: HashMap::new(),
            held_back: HashMap::new(),
            first_pass: true,
            next_refresh: now,
            next_lease_scan: now,
        };
        looker.map(app);
        for policy in &app.config.policies {
            looker.index.look_at(&policy.name, now);
        }
        looker
    }

    fn map(&mut self, app: &App) {
        self.positions = (app.config.policies.iter().enumerate())
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        self.by_lease.clear();
        for policy in &app.config.policies {
            (self
                .by_lease
                .entry(policy.target.lease.clone())
                .or_default())
            .push(policy.name.clone());
        }
    }

    /// A reload swapped the app: removed policies are forgotten, new and
    /// changed ones looked at now, overdue work found is spread again.
    pub(super) fn reloaded(&mut self, shared: &Shared, app: &App, now: DateTime<Utc>) {
        self.map(app);
        let positions = &self.positions;
        self.index.retain(|name| positions.contains_key(name));
        self.held_back
            .retain(|name, _| self.positions.contains_key(name));
        let touched = shared
            .touched_by_reload
            .lock()
            .expect("reload set poisoned");
        for policy in &app.config.policies {
            let known = self.index.is_planned(&policy.name) || is_running(shared, &policy.name);
            if !known || touched.contains(&policy.name) {
                self.index.look_at(&policy.name, now);
            }
        }
        self.first_pass = true;
    }

    /// Rotations that ended since the last pass: their journals are read now.
    pub(super) fn rotations_ended(&mut self, shared: &Shared, now: DateTime<Utc>) {
        let ended = std::mem::take(&mut *shared.ended.lock().expect("ended set poisoned"));
        if self.mode == Mode::Once {
            return;
        }
        for name in ended {
            if self.positions.contains_key(&name) {
                self.index.look_by(&name, now);
            }
        }
    }

    /// With leases that expire (a shared table), once per lease period: the
    /// policies whose lease a crashed replica left to expire are looked at
    /// now, and this replica's heartbeat tells how many share the table.
    pub(super) async fn lease_scan(&mut self, app: &App, now: DateTime<Utc>) {
        let Some(period) = app.state.lease_period() else {
            return;
        };
        if self.mode == Mode::Once || now < self.next_lease_scan {
            return;
        }
        self.next_lease_scan = crate::clock::later(now, period);
        match app.state.expired_leases().await {
            Ok(keys) => {
                for key in keys {
                    for name in self.by_lease.get(&key).into_iter().flatten() {
                        self.index.look_by(name, now);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot look for expired leases now; trying again in one lease period")
            }
        }
        match app.state.heartbeat().await {
            Ok(Some(replicas)) => {
                if replicas != app.replicas() {
                    info!(
                        replicas,
                        "replicas sharing the state table: each takes this share of every provider's rate_limit"
                    );
                }
                app.set_replicas(replicas);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot record this replica's heartbeat now; trying again in one lease period")
            }
        }
    }

    /// When the loop must look again at the latest: the next planned look
    /// (unless a due one waits for the concurrency limit: a rotation's end
    /// wakes the loop then), the gauges' refresh, the lease scan.
    pub(super) fn wake(&self, app: &App, blocked: bool) -> DateTime<Utc> {
        let planned = self.index.earliest().filter(|_| !blocked);
        let scan = app.state.lease_period().map(|_| self.next_lease_scan);
        [Some(self.next_refresh), planned, scan]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_refresh)
    }

    /// The gauges of every policy read before, at most every [`GAUGE_REFRESH`].
    pub(super) fn refresh_gauges(&mut self, shared: &Shared, app: &App, now: DateTime<Utc>) {
        if now < self.next_refresh {
            return;
        }
        self.next_refresh = crate::clock::later(now, GAUGE_REFRESH);
        for state in self.index.seen() {
            if let Some(&i) = self.positions.get(&state.policy) {
                observe(shared, app, &app.config.policies[i], &state, now);
            }
        }
    }

    /// One pass over the policies due to be looked at (see the module doc).
    pub(super) async fn pass(
        &mut self,
        shared: &Arc<Shared>,
        tracker: &TaskTracker,
        app: &Arc<App>,
        now: DateTime<Utc>,
        retry_in: Duration,
    ) -> Passed {
        let mut passed = Passed {
            ran: 0,
            blocked: false,
        };
        let mut cursor = None;
        while let Some(entry) = self.index.next_due(now, cursor.as_ref()) {
            let name = entry.1.clone();
            cursor = Some(entry);
            let Some(&i) = self.positions.get(&name) else {
                self.index.forget(&name);
                continue;
            };
            let policy = &app.config.policies[i];
            if is_running(shared, &name) {
                // Its end plans the next look.
                self.index.unplan(&name);
                continue;
            }
            if let Some(until) = cooling_down(shared, &name, now) {
                self.plan(&name, Some(until));
                continue;
            }
            let Ok(permit) = shared.limit.clone().try_acquire_owned() else {
                passed.blocked = true;
                break;
            };
            let state = match app.state.load(&name).await {
                Ok(state) => state,
                Err(e) => {
                    journal_unreadable(shared, app, policy, &e, self.mode);
                    self.index.unseen(&name);
                    self.plan(&name, Some(crate::clock::later(now, retry_in)));
                    continue;
                }
            };
            self.index.saw(&state);
            observe(shared, app, policy, &state, now);
            let decision = decide(policy, &state, now);
            let request = if touched_by_reload(shared, &name) {
                Request::DueAfterReload
            } else {
                Request::Due
            };
            if let Decision::Wait { until, why } = decision {
                // Assisted policies look for a placed key even when not due.
                let assisted = app.providers[&policy.provider].assisted();
                if !(assisted && why == WaitReason::NotDue) {
                    self.plan(&name, until);
                    continue;
                }
            }
            if self.mode == Mode::Forever {
                let first_pass = self.first_pass;
                let start = *self.held_back.entry(name.clone()).or_insert_with(|| {
                    crate::clock::later(now, catch_up_delay(app, &decision, first_pass))
                });
                if start > now {
                    self.plan(&name, Some(start));
                    continue;
                }
                self.held_back.remove(&name);
            }
            self.index.unplan(&name);
            let (policy, mode) = (policy.clone(), self.mode);
            if spawn_rotation(tracker, shared, app, policy, request, mode, Some(permit)) {
                passed.ran += 1;
            }
        }
        self.first_pass = false;
        passed
    }

    /// The next look at `name` (`None`: only when something changes). A
    /// `--once` run looks at each policy once.
    fn plan(&mut self, name: &PolicyName, at: Option<DateTime<Utc>>) {
        match at {
            Some(at) if self.mode == Mode::Forever => self.index.look_at(name, at),
            _ => self.index.unplan(name),
        }
    }
}

/// Whether a reload added or changed `policy` since its last decision (asked once).
fn touched_by_reload(shared: &Shared, policy: &str) -> bool {
    (shared.touched_by_reload.lock())
        .expect("reload set poisoned")
        .remove(policy)
}
