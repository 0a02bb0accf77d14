//! The admin API of `rekey run` over real HTTP: probes, metrics, status, and
//! the rotate trigger with each answer it can give.

use std::time::Duration;

use rekey::sim::Faults;
use serde_json::Value;

use crate::daemon_proc::{
    RunningDaemon, TOKEN_ENV, history_len, token_line, wait_for_history, write_config_with_daemon,
};
use crate::helpers::{MGMT_ENV, TestEnv, policy};
use crate::observability::{FAMILIES, sample};

const TOKEN: &str = "it-admin-token-7f3a9c0d2b41";
const TARGET: &str = r#"{ store = "files", secret_id = "k", create = true }"#;
const ROTATE_P: &str = "/v1/policies/p/rotate";

/// `rekey run` with one policy `p`, once its first key exists.
async fn started(env: &TestEnv, token: bool) -> RunningDaemon<'_> {
    let daemon_lines = if token { token_line() } else { String::new() };
    write_config_with_daemon(env, &daemon_lines, &policy("p", TARGET, ""));
    let daemon = RunningDaemon::start(env, &[(TOKEN_ENV, TOKEN)]).await;
    wait_for_history(env, "p", 1).await;
    settle().await;
    daemon
}

/// Lets the task of a just-finished rotation leave the daemon's running set.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn key(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path("secrets/k")).unwrap()
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

async fn error_of(response: reqwest::Response) -> String {
    json(response).await["error"]
        .as_str()
        .expect("an error message")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_status_answer_200_on_a_running_daemon() {
    let env = TestEnv::new().await;
    let daemon = started(&env, false).await;

    let mut ready = daemon.get("/readyz").await;
    for _ in 0..100 {
        if ready.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = daemon.get("/readyz").await;
    }
    assert_eq!(ready.status(), 200);
    assert_eq!(json(ready).await["ready"], true);

    let health = daemon.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(json(health).await["live"], true);

    let metrics = daemon.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_prometheus_text(&metrics.text().await.unwrap());
    assert_openmetrics_when_asked(&daemon).await;

    let status = daemon.get("/v1/status").await;
    assert_eq!(status.status(), 200);
    let from_api = json(status).await;
    let cli = env.cmd("status", &["--json"]).await;
    cli.assert_code(0);
    let from_cli: Value = serde_json::from_str(&cli.stdout).unwrap();
    assert_same_status(&from_api, &from_cli);
    assert!(from_api[0]["current_label"].is_string(), "{from_api}");

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

/// `GET /metrics` with the `Accept` header Prometheus 3 sends: OpenMetrics,
/// counters typed without `_total`, ending with `# EOF`.
async fn assert_openmetrics_when_asked(daemon: &RunningDaemon<'_>) {
    let accept = "application/openmetrics-text;version=1.0.0;q=0.6,\
                  text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = (http.get(daemon.url("/metrics")))
        .header("accept", accept)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    assert!(text.contains("# TYPE rekey_rotations counter\n"), "{text}");
    let rotated = r#"rekey_rotations_total{policy="p",provider="sim",result="rotated"} "#;
    assert!(text.contains(rotated), "{text}");
}

/// Equal but for the key's age, which moves between the two reads.
fn assert_same_status(api: &Value, cli: &Value) {
    let (api, cli) = (api.as_array().unwrap(), cli.as_array().unwrap());
    assert_eq!(api.len(), cli.len());
    for (a, c) in api.iter().zip(cli) {
        let age = |v: &Value| v["key_age_seconds"].as_i64().unwrap();
        assert!((age(a) - age(c)).abs() <= 5, "{a} vs {c}");
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("key_age_seconds");
            v
        };
        assert_eq!(strip(a), strip(c));
    }
}

/// Every line is a `# HELP`/`# TYPE` comment or `name{labels} value [ts]`.
fn assert_prometheus_text(body: &str) {
    let is_name = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            match words.first() {
                Some(&"HELP") => assert!(words.get(1).is_some_and(|n| is_name(n)), "{line}"),
                Some(&"TYPE") => {
                    assert!(words.get(1).is_some_and(|n| is_name(n)), "{line}");
                    let kinds = ["counter", "gauge", "histogram", "summary", "untyped"];
                    assert!(words.get(2).is_some_and(|k| kinds.contains(k)), "{line}");
                }
                _ => {}
            }
            continue;
        }
        let (series, rest) = match line.rfind('}') {
            Some(end) => line.split_at(end + 1),
            None => line.split_once(' ').expect("a sample has a value"),
        };
        let name = series.split('{').next().unwrap();
        assert!(is_name(name), "metric name in {line:?}");
        if series.contains('{') {
            assert!(series.ends_with('}'), "labels in {line:?}");
        }
        let value = rest.split_whitespace().next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "value in {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_naming_the_provider_that_does_not_answer() {
    let env = TestEnv::new().await;
    write_config_with_daemon(&env, "", &policy("p", TARGET, ""));
    let wrong = [(MGMT_ENV, "sk-or-v1-not-the-management-key-0000")];
    let daemon = RunningDaemon::start(&env, &wrong).await;

    let mut reason = Value::Null;
    for _ in 0..100 {
        let ready = daemon.get("/readyz").await;
        assert_eq!(ready.status(), 503);
        reason = json(ready).await["reason"].clone();
        if reason.as_str().is_some_and(|r| r.contains("providers.sim")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reason.as_str().unwrap().contains("providers.sim:"),
        "{reason}"
    );
    assert_eq!(
        daemon.get("/healthz").await.status(),
        200,
        "alive, not ready"
    );

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_request_with_the_token_rotates_the_policy_now() {
    let env = TestEnv::new().await;
    let daemon = started(&env, true).await;
    let first = key(&env);

    let by_query = daemon
        .post(&format!("{ROTATE_P}?grace=0s"), Some(TOKEN), None)
        .await;
    assert_eq!(by_query.status(), 202);
    let body = json(by_query).await;
    assert_eq!(
        (&body["policy"], &body["grace"]),
        (&"p".into(), &"0s".into())
    );
    let journal = wait_for_history(&env, "p", 2).await;
    assert_eq!(journal["history"][1]["trigger"], "api");
    assert_eq!(journal["history"][1]["kind"], "rotated");
    let second = key(&env);
    assert_ne!(second, first);
    env.assert_settled(&second, &[]);

    settle().await;
    let by_body = daemon
        .post(ROTATE_P, Some(TOKEN), Some(r#"{"grace": "0s"}"#))
        .await;
    assert_eq!(by_body.status(), 202);
    wait_for_history(&env, "p", 3).await;
    let third = key(&env);
    assert_ne!(third, second);
    env.assert_settled(&third, &[]);

    assert!(
        !daemon.stderr().contains(TOKEN),
        "the admin token is never logged"
    );
    assert_metrics_after_three_rotations(&env, &daemon).await;
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

/// `GET /metrics` of the running daemon, parsed by an independent
/// Prometheus text parser: every family of the contract, with the values
/// three finished rotations of `p` imply.
async fn assert_metrics_after_three_rotations(env: &TestEnv, daemon: &RunningDaemon<'_>) {
    let text = daemon.get("/metrics").await.text().await.unwrap();
    env.capture(text.clone());
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the metrics text parses");
    for family in FAMILIES {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "{family} is exported:\n{text}"
        );
    }
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&scrape, name, labels).unwrap_or_else(|| panic!("{name} {labels:?}:\n{text}"))
    };
    let rotated = [("policy", "p"), ("provider", "sim"), ("result", "rotated")];
    assert_eq!(value("rekey_rotations_total", &rotated), 3.0);
    assert_eq!(
        value(
            "rekey_verify_attempts_total",
            &[("policy", "p"), ("result", "ok")]
        ),
        3.0
    );
    let creates = [("provider", "sim"), ("op", "create"), ("result", "ok")];
    assert_eq!(value("rekey_provider_requests_total", &creates), 3.0);
    assert_eq!(value("rekey_rotation_in_progress", &[("policy", "p")]), 0.0);
    assert_eq!(value("rekey_pending_revokes", &[("policy", "p")]), 0.0);
    assert!(value("rekey_last_success_timestamp_seconds", &[("policy", "p")]) > 0.0);
    assert!(value("rekey_scheduler_last_tick_timestamp_seconds", &[]) > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_gets_401_and_nothing_rotates() {
    let env = TestEnv::new().await;
    let daemon = started(&env, true).await;

    let wrong = daemon.post(ROTATE_P, Some("not-the-token"), None).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let prefix = &TOKEN[..TOKEN.len() - 1];
    assert_eq!(
        daemon.post(ROTATE_P, Some(prefix), None).await.status(),
        401
    );
    let longer = format!("{TOKEN}0");
    assert_eq!(
        daemon.post(ROTATE_P, Some(&longer), None).await.status(),
        401
    );
    let missing = daemon.post(ROTATE_P, None, None).await;
    assert_eq!(missing.status(), 401);
    assert!(error_of(missing).await.contains("bearer token"));

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        history_len(&env, "p"),
        1,
        "no rotation beyond the first key"
    );
    assert_eq!(env.sim.sim.issued_secrets().len(), 1);
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_policy_gets_404_and_a_bad_grace_400_naming_the_field() {
    let env = TestEnv::new().await;
    let daemon = started(&env, true).await;

    let unknown = daemon
        .post("/v1/policies/nope/rotate", Some(TOKEN), None)
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(error_of(unknown).await.contains("\"nope\""));

    let bad_query = daemon
        .post(&format!("{ROTATE_P}?grace=soon"), Some(TOKEN), None)
        .await;
    assert_eq!(bad_query.status(), 400);
    let message = error_of(bad_query).await;
    assert!(
        message.starts_with("grace (query): not a duration"),
        "{message}"
    );
    assert!(
        !message.contains("soon"),
        "the text is not repeated: {message}"
    );

    let past_bound = daemon
        .post(&format!("{ROTATE_P}?grace=300000y"), Some(TOKEN), None)
        .await;
    assert_eq!(past_bound.status(), 400);
    let message = error_of(past_bound).await;
    assert_eq!(message, "grace (query): must be at most 90d");

    let bad_body = daemon
        .post(ROTATE_P, Some(TOKEN), Some(r#"{"grace": "a fortnight"}"#))
        .await;
    assert_eq!(bad_body.status(), 400);
    let message = error_of(bad_body).await;
    assert!(message.starts_with("grace (body):"), "{message}");

    let not_a_string = daemon
        .post(ROTATE_P, Some(TOKEN), Some(r#"{"grace": 30}"#))
        .await;
    assert_eq!(not_a_string.status(), 400);
    assert!(error_of(not_a_string).await.starts_with("body:"));

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(history_len(&env, "p"), 1, "nothing was rotated");
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_the_rotate_endpoint_is_off() {
    let env = TestEnv::new().await;
    let daemon = started(&env, false).await;

    for token in [Some(TOKEN), None] {
        let off = daemon.post(ROTATE_P, token, None).await;
        assert_eq!(off.status(), 403);
        let message = error_of(off).await;
        assert!(
            message.contains("off") && message.contains("daemon.admin_token"),
            "{message}"
        );
    }
    let listening = daemon.wait_for_log("admin API listening").await;
    let endpoint = listening["fields"]["rotate_endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("off"), "{endpoint}");

    assert_eq!(history_len(&env, "p"), 1);
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_request_while_the_policy_is_rotating_gets_409() {
    let env = TestEnv::new().await;
    let daemon = started(&env, true).await;
    env.sim.sim.set_faults(Faults {
        propagation_delay_ms: 3000,
        ..Faults::default()
    });

    let rotate = format!("{ROTATE_P}?grace=0s");
    assert_eq!(daemon.post(&rotate, Some(TOKEN), None).await.status(), 202);
    let again = daemon.post(&rotate, Some(TOKEN), None).await;
    assert_eq!(again.status(), 409);
    assert!(error_of(again).await.contains("already running"));

    wait_for_history(&env, "p", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        history_len(&env, "p"),
        2,
        "the refused request started nothing"
    );
    assert_eq!(env.sim.sim.issued_secrets().len(), 2);
    env.assert_settled(&key(&env), &[]);
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_request_while_another_process_rotates_the_secret_gets_409() {
    let env = TestEnv::new().await;
    let daemon = started(&env, true).await;
    env.sim.sim.set_faults(Faults {
        propagation_delay_ms: 3000,
        ..Faults::default()
    });
    let config = env.config_path();
    let args = [
        "rotate",
        "-c",
        config.to_str().unwrap(),
        "p",
        "--now",
        "--grace",
        "0",
    ];
    let cli = env.command(&args, &[]).spawn().unwrap();
    let in_flight = crate::daemon_proc::wait_until(Duration::from_secs(20), || {
        let j = crate::daemon_proc::journal(&env, "p");
        j["in_flight"].is_object().then_some(())
    })
    .await;
    assert!(in_flight.is_some(), "the CLI rotation began");

    let busy = daemon
        .post(&format!("{ROTATE_P}?grace=0s"), Some(TOKEN), None)
        .await;
    assert_eq!(busy.status(), 409);

    let out = env.keep(cli.wait_with_output().await.unwrap());
    out.assert_code(0);
    let journal = wait_for_history(&env, "p", 2).await;
    assert_eq!(journal["history"][1]["trigger"], "manual");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(history_len(&env, "p"), 2, "only the CLI's rotation ran");
    env.assert_settled(&key(&env), &[]);
    daemon.stop().await;
    env.assert_no_secret_leaked();
}
