//! The daemon loop: a deadline loop over all policies (mini-redis'
//! `purge_expired_tasks` shape). It keeps, in memory, when to look at each
//! policy next (`index`); a pass reads only the journals of policies whose
//! instant has come or that changed, starts what is due as the global
//! concurrency limit frees up, and the loop sleeps until the earliest next
//! instant — computed from the cron expression in its time zone at each
//! read, so daylight-saving changes are honoured — or until a rotation ends.
//!
//! [`Daemon`] is the handle the admin API and the reloader share with the
//! loop: the current [`App`] (a reload swaps it; running rotations keep the
//! one they started with), the set of running rotations, liveness and
//! readiness. Shutdown: the app's cancel token stops the loop; running
//! rotations get `daemon.shutdown_timeout` to reach a step boundary.
//!
//! This module owns the handle and its shared state; `run_loop` owns a pass
//! and the sleep between passes, `task` one rotation task and `report` the
//! line that ends a run.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::app::App;
use crate::names::PolicyName;

pub mod heap;
mod index;
mod observe;
mod pass;
pub mod probe;
mod report;
mod retire;
mod rules;
mod run_loop;
mod task;
mod trigger;

use rules::is_running;
use run_loop::run_loop;
use task::spawn_rotation;

pub use probe::Readiness;
pub use trigger::Refusal;

/// The longest the loop sleeps without looking again: also its liveness
/// heartbeat (`/healthz` fails after [`UNHEALTHY_AFTER`] without a pass).
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// No pass for this long: the loop is stuck.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(3 * MAX_SLEEP.as_secs());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Do everything due now (including pending revokes), then return.
    Once,
    /// Run until the app's cancel token fires.
    Forever,
}

impl Mode {
    /// As the command line says it: `rekey run --once` or `rekey run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::Forever => "continuous",
        }
    }
}

/// What a `--once` pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ran: usize,
    pub failed: usize,
    /// Policies skipped because their journal could not be read.
    pub unreadable: usize,
}

struct Shared {
    /// The app new rotations start with; a reload replaces it.
    app: RwLock<Arc<App>>,
    /// Shutdown: shared by every app a reload builds.
    cancel: CancellationToken,
    /// `daemon.max_concurrent_rotations`: a pass starts a rotation only
    /// with a permit in hand.
    limit: Arc<Semaphore>,
    running: Mutex<HashSet<PolicyName>>,
    finished: Notify,
    /// Policies whose rotation ended since the loop last looked: their
    /// journals are read at the next pass.
    ended: Mutex<HashSet<PolicyName>>,
    /// A reload swapped the app: look at the new policies now.
    reloaded: Notify,
    failed: Mutex<usize>,
    unreadable: Mutex<usize>,
    /// Policies not to try again before an instant: after a failure the
    /// journal could not record (e.g. the store was unreachable), or while
    /// another process holds the secret.
    cooldown: Mutex<HashMap<PolicyName, DateTime<Utc>>>,
    /// When the loop last finished a pass (monotonic: immune to clock jumps).
    last_tick: Mutex<tokio::time::Instant>,
    readiness: Mutex<Readiness>,
    /// Orders policy snapshots against a reload's forgetting of removed policies.
    gate: Mutex<()>,
    /// Policies a reload added or changed: a rotation the next pass begins
    /// for one of them is recorded with trigger `reload`.
    touched_by_reload: Mutex<HashSet<PolicyName>>,
}

/// The running daemon, shared by the loop, the admin API and the reloader.
#[derive(Clone)]
pub struct Daemon {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

pub async fn run(app: Arc<App>, mode: Mode) -> Summary {
    Daemon::new(app).run(mode).await
}

impl Daemon {
    pub fn new(app: Arc<App>) -> Daemon {
        let shared = Shared {
            limit: Arc::new(Semaphore::new(app.config.daemon.max_concurrent_rotations)),
            cancel: app.cancel.clone(),
            app: RwLock::new(app),
            running: Mutex::new(HashSet::new()),
            finished: Notify::new(),
            ended: Mutex::new(HashSet::new()),
            reloaded: Notify::new(),
            failed: Mutex::new(0),
            unreadable: Mutex::new(0),
            cooldown: Mutex::new(HashMap::new()),
            last_tick: Mutex::new(tokio::time::Instant::now()),
            readiness: Mutex::new(Readiness::Probing),
            gate: Mutex::new(()),
            touched_by_reload: Mutex::new(HashSet::new()),
        };
        Daemon {
            shared: Arc::new(shared),
            tracker: TaskTracker::new(),
        }
    }

    /// The app new rotations start with.
    pub fn app(&self) -> Arc<App> {
        self.shared.app.read().expect("app lock poisoned").clone()
    }

    /// Switches to a reloaded app; the loop looks at its policies at once.
    /// The observer forgets `removed` policies in the same step, so no late
    /// snapshot of theirs brings their series back.
    pub fn replace_app(&self, app: Arc<App>, removed: &[PolicyName], touched: &[PolicyName]) {
        let _gate = self.shared.gate.lock().expect("snapshot gate poisoned");
        (self.shared.touched_by_reload.lock())
            .expect("reload set poisoned")
            .extend(touched.iter().cloned());
        *self.shared.app.write().expect("app lock poisoned") = app.clone();
        for name in removed {
            app.observer.forget_policy(name);
        }
        self.shared.reloaded.notify_one();
    }

    /// Policies with a rotation running in this process, sorted.
    pub fn running(&self) -> Vec<PolicyName> {
        let running = self.shared.running.lock().expect("running set poisoned");
        let mut names: Vec<PolicyName> = running.iter().cloned().collect();
        names.sort();
        names
    }

    /// No rotation runs in this process.
    pub fn is_idle(&self) -> bool {
        (self.shared.running.lock())
            .expect("running set poisoned")
            .is_empty()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Time since the loop last finished a pass.
    pub fn since_last_tick(&self) -> Duration {
        self.shared
            .last_tick
            .lock()
            .expect("tick lock poisoned")
            .elapsed()
    }

    pub async fn run(&self, mode: Mode) -> Summary {
        if mode == Mode::Forever {
            self.resume_retirements().await;
        }
        run_loop(self, mode).await
    }

    /// The loop finished a pass: liveness for `/healthz` and the metrics.
    fn tick(&self, app: &App) {
        *self.shared.last_tick.lock().expect("tick lock poisoned") = tokio::time::Instant::now();
        app.observer.metrics.scheduler_tick(app.clock.now());
    }

    /// Waits for running rotations; once shutdown is requested, for at most
    /// `daemon.shutdown_timeout` — the journal resumes whatever is cut off.
    async fn drain(&self) {
        let timeout = self.app().config.daemon.shutdown_timeout;
        let deadline = async {
            self.shared.cancel.cancelled().await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            _ = self.tracker.wait() => {}
            _ = deadline => {
                let running = self.running();
                warn!(
                    policies = %running.join(","),
                    timeout = %humantime::format_duration(timeout),
                    "shutdown timeout: exiting with rotations still running; the journal resumes them on the next start"
                );
            }
        }
    }
}
