//! `[notify.<name>]` webhooks (generic JSON or Slack-compatible), sent from a
//! background task with a timeout and retries, so a receiver that is down
//! never stalls a rotation. This module routes: a policy's alerts go to the
//! notifiers its `notify` list names, each only for the events in its `on`
//! list; `config_rejected` goes to every notifier that lists it. A reload
//! swaps the notifiers and routes (`apply`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, NotifyEvent};
use crate::events::{Event, KeyRef};
use crate::metrics::Metrics;
use crate::names::PolicyName;
use crate::policy::Policy;
use crate::state::KeyRecord;

mod alert;
mod deliver;
#[cfg(test)]
mod tests;

pub use alert::{Alert, REVOKE_FAILING_AFTER, classify};
use deliver::{Job, Queue, Target};

/// Alerts waiting for a delivery slot; more are dropped (and counted).
const QUEUE_CAPACITY: usize = 256;
/// Deliveries in flight at once, so one slow receiver does not hold up the others.
const CONCURRENT_DELIVERIES: usize = 4;

pub struct Notifier {
    routes: RwLock<Arc<Routes>>,
    queue: Queue,
    metrics: Arc<Metrics>,
    /// Per policy, the key an `overdue` alert was last sent for (once per key).
    overdue_sent: Mutex<HashMap<PolicyName, String>>,
    /// Policies whose unreadable journal was alerted (once until it reads again).
    corrupt_sent: Mutex<HashSet<PolicyName>>,
}

#[derive(Default)]
struct Routes {
    targets: BTreeMap<String, Arc<Target>>,
    /// Policy name → the notifiers its `notify` list names.
    by_policy: HashMap<String, Vec<String>>,
}

impl Routes {
    fn for_policy(&self, policy: &str, kind: NotifyEvent) -> Vec<Arc<Target>> {
        let names = self.by_policy.get(policy).map(Vec::as_slice).unwrap_or(&[]);
        (names.iter())
            .filter_map(|n| self.targets.get(n))
            .filter(|t| t.wants(kind))
            .cloned()
            .collect()
    }

    fn for_everyone(&self, kind: NotifyEvent) -> Vec<Arc<Target>> {
        (self.targets.values())
            .filter(|t| t.wants(kind))
            .cloned()
            .collect()
    }
}

impl Notifier {
    /// Resolves every webhook URL and starts the delivery task. Needs a Tokio runtime.
    pub async fn build(config: &Config, metrics: Arc<Metrics>) -> Result<Self, String> {
        Self::with_queue(config, metrics, QUEUE_CAPACITY, CONCURRENT_DELIVERIES).await
    }

    async fn with_queue(
        config: &Config,
        metrics: Arc<Metrics>,
        capacity: usize,
        concurrency: usize,
    ) -> Result<Self, String> {
        let routes = routes(config, &metrics).await?;
        Ok(Notifier {
            routes: RwLock::new(Arc::new(routes)),
            queue: Queue::spawn(metrics.clone(), capacity, concurrency),
            metrics,
            overdue_sent: Mutex::new(HashMap::new()),
            corrupt_sent: Mutex::new(HashSet::new()),
        })
    }

    /// A reload: new notifiers and routes from now on. Alerts already queued
    /// still go where they were routed. On error the old routes stay.
    pub async fn apply(&self, config: &Config) -> Result<(), String> {
        let routes = routes(config, &self.metrics).await?;
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
        Ok(())
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A state change: queued for the policy's notifiers if it needs a human.
    pub fn notify(&self, event: &Event) {
        let Some(kind) = classify(event) else {
            return;
        };
        let targets = self.routes().for_policy(&event.policy, kind);
        self.send(Alert::from_event(kind, event), targets);
    }

    /// The policy's current key is past `max_age`: alerts once per key.
    pub fn overdue(&self, policy: &Policy, key: &KeyRecord, max_age: Duration, now: DateTime<Utc>) {
        let identity = format!("{:?}|{}|{}", key.id, key.label, key.created_at);
        {
            let mut sent = self
                .overdue_sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if sent.get(&policy.name) == Some(&identity) {
                return;
            }
            sent.insert(policy.name.clone(), identity);
        }
        let age = (now - key.created_at).to_std().unwrap_or_default();
        let targets = self.routes().for_policy(&policy.name, NotifyEvent::Overdue);
        let alert = Alert::overdue(
            &policy.name,
            &policy.provider,
            KeyRef::from(key),
            age,
            max_age,
            now,
        );
        self.send(alert, targets);
    }

    /// The policy's journal cannot be read (`ok = false`; alerts once until it
    /// reads again) or reads again (`ok = true`).
    pub fn journal_health(&self, policy: &Policy, error: Option<&str>, now: DateTime<Utc>) {
        let first = {
            let mut sent = self
                .corrupt_sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match error {
                None => {
                    sent.remove(&policy.name);
                    false
                }
                Some(_) => sent.insert(policy.name.clone()),
            }
        };
        let Some(error) = error.filter(|_| first) else {
            return;
        };
        let targets = self
            .routes()
            .for_policy(&policy.name, NotifyEvent::JournalCorrupt);
        let alert = Alert::journal_corrupt(&policy.name, &policy.provider, error, now);
        self.send(alert, targets);
    }

    /// A removed policy: a key of it that comes back overdue alerts again.
    pub fn forget_policy(&self, policy: &str) {
        let mut sent = self
            .overdue_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sent.remove(policy);
    }

    /// A refused reload: to every notifier subscribed to `config_rejected`.
    pub fn config_rejected(&self, reason: &str, now: DateTime<Utc>) {
        let targets = self.routes().for_everyone(NotifyEvent::ConfigRejected);
        self.send(Alert::config_rejected(reason, now), targets);
    }

    fn send(&self, alert: Alert, targets: Vec<Arc<Target>>) {
        let alert = Arc::new(alert);
        for target in targets {
            let alert = alert.clone();
            self.queue.push(Job { alert, target });
        }
    }

    /// Waits up to `deadline` for queued alerts to be delivered (or given
    /// up on); `true` when none is left. Called before a process exits.
    pub async fn flush(&self, deadline: Duration) -> bool {
        self.queue.flush(deadline).await
    }
}

async fn routes(config: &Config, metrics: &Metrics) -> Result<Routes, String> {
    let mut targets = BTreeMap::new();
    for (name, entry) in &config.notify {
        let url = crate::config::secret_ref::resolve(&entry.url)
            .await
            .map_err(|message| format!("notify.{name}.url: {message}"))?;
        targets.insert(name.clone(), Arc::new(Target::new(entry, url)?));
        metrics.notifier_configured(name);
    }
    let by_policy = (config.policies.iter())
        .map(|p| (p.name.to_string(), p.notify.clone()))
        .collect();
    Ok(Routes { targets, by_policy })
}
