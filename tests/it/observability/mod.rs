//! Issue 4's operating surface, seen from outside: the audit log the binary
//! writes, the metrics text a scraper parses, and what webhook receivers
//! started by the tests get. Where a test needs the `Observer` itself
//! (snapshots, reloads, the metrics registry) it builds the daemon in-process
//! with `App::build`, exactly as `rekey run` does.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rekey::app::App;
use rekey::config::Config;
use tokio::net::TcpListener;

use crate::helpers::{MGMT_ENV, TestEnv};

mod audit;
mod metrics;

pub use metrics::FAMILIES;
mod webhooks;

/// Adds `daemon.audit_log = path` to the config the env wrote.
pub fn with_audit_log(env: &TestEnv, path: &Path) {
    edit_config(
        env,
        "[daemon]\n",
        &format!("[daemon]\naudit_log = \"{}\"\n", path.display()),
    );
}

fn edit_config(env: &TestEnv, from: &str, to: &str) {
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(text.contains(from), "the config has {from:?}");
    std::fs::write(env.config_path(), text.replacen(from, to, 1)).unwrap();
}

/// The audit log's records, one JSON object per line; the text is kept
/// for the env's leak check.
pub fn audit_records(env: &TestEnv, path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("audit log exists");
    env.capture(text.clone());
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each audit line is one JSON object"))
        .collect()
}

/// The env's config file as `rekey run` loads it, with the management key
/// read from a file (this process's environment is shared by parallel tests).
pub fn in_process_config(env: &TestEnv) -> Config {
    let key_file = env.path("management.key");
    std::fs::write(&key_file, &env.mgmt_key).unwrap();
    let reference = format!("file:{}", key_file.display());
    edit_config(env, &format!("env:{MGMT_ENV}"), &reference);
    rekey::config::load::load_file_with_env(&env.config_path(), Vec::new())
        .expect("config is valid")
}

/// The daemon built in-process from the env's config file, as `rekey run` builds it.
pub async fn in_process(env: &TestEnv) -> Arc<App> {
    let config = in_process_config(env);
    Arc::new(App::build(config).await.expect("app builds"))
}

/// A `[notify.<name>]` table whose URL is read from a file (a secret reference).
pub fn notifier(env: &TestEnv, name: &str, format: &str, url: &str, extra: &str) -> String {
    let url_file = env.path(&format!("{name}.url"));
    std::fs::write(&url_file, url).unwrap();
    format!(
        "\n[notify.{name}]\nformat = \"{format}\"\nurl = \"file:{}\"\n{extra}\n",
        url_file.display()
    )
}

/// A webhook receiver on 127.0.0.1 that keeps every JSON body it is sent.
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let kept = kept.clone();
                async move { kept.lock().unwrap().push(body) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, bodies }
    }

    /// Everything received so far; also kept for the env's leak check.
    pub fn bodies(&self, env: &TestEnv) -> Vec<serde_json::Value> {
        let bodies = self.bodies.lock().unwrap().clone();
        for body in &bodies {
            env.capture(body.to_string());
        }
        bodies
    }

    /// The `event` field of every body received.
    pub fn events(&self, env: &TestEnv) -> Vec<String> {
        (self.bodies(env).iter())
            .map(|b| b["event"].as_str().unwrap_or("<slack>").to_string())
            .collect()
    }
}

/// A loopback address nothing listens on: a receiver that is down.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// The value of one sample of the Prometheus text, found by metric name and labels.
pub fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    match &found.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(*v),
        prometheus_parse::Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count),
        prometheus_parse::Value::Summary(_) => None,
    }
}

/// `Metrics::render()` parsed by an independent Prometheus text-format parser.
pub fn scrape(env: &TestEnv, app: &App) -> prometheus_parse::Scrape {
    let text = app.observer.metrics.render();
    env.capture(text.clone());
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("the metrics text parses")
}
