//! Hot reload of the config: on SIGHUP, or when the file — or a policy
//! set's `members = "file:..."` file — changed and has settled (polled every
//! second: mtime, size and a hash of the content; a change is taken once two
//! polls agree, so a half-written file is not read).
//!
//! A config that fails validation (or whose credentials cannot be read) is
//! refused: the running one stays, every problem is logged with its field
//! path, and the observer counts and alerts it. A valid one is applied as a
//! diff: the daemon switches to an app built from it, so added policies are
//! scheduled, removed ones are not, changed ones follow their new settings —
//! and rotations already running finish with the app they started with.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{self, Config, ConfigError};
use crate::daemon::Daemon;
use crate::names::PolicyName;
use crate::policy::Policy;

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Watches for SIGHUP and file changes until `cancel`; reloads on each.
pub async fn watch(path: PathBuf, daemon: Daemon, cancel: CancellationToken) {
    let mut hangups = crate::signals::hangups();
    let members = || daemon.app().config.member_files.clone();
    let mut debounce = Debounce::new(fingerprint(&path, &members()));
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(config = %path.display(), "reloading the config on SIGHUP or when the file changes");
    loop {
        let cause = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hangups.recv() => "SIGHUP",
            _ = poll.tick() => {
                if !debounce.settled_change(fingerprint_off_workers(&path, members()).await) {
                    continue;
                }
                "file change"
            }
        };
        debounce.attempted(fingerprint_off_workers(&path, members()).await);
        // Outcomes are logged and reported to the observer inside.
        let _ = reload(&path, &daemon, cause).await;
    }
}

/// Loads `path` and applies it, or refuses it and keeps the running config.
pub async fn reload(path: &Path, daemon: &Daemon, cause: &str) -> Result<Diff, String> {
    let old = daemon.app();
    let result = build(path, &old).await;
    let app = match result {
        Ok(app) => app,
        Err(reason) => {
            error!(cause, %reason, "config reload refused; the running config stays");
            old.observer.config_reload(Err(&reason));
            return Err(reason);
        }
    };
    let diff = diff_off_workers(&old.config, &app.config).await;
    for field in &diff.restart_only {
        warn!(
            cause,
            field, "changed in the config; takes effect at the next restart"
        );
    }
    let touched: Vec<PolicyName> = diff.added.iter().chain(&diff.changed).cloned().collect();
    daemon.replace_app(app.clone(), &diff.removed, &touched);
    for name in &diff.removed {
        warn_if_in_flight(&old, name).await;
    }
    daemon.retire_removed(&old, &diff.removed);
    info!(
        cause,
        added = %listed(&diff.added),
        removed = %listed(&diff.removed),
        changed = %listed(&diff.changed),
        policies = app.config.policies.len(),
        "config reloaded"
    );
    for warning in crate::config::warnings(&app.config) {
        warn!("{warning}");
    }
    app.observer.config_reload(Ok(()));
    Ok(diff)
}

/// [`Diff::between`] on the blocking pool: it describes every policy of both
/// configs, which for a fleet is enough CPU to stall `/healthz`.
async fn diff_off_workers(old: &Arc<Config>, new: &Arc<Config>) -> Diff {
    let (old, new) = (old.clone(), new.clone());
    match tokio::task::spawn_blocking(move || Diff::between(&old, &new)).await {
        Ok(diff) => diff,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// [`fingerprint`] on the blocking pool: reading and hashing a fleet's
/// config is file I/O and CPU the async workers should not wait on.
async fn fingerprint_off_workers(path: &Path, members: Vec<PathBuf>) -> Option<Fingerprint> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || fingerprint(&path, &members))
        .await
        .ok()
        .flatten()
}

/// Policy names for a log line: `a,b`, or `-` for none.
fn listed(names: &[PolicyName]) -> String {
    if names.is_empty() {
        return "-".into();
    }
    let names: Vec<&str> = names.iter().map(PolicyName::as_str).collect();
    names.join(",")
}

/// The config at `path`, parsed and validated on the blocking pool: for a
/// fleet that is seconds of CPU, during which the async workers keep
/// answering `/healthz` and running rotations.
async fn load_off_workers(path: &Path) -> Result<Config, ConfigError> {
    let owned = path.to_path_buf();
    match tokio::task::spawn_blocking(move || config::load_file(&owned)).await {
        Ok(loaded) => loaded,
        // Loading never panics on input; a panic here is a bug: pass it on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The new app, or why not: validation problems one per line with their
/// field paths, a refused state move, unreadable credentials.
async fn build(path: &Path, old: &crate::app::App) -> Result<Arc<crate::app::App>, String> {
    let config = load_off_workers(path).await.map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => {
            for p in &problems {
                error!(field = %p.path, problem = %p.message, "invalid config");
            }
            let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            format!("{}: {}", path.display(), lines.join("; "))
        }
        read @ ConfigError::Read { .. } => read.to_string(),
    })?;
    if config.daemon.state != old.config.daemon.state {
        return Err(
            "daemon.state: the journal cannot move while rotations may be running; restart rekey to change it"
                .into(),
        );
    }
    let app = old.rebuild(config).await.map_err(|e| e.to_string())?;
    old.observer.apply_config(&app.config).await?;
    Ok(Arc::new(app))
}

/// A removed policy's rotation in flight stays where it is (its old key is
/// not revoked) until the policy comes back: say so.
async fn warn_if_in_flight(old: &crate::app::App, policy: &PolicyName) {
    let Ok(state) = old.state.load(policy).await else {
        return;
    };
    if let Some(rotation) = state.in_flight {
        warn!(
            %policy,
            rotation = %rotation.id,
            step = rotation.step.as_str(),
            "removed policy has a rotation in flight; it is finished when the policy is back in the config"
        );
    }
}

/// What a reload changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<PolicyName>,
    pub removed: Vec<PolicyName>,
    /// Any setting of the policy, its provider entry or its store entry.
    pub changed: Vec<PolicyName>,
    /// `daemon.*` settings read only at start.
    pub restart_only: Vec<&'static str>,
}

impl Diff {
    pub fn between(old: &Config, new: &Config) -> Diff {
        let names = |c: &Config| -> BTreeSet<PolicyName> {
            c.policies.iter().map(|p| p.name.clone()).collect()
        };
        let (before, after) = (names(old), names(new));
        let (old_by_name, new_by_name) = (by_name(old), by_name(new));
        let changed = after
            .intersection(&before)
            .filter(|name| {
                described(old, old_by_name.get(name.as_str()).copied())
                    != described(new, new_by_name.get(name.as_str()).copied())
            })
            .cloned()
            .collect();
        Diff {
            added: after.difference(&before).cloned().collect(),
            removed: before.difference(&after).cloned().collect(),
            changed,
            restart_only: restart_only(old, new),
        }
    }
}

/// A policy with the provider and store entries it uses, as text: `Policy`
/// has no `PartialEq` (its schedule holds croner's parsed form), and its
/// `Debug` shows every setting (the schedule as written, credentials as
/// references, never values).
fn described(config: &Config, policy: Option<&Policy>) -> Option<String> {
    let policy = policy?;
    Some(format!(
        "{policy:?} {:?} {:?}",
        config.providers.get(&policy.provider),
        config.stores.get(&policy.target.store)
    ))
}

/// Policies by name: a fleet's diff looks each one up once per config.
fn by_name(config: &Config) -> HashMap<&str, &Policy> {
    (config.policies.iter())
        .map(|p| (p.name.as_str(), p))
        .collect()
}

fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.daemon, &new.daemon);
    [
        ("daemon.admin_listen", a.admin_listen != b.admin_listen),
        ("daemon.admin_token", a.admin_token != b.admin_token),
        (
            "daemon.max_concurrent_rotations",
            a.max_concurrent_rotations != b.max_concurrent_rotations,
        ),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect()
}

/// What the watcher knows of the file: enough to see any edit, cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

/// The config file and the members files it names, as one version. `None`
/// while the config cannot be read (e.g. mid-replace); a members file that
/// cannot be read counts as a version of its own (the reload then says why).
pub fn fingerprint(path: &Path, members: &[PathBuf]) -> Option<Fingerprint> {
    let bytes = std::fs::read(path).ok()?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let mut len = bytes.len() as u64;
    for file in members {
        let content = read_at_most(file, crate::fleet::MAX_MEMBERS_FILE_BYTES + 1);
        let changed = std::fs::metadata(file).and_then(|m| m.modified()).ok();
        (file, &content, changed).hash(&mut hasher);
        len += content.as_ref().map_or(0, |c| c.len() as u64);
    }
    Some(Fingerprint {
        modified,
        len,
        hash: hasher.finish(),
    })
}

/// The first `limit` bytes of `path` (a members file past its bound is
/// refused by the reload, not read whole every second).
fn read_at_most(path: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Decides when a changed file has settled: it differs from what was last
/// loaded (or refused), and two polls in a row saw the same thing.
#[derive(Debug)]
pub struct Debounce {
    seen: Option<Fingerprint>,
    candidate: Option<Fingerprint>,
}

impl Debounce {
    pub fn new(loaded: Option<Fingerprint>) -> Self {
        Debounce {
            seen: loaded,
            candidate: None,
        }
    }

    /// One poll: `true` when the file changed and has not moved since the last poll.
    pub fn settled_change(&mut self, now: Option<Fingerprint>) -> bool {
        if now.is_none() || now == self.seen {
            self.candidate = None;
            return false;
        }
        if self.candidate == now {
            return true;
        }
        self.candidate = now;
        false
    }

    /// A reload of this version ran (applied or refused): do not repeat it.
    pub fn attempted(&mut self, version: Option<Fingerprint>) {
        self.seen = version;
        self.candidate = None;
    }
}

#[cfg(test)]
mod tests;
