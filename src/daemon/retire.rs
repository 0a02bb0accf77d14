//! Retiring a policy-set member that a reload removed from a set with
//! `on_remove = "revoke"`: the named exception to invariant 1 ("never
//! revoke the key the store holds as current"). The member's consumers are
//! gone with it, so its last key is revoked instead of left working.
//!
//! In order: the retirement is journaled (provider, revoke mode, secret),
//! a rotation in flight is finished as usual (promote, grace, revoke the old
//! key), then the member's current key is revoked and read back gone (or
//! disabled), and the journal records it done with no current key. A
//! daemon that stops mid-way resumes from the journal at its next start
//! (a rotation still in flight then waits for the member to come back:
//! finishing it needs the member's settings). A member that is back in the
//! config before its key is revoked keeps it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{Daemon, Shared};
use crate::app::App;
use crate::events::{Event, EventOutcome, EventStep, KeyRef};
use crate::fleet::OnRemove;
use crate::names::PolicyName;
use crate::policy::Policy;
use crate::providers::Provider;
use crate::rotation::{Request, Until, run_policy};
use crate::state::{Lease, PolicyState, Retirement};

/// How many times a rotation in flight is driven before the retirement
/// gives up on it for this run (each run waits out its grace).
const FINISH_ATTEMPTS: u32 = 5;

/// How often a retirement looks whether the member's rotation has ended.
const RUNNING_POLL: Duration = Duration::from_millis(250);

/// How long a revoke may take when the provider entry is gone from the config.
const DEFAULT_CALL_SPAN: Duration = Duration::from_secs(30);

impl Daemon {
    /// Starts retiring each of `removed` that `old` configured as a member
    /// of a set with `on_remove = "revoke"`.
    pub fn retire_removed(&self, old: &Arc<App>, removed: &[PolicyName]) {
        if removed.is_empty() {
            return;
        }
        let by_name: HashMap<&str, &Policy> = (old.config.policies.iter())
            .map(|p| (p.name.as_str(), p))
            .collect();
        for name in removed {
            let Some(policy) = by_name.get(name.as_str()) else {
                continue;
            };
            if policy.set.as_ref().map(|m| m.on_remove) != Some(OnRemove::Revoke) {
                continue;
            }
            let (daemon, old, policy) = (self.clone(), old.clone(), (*policy).clone());
            self.tracker
                .spawn(async move { retire(daemon, old, policy).await });
        }
    }

    /// At start: finishes the retirements a stopped daemon left pending
    /// (journals with a retirement not done, of policies not configured).
    pub async fn resume_retirements(&self) {
        let app = self.app();
        let Ok(names) = app.state.policies().await else {
            return;
        };
        let configured: std::collections::HashSet<&str> = (app.config.policies.iter())
            .map(|p| p.name.as_str())
            .collect();
        for name in names.iter().filter(|n| !configured.contains(n.as_str())) {
            let Ok(state) = app.state.load(name).await else {
                continue;
            };
            let Some(retirement) = state.retirement.filter(|r| r.done_at.is_none()) else {
                continue;
            };
            let Some(provider) = app.providers.get(&retirement.provider).cloned() else {
                warn!(policy = %name, provider = %retirement.provider, "cannot resume retiring a removed set member: its provider entry is gone from the config");
                continue;
            };
            info!(policy = %name, "resuming the retirement of a removed set member");
            let (daemon, app, name) = (self.clone(), app.clone(), name.clone());
            self.tracker.spawn(async move {
                revoke_current(&daemon, &app, &name, provider).await;
            });
        }
    }
}

async fn retire(daemon: Daemon, old: Arc<App>, policy: Policy) {
    let name = policy.name.clone();
    warn!(policy = %name, "removed from its policy set with on_remove = \"revoke\": its current key will be revoked once any rotation in flight is finished");
    if !wait_not_running(&daemon.shared, &name).await || !mark(&daemon, &old, &policy).await {
        return;
    }
    if !finish_in_flight(&daemon, &old, &policy).await {
        return;
    }
    crate::failpoint::hit("retire:marked");
    let provider = old.ctx(&policy).provider;
    revoke_current(&daemon, &old, &name, provider).await;
}

/// Waits until no rotation of `name` runs in this process; `false` on
/// shutdown. Polled: the loop's `finished` notification is the loop's own.
async fn wait_not_running(shared: &Shared, name: &PolicyName) -> bool {
    loop {
        if !shared
            .running
            .lock()
            .expect("running set poisoned")
            .contains(name)
        {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(RUNNING_POLL) => {}
            _ = shared.cancel.cancelled() => return false,
        }
    }
}

/// Journals the retirement (once); `false` when it cannot be written now.
async fn mark(daemon: &Daemon, app: &App, policy: &Policy) -> bool {
    let retirement = Retirement {
        since: app.clock.now(),
        provider: policy.provider.clone(),
        mode: policy.revoke.mode.as_str().to_string(),
        lease: policy.target.lease.clone(),
        legacy_lock: policy.target.legacy_lock_name(),
        set: policy.set_name().unwrap_or_default().to_string(),
        done_at: None,
    };
    for attempt in 0.. {
        let marked = with_journal(app, &retirement, &policy.name, |state| {
            if state
                .retirement
                .as_ref()
                .is_none_or(|r| r.done_at.is_some())
            {
                state.retirement = Some(retirement.clone());
            }
            Ok(())
        });
        if marked.await.is_some() {
            return true;
        }
        warn!(policy = %policy.name, "cannot journal the retirement of a removed set member yet; will retry");
        if !pause(daemon, app, attempt).await {
            return false;
        }
    }
    false
}

/// Drives a rotation in flight to its end (grace waited out, old key
/// revoked); `false` when it did not get there.
async fn finish_in_flight(daemon: &Daemon, app: &Arc<App>, policy: &Policy) -> bool {
    let ctx = app.ctx(policy);
    for attempt in 0..=FINISH_ATTEMPTS {
        match app.state.load(&policy.name).await {
            Ok(state) if state.in_flight.is_none() => return true,
            Ok(_) => {}
            Err(e) => {
                warn!(policy = %policy.name, error = %e, "cannot read the journal of a set member being retired")
            }
        }
        if attempt == FINISH_ATTEMPTS || (attempt > 0 && !pause(daemon, app, attempt - 1).await) {
            break;
        }
        info!(policy = %policy.name, "finishing the rotation in flight before retiring the member");
        if let Err(e) = run_policy(&ctx, policy, Request::Due, Until::Revoked).await {
            warn!(policy = %policy.name, error = %e, "the rotation in flight of a member being retired did not finish; will retry");
        }
    }
    if !daemon.shared.cancel.is_cancelled() {
        error!(policy = %policy.name, "gave up finishing the rotation in flight of a removed set member; its key is not revoked");
    }
    false
}

/// Revokes the member's current key and records the retirement done.
/// Retries (with the failure backoff) until done, shutdown, or the member
/// is configured again.
async fn revoke_current(
    daemon: &Daemon,
    app: &Arc<App>,
    name: &PolicyName,
    provider: Arc<dyn Provider>,
) {
    for attempt in 0.. {
        if daemon.app().config.policy(name).is_some() {
            info!(policy = %name, "the set member is configured again; its key is kept");
            let back = with_journal_by_name(app, name, |state| {
                state.retirement = None;
                Ok(())
            });
            let _ = back.await;
            return;
        }
        match revoke_once(app, name, provider.as_ref()).await {
            Some(Ok(())) => return,
            Some(Err(e)) => {
                error!(policy = %name, error = %e, "revoking a retired set member's key failed; will retry")
            }
            None => {}
        }
        if !pause(daemon, app, attempt).await {
            return;
        }
    }
}

/// One try under the secret's lease. `None`: not now (lease busy, journal
/// unreadable); `Some(Err)`: the provider did not confirm.
async fn revoke_once(
    app: &App,
    name: &PolicyName,
    provider: &dyn Provider,
) -> Option<Result<(), String>> {
    let state = app.state.load(name).await.ok()?;
    let retirement = state.retirement.clone()?;
    let lease = app
        .state
        .try_lease(&retirement.lease, &retirement.legacy_lock)
        .await
        .ok()??;
    let result = revoke_under_lease(app, name, provider, lease.as_ref()).await;
    lease.release().await;
    Some(result)
}

async fn revoke_under_lease(
    app: &App,
    name: &PolicyName,
    provider: &dyn Provider,
    lease: &dyn Lease,
) -> Result<(), String> {
    let mut state = app.state.load(name).await.map_err(|e| e.to_string())?;
    let Some(mut retirement) = state.retirement.clone() else {
        return Ok(());
    };
    if retirement.done_at.is_some() {
        return Ok(());
    }
    if state.in_flight.is_some() {
        return Err(
            "a rotation is in flight; it is finished when the member is back in the config".into(),
        );
    }
    let key = state.current.clone();
    if let Some(id) = key.as_ref().and_then(|k| k.id.clone()) {
        let span = (app.config.providers.get(&retirement.provider))
            .map_or(DEFAULT_CALL_SPAN, |p| p.request_timeout);
        lease.ensure(span).map_err(|e| e.to_string())?;
        revoke_confirmed(provider, &id, &retirement.mode).await?;
    } else if let Some(key) = &key {
        warn!(policy = %name, label = %key.label, "the retired member's key was never found at the provider; it is not revoked");
    }
    retirement.done_at = Some(app.clock.now());
    let set = retirement.set.clone();
    state.retirement = Some(retirement.clone());
    state.current = None;
    app.state
        .save(&state, lease)
        .await
        .map_err(|e| e.to_string())?;
    let mut event = Event::new(
        name,
        &retirement.provider,
        EventStep::Retire,
        EventOutcome::Ok,
    );
    event.time = app.clock.now();
    event.policy_set = Some(set);
    event.old_key = key.as_ref().map(KeyRef::from);
    app.observer.emit(event);
    warn!(policy = %name, key_id = key.as_ref().and_then(|k| k.id.as_deref()).unwrap_or("-"), revoke.mode = %retirement.mode, "retired a removed set member: revoked its current key (on_remove = \"revoke\", the named exception to never revoking a current key)");
    Ok(())
}

/// Revokes `id` the way `mode` says and reads back that it is gone (or
/// disabled/archived): the answer to the call alone may lie.
async fn revoke_confirmed(provider: &dyn Provider, id: &str, mode: &str) -> Result<(), String> {
    let answer = match mode {
        "disable" => provider.disable_key(id).await,
        "archive" => provider.archive_key(id).await,
        _ => provider.delete_key(id).await.map(drop),
    };
    let after = provider.get_key(id).await.map_err(|e| e.to_string())?;
    match after {
        None => Ok(()),
        Some(info) if info.disabled && mode != "delete" => Ok(()),
        Some(_) => Err(match answer {
            Err(e) => e.to_string(),
            Ok(()) => format!("the provider still has key {id} after it was revoked"),
        }),
    }
}

/// Loads the journal under the retirement's lease, applies `change` and
/// saves; `None` when the lease or the journal is not available now.
async fn with_journal<T>(
    app: &App,
    retirement: &Retirement,
    name: &PolicyName,
    change: impl FnOnce(&mut PolicyState) -> Result<T, String>,
) -> Option<T> {
    let lease = app
        .state
        .try_lease(&retirement.lease, &retirement.legacy_lock)
        .await
        .ok()??;
    let result = async {
        let mut state = app.state.load(name).await.ok()?;
        let value = change(&mut state).ok()?;
        app.state.save(&state, lease.as_ref()).await.ok()?;
        Some(value)
    }
    .await;
    lease.release().await;
    result
}

async fn with_journal_by_name(
    app: &App,
    name: &PolicyName,
    change: impl FnOnce(&mut PolicyState) -> Result<(), String>,
) -> Option<()> {
    let retirement = app.state.load(name).await.ok()?.retirement?;
    with_journal(app, &retirement, name, change).await
}

/// Waits out the failure backoff for `attempt`; `false` on shutdown.
async fn pause(daemon: &Daemon, app: &App, attempt: u32) -> bool {
    let backoff = crate::backoff::Backoff::from(app.config.daemon.failure_backoff);
    tokio::select! {
        _ = tokio::time::sleep(backoff.delay(attempt)) => true,
        _ = daemon.shared.cancel.cancelled() => false,
    }
}
