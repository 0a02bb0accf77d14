//! Getting alerts to the receivers without ever holding up a rotation: a
//! bounded queue (full → the alert is dropped and counted), a worker that
//! runs a few deliveries at a time, and per delivery a timeout and retries
//! with jittered exponential backoff. Webhook URLs often carry a token, so they are
//! secrets: never logged, and stripped from HTTP errors before logging.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{info, warn};

use super::alert::Alert;
use crate::backoff::{Backoff, Jitter};
use crate::config::{NotifierConfig, NotifyEvent, NotifyFormat};
use crate::metrics::Metrics;

/// Pauses between attempts: 500 ms doubling to 30 s, jittered so the
/// deliveries of a burst of alerts to one receiver that was down spread out.
const BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(30)).with_jitter(Jitter::Equal);

/// One configured webhook, its URL resolved.
pub struct Target {
    pub name: String,
    pub format: NotifyFormat,
    pub on: Vec<NotifyEvent>,
    url: SecretString,
    retries: u32,
    client: reqwest::Client,
}

impl Target {
    pub fn new(config: &NotifierConfig, url: SecretString) -> Result<Target, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            // The URL is a credential: never follow it somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("notify.{}: cannot build the HTTP client: {e}", config.name))?;
        Ok(Target {
            name: config.name.clone(),
            format: config.format,
            on: config.on.clone(),
            url,
            retries: config.retries,
            client,
        })
    }

    pub fn wants(&self, kind: NotifyEvent) -> bool {
        self.on.contains(&kind)
    }
}

pub struct Job {
    pub alert: Arc<Alert>,
    pub target: Arc<Target>,
}

/// The sending side: what `notify` calls must never wait on.
pub struct Queue {
    tx: mpsc::Sender<Job>,
    /// Deliveries queued or running; `flush` waits for zero.
    pending: Arc<watch::Sender<usize>>,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// A queue of `capacity` jobs and a worker running at most `concurrency` deliveries.
    pub fn spawn(metrics: Arc<Metrics>, capacity: usize, concurrency: usize) -> Queue {
        let (tx, rx) = mpsc::channel(capacity);
        let pending = Arc::new(watch::Sender::new(0));
        tokio::spawn(worker(rx, pending.clone(), metrics.clone(), concurrency));
        Queue {
            tx,
            pending,
            metrics,
        }
    }

    /// Queues one delivery; when the queue is full it is dropped and counted.
    pub fn push(&self, job: Job) {
        let name = job.target.name.clone();
        self.pending.send_modify(|n| *n += 1);
        if self.tx.try_send(job).is_err() {
            self.pending.send_modify(|n| *n -= 1);
            self.metrics.notification(&name, "dropped");
            warn!(notifier = %name, "notification queue full; alert dropped");
        }
    }

    /// Waits until every queued delivery has finished, or `deadline` passed.
    /// `true` when nothing is left.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let mut rx = self.pending.subscribe();
        tokio::time::timeout(deadline, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Job>,
    pending: Arc<watch::Sender<usize>>,
    metrics: Arc<Metrics>,
    concurrency: usize,
) {
    let limit = Arc::new(Semaphore::new(concurrency));
    loop {
        // Take a slot before the next job, so jobs wait in the bounded
        // queue (and overflow there) rather than piling up as tasks.
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Some(job) = rx.recv().await else {
            return;
        };
        let (pending, metrics) = (pending.clone(), metrics.clone());
        tokio::spawn(async move {
            let sent = deliver(&job).await;
            let result = if sent { "sent" } else { "failed" };
            metrics.notification(&job.target.name, result);
            pending.send_modify(|n| *n -= 1);
            drop(permit);
        });
    }
}

/// Posts the alert, retrying transport errors, 408, 429 and 5xx. `true` when a receiver took it.
async fn deliver(job: &Job) -> bool {
    let target = &job.target;
    let body = job.alert.body(target.format);
    for attempt in 1..=target.retries + 1 {
        let sent = target
            .client
            .post(target.url.expose_secret())
            .json(&body)
            .send()
            .await;
        let retryable = match sent {
            Ok(response) if response.status().is_success() => {
                info!(notifier = %target.name, event = job.alert.event, "notification sent");
                return true;
            }
            Ok(response) => {
                let status = response.status();
                warn!(notifier = %target.name, attempt, status = status.as_u16(), "webhook refused the notification");
                status.is_server_error() || matches!(status.as_u16(), 408 | 429)
            }
            Err(e) => {
                // reqwest errors quote the URL, which may hold a token.
                warn!(notifier = %target.name, attempt, error = %e.without_url(), "webhook unreachable");
                true
            }
        };
        if !retryable || attempt > target.retries {
            break;
        }
        tokio::time::sleep(BACKOFF.delay(attempt - 1)).await;
    }
    warn!(notifier = %target.name, event = job.alert.event, "notification failed");
    false
}
