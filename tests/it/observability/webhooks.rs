//! Webhooks as receivers started by the tests see them: the failure alert in
//! both body shapes, routing by policy and `on` (and after a reload), a
//! receiver that is down or hangs never stalling a rotation, the overdue
//! alert once per key, and a refused reload alerted and audited.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rekey::app::App;
use rekey::rotation::{Request, RunOutcome, Until, next_due, run_policy};
use rekey::state::{PolicyState, Trigger};
use tokio::net::TcpListener;

use super::{
    Receiver, audit_records, closed_port_url, in_process, notifier, sample, scrape, with_audit_log,
};
use crate::helpers::{MGMT_ENV, TestEnv, policy};

const FRESH: &str = r#"{ store = "files", secret_id = "k", create = true }"#;

async fn rotate_now(app: &App) -> RunOutcome {
    let policy = app.config.policy("p").unwrap().clone();
    let request = Request::Manual {
        grace: Some(Duration::ZERO),
        trigger: Trigger::Manual,
    };
    let outcome = run_policy(&app.ctx(&policy), &policy, request, Until::Revoked).await;
    outcome.expect("the rotation ran")
}

#[tokio::test]
async fn a_failed_rotation_alerts_json_and_slack_receivers_with_policy_step_and_error_kind() {
    let env = TestEnv::new().await;
    let (json, slack) = (Receiver::start().await, Receiver::start().await);
    let mut config = policy("p", FRESH, r#"notify = ["ops-json", "ops-slack"]"#);
    config.push_str(&notifier(
        &env,
        "ops-json",
        "json",
        &json.url,
        r#"on = ["failure"]"#,
    ));
    config.push_str(&notifier(
        &env,
        "ops-slack",
        "slack",
        &slack.url,
        r#"on = ["failure"]"#,
    ));
    env.write_config(&config);
    let wrong_key = "sk-or-v1-wrong-management-key-0123456789abcdef";

    let config_path = env.config_path();
    let args = ["rotate", "-c", config_path.to_str().unwrap(), "p", "--now"];
    env.rekey_env(&args, &[(MGMT_ENV, wrong_key)])
        .await
        .assert_code(1);

    let bodies = json.bodies(&env);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let alert = &bodies[0];
    assert_eq!(alert["event"], "failure");
    assert_eq!(alert["policy"], "p");
    assert_eq!(alert["provider"], "sim");
    assert_eq!(alert["step"], "create");
    assert_eq!(alert["outcome"], "failed");
    assert_eq!(alert["error_kind"], "unauthorized");
    assert_eq!(alert["trigger"], "manual");
    assert!(
        alert["error"]
            .as_str()
            .unwrap()
            .contains("management key rejected")
    );
    let texts = slack.bodies(&env);
    assert_eq!(texts.len(), 1);
    let object = texts[0].as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["text"], "Slack's shape");
    let text = object["text"].as_str().unwrap();
    assert!(
        text.contains("rotation of p failed at step create (unauthorized)"),
        "{text}"
    );
    for body in bodies.iter().chain(&texts) {
        assert!(!body.to_string().contains(wrong_key), "no key in an alert");
    }
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn alerts_follow_the_policys_notifiers_and_their_events_and_a_reload_reroutes_them() {
    let env = TestEnv::new().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let hooks = |p_notify: &str| {
        let mut config = policy("p", FRESH, &format!("notify = {p_notify}"));
        config.push_str(&notifier(
            &env,
            "a",
            "json",
            &a.url,
            r#"on = ["success", "rollback"]"#,
        ));
        config.push_str(&notifier(&env, "b", "json", &b.url, r#"on = ["success"]"#));
        config
    };
    env.write_config(&hooks(r#"["a"]"#));
    let app = in_process(&env).await;

    assert!(matches!(rotate_now(&app).await, RunOutcome::Rotated { .. }));
    assert!(app.observer.flush(Duration::from_secs(20)).await);
    assert_eq!(a.events(&env), ["success"], "p names a");
    assert!(b.events(&env).is_empty(), "p does not name b");

    env.write_config(&hooks(r#"["b"]"#));
    let reloaded = super::in_process_config(&env);
    app.observer.apply_config(&reloaded).await.unwrap();
    assert!(matches!(rotate_now(&app).await, RunOutcome::Rotated { .. }));
    assert!(app.observer.flush(Duration::from_secs(20)).await);
    assert_eq!(a.events(&env), ["success"], "a is no longer p's");
    assert_eq!(b.events(&env), ["success"], "the reload routed p to b");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_receiver_that_is_down_or_hangs_does_not_stall_rotations() {
    let env = TestEnv::new().await;
    let down = closed_port_url().await;
    // Accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}/hook", hung.local_addr().unwrap());
    let mut config = policy("p", FRESH, r#"notify = ["down", "hung"]"#);
    let on = "on = [\"success\"]";
    config.push_str(&notifier(
        &env,
        "down",
        "json",
        &down,
        &format!("{on}\nretries = 2"),
    ));
    let hang = format!("{on}\nretries = 0\ntimeout = \"3s\"");
    config.push_str(&notifier(&env, "hung", "json", &hung_url, &hang));
    env.write_config(&config);
    let app = in_process(&env).await;

    let outcome = rotate_now(&app).await;

    assert!(matches!(outcome, RunOutcome::Rotated { .. }), "{outcome:?}");
    let key = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.assert_settled(&key, &[]);
    let count = |app: &App, name, result| {
        let labels = [("notifier", name), ("result", result)];
        sample(&scrape(&env, app), "rekey_notifications_total", &labels)
    };
    assert_eq!(
        (count(&app, "hung", "sent"), count(&app, "hung", "failed")),
        (Some(0.0), Some(0.0)),
        "the rotation finished while the hung delivery was still waiting"
    );
    assert!(app.observer.flush(Duration::from_secs(30)).await);
    assert_eq!(count(&app, "down", "failed"), Some(1.0));
    assert_eq!(count(&app, "hung", "failed"), Some(1.0));
    assert_eq!(count(&app, "down", "sent"), Some(0.0));
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_key_past_max_age_alerts_once_per_key() {
    let env = TestEnv::new().await;
    let hook = Receiver::start().await;
    let mut config = policy("p", FRESH, r#"notify = ["hook"]"#);
    config.push_str(&notifier(
        &env,
        "hook",
        "json",
        &hook.url,
        r#"on = ["overdue"]"#,
    ));
    env.write_config(&config);
    let app = in_process(&env).await;
    let policy = app.config.policy("p").unwrap().clone();
    let snapshot = |app: &App, state: &PolicyState, at: DateTime<Utc>| {
        app.observer
            .policy_snapshot(&policy, state, next_due(&policy, state), at);
    };

    rotate_now(&app).await;
    let first = app.state.load(&"p".parse().unwrap()).await.unwrap();
    let past_max_age = first.current.as_ref().unwrap().created_at + TimeDelta::days(31);
    snapshot(&app, &first, Utc::now());
    for hour in 0..3 {
        snapshot(&app, &first, past_max_age + TimeDelta::hours(hour));
    }
    assert!(app.observer.flush(Duration::from_secs(20)).await);
    let alerts = hook.bodies(&env);
    assert_eq!(alerts.len(), 1, "one alert for the first key: {alerts:?}");
    assert_eq!(alerts[0]["event"], "overdue");
    assert_eq!(alerts[0]["policy"], "p");
    assert_eq!(
        alerts[0]["old_key"]["id"],
        first.current.as_ref().unwrap().id.clone().unwrap().as_str()
    );
    assert_eq!(alerts[0]["max_age_seconds"], 30 * 86_400);

    rotate_now(&app).await;
    let second = app.state.load(&"p".parse().unwrap()).await.unwrap();
    let past_max_age = second.current.as_ref().unwrap().created_at + TimeDelta::days(31);
    snapshot(&app, &second, past_max_age);
    snapshot(&app, &second, past_max_age);
    assert!(app.observer.flush(Duration::from_secs(20)).await);
    assert_eq!(
        hook.events(&env),
        ["overdue", "overdue"],
        "one more for the new key"
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_refused_reload_is_counted_audited_and_alerted_to_its_subscribers() {
    let env = TestEnv::new().await;
    let (ops, quiet) = (Receiver::start().await, Receiver::start().await);
    let mut config = policy("p", FRESH, "");
    config.push_str(&notifier(
        &env,
        "ops",
        "slack",
        &ops.url,
        r#"on = ["config_rejected"]"#,
    ));
    config.push_str(&notifier(
        &env,
        "quiet",
        "json",
        &quiet.url,
        r#"on = ["failure"]"#,
    ));
    env.write_config(&config);
    let log = env.path("audit.jsonl");
    with_audit_log(&env, &log);
    let app = in_process(&env).await;

    let reason = "rekey.toml: policy[0].schedule: \"61 * * * *\" is not a valid cron expression";
    app.observer.config_reload(Err(reason));
    assert!(app.observer.flush(Duration::from_secs(20)).await);

    let texts = ops.bodies(&env);
    assert_eq!(
        texts.len(),
        1,
        "sent to the subscriber though no policy names it"
    );
    let text = texts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("config reload refused") && text.contains(reason),
        "{text}"
    );
    assert!(
        quiet.bodies(&env).is_empty(),
        "not subscribed to config_rejected"
    );
    let records = audit_records(&env, &log);
    assert_eq!(records.len(), 1);
    assert!(records[0]["policy"].is_null());
    assert_eq!(records[0]["step"], "config_reload");
    assert_eq!(records[0]["outcome"], "refused");
    assert_eq!(records[0]["error"], reason);
    let refused = [("result", "refused")];
    assert_eq!(
        sample(&scrape(&env, &app), "rekey_config_reloads_total", &refused),
        Some(1.0)
    );
    env.assert_no_secret_leaked();
}
