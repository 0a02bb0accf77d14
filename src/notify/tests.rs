//! Delivery against receivers on 127.0.0.1: retries on 5xx, none on 4xx,
//! and a full queue drops (and counts) instead of waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use secrecy::SecretString;
use tokio::net::TcpListener;

use super::deliver::{Job, Queue, Target};
use super::*;
use crate::config::{NotifierConfig, NotifyFormat};

/// A receiver answering each POST with the next status of `script` (then 200).
async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let (seen, script) = (seen.clone(), script.clone());
            async move {
                seen.lock().unwrap().push(body);
                let mut script = script.lock().unwrap();
                let status = if script.is_empty() {
                    200
                } else {
                    script.remove(0)
                };
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn target(url: &str, retries: u32) -> Arc<Target> {
    let config = NotifierConfig {
        name: "hook".into(),
        format: NotifyFormat::Json,
        url: crate::config::SecretRef::Env("UNUSED".into()),
        timeout: Duration::from_secs(2),
        retries,
        on: vec![NotifyEvent::Failure],
    };
    Arc::new(Target::new(&config, SecretString::from(url.to_string())).unwrap())
}

fn job(target: &Arc<Target>) -> Job {
    let alert = Alert::config_rejected("bad", Utc::now());
    Job {
        alert: Arc::new(alert),
        target: target.clone(),
    }
}

fn count(metrics: &Metrics, result: &str) -> String {
    let series = format!("rekey_notifications_total{{notifier=\"hook\",result=\"{result}\"}} ");
    let text = metrics.render();
    let line = text.lines().find(|l| l.starts_with(&series));
    line.map(|l| l[series.len()..].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_5xx_is_retried_until_the_receiver_takes_the_alert() {
    let (url, got) = receiver(vec![503, 500]).await;
    let metrics = Arc::new(Metrics::new());
    let queue = Queue::spawn(metrics.clone(), 8, 2);
    queue.push(job(&target(&url, 3)));
    assert!(queue.flush(Duration::from_secs(20)).await);
    assert_eq!(got.lock().unwrap().len(), 3, "two refusals, one success");
    assert_eq!(count(&metrics, "sent"), "1");
    assert_eq!(count(&metrics, "failed"), "");
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_counts_as_failed() {
    let (url, got) = receiver(vec![400]).await;
    let metrics = Arc::new(Metrics::new());
    let queue = Queue::spawn(metrics.clone(), 8, 2);
    queue.push(job(&target(&url, 3)));
    assert!(queue.flush(Duration::from_secs(20)).await);
    assert_eq!(got.lock().unwrap().len(), 1, "a bad request stays bad");
    assert_eq!(count(&metrics, "failed"), "1");
}

#[tokio::test]
async fn a_full_queue_drops_the_alert_instead_of_waiting() {
    // Accepts connections and never answers: every delivery hangs until its timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let metrics = Arc::new(Metrics::new());
    let queue = Queue::spawn(metrics.clone(), 1, 1);
    let hook = target(&url, 0);

    queue.push(job(&hook));
    // The worker takes the first job and holds the only delivery slot.
    let (_held, _) = tokio::time::timeout(Duration::from_secs(5), silent.accept())
        .await
        .expect("the first delivery started")
        .unwrap();
    queue.push(job(&hook)); // waits in the queue
    queue.push(job(&hook)); // no room: dropped at once
    assert_eq!(count(&metrics, "dropped"), "1");
    assert!(
        !queue.flush(Duration::from_millis(200)).await,
        "deliveries are still running"
    );
}
