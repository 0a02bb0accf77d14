//! Hot reload of a running `rekey run` (same process throughout): a broken
//! config is refused on SIGHUP and on a file change, and the old one keeps
//! working; a valid one adds and removes policies.

use std::time::Duration;

use serde_json::Value;

use crate::daemon_proc::{
    RunningDaemon, TOKEN_ENV, history_len, journal, token_line, wait_for_history, wait_until,
    write_config_with_daemon,
};
use crate::helpers::{TestEnv, policy};

const TOKEN: &str = "it-reload-token-51c0e2";
const WATCHING: &str = "reloading the config on SIGHUP or when the file changes";

fn p() -> String {
    policy(
        "p",
        r#"{ store = "files", secret_id = "p", create = true }"#,
        "",
    )
}

fn q(extra: &str) -> String {
    policy(
        "q",
        r#"{ store = "files", secret_id = "q", create = true }"#,
        extra,
    )
}

/// `q` with a cron minute that does not exist: refused at `policy[1].schedule`.
fn broken_q() -> String {
    q("schedule = \"61 * * * *\"")
}

fn write(env: &TestEnv, policies: &[String]) {
    write_config_with_daemon(env, &token_line(), &policies.concat());
}

/// The daemon with `policies`, once `p` has its first key and the watcher runs.
async fn started<'a>(env: &'a TestEnv, policies: &[String]) -> RunningDaemon<'a> {
    write(env, policies);
    let daemon = RunningDaemon::start(env, &[(TOKEN_ENV, TOKEN)]).await;
    wait_for_history(env, "p", 1).await;
    daemon.wait_for_log(WATCHING).await;
    daemon
}

async fn policies_in_status(daemon: &RunningDaemon<'_>) -> Vec<String> {
    let status: Value = daemon.get("/v1/status").await.json().await.unwrap();
    let rows = status.as_array().unwrap().iter();
    rows.map(|r| r["policy"].as_str().unwrap().to_string())
        .collect()
}

fn field_of(line: &Value, name: &str) -> String {
    line["fields"][name]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_sent_with_sighup_is_refused_and_the_old_policies_keep_rotating() {
    let env = TestEnv::new().await;
    let mut daemon = started(&env, &[p()]).await;

    write(&env, &[p(), broken_q()]);
    daemon.signal(libc::SIGHUP);

    let refused = daemon
        .wait_for_log_where("config reload refused; the running config stays", |l| {
            field_of(l, "cause") == "SIGHUP"
        })
        .await;
    assert!(
        field_of(&refused, "reason").contains("policy[1].schedule"),
        "{refused}"
    );
    daemon
        .wait_for_log_where("invalid config", |l| {
            field_of(l, "field") == "policy[1].schedule"
        })
        .await;
    assert!(daemon.is_alive(), "the same process keeps running");
    assert_eq!(daemon.get("/healthz").await.status(), 200);
    assert_eq!(policies_in_status(&daemon).await, ["p"]);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotate = daemon
        .post("/v1/policies/p/rotate?grace=0s", Some(TOKEN), None)
        .await;
    assert_eq!(rotate.status(), 202);
    wait_for_history(&env, "p", 2).await;
    let key = std::fs::read_to_string(env.path("secrets/p")).unwrap();
    env.assert_settled(&key, &[]);
    assert_eq!(journal(&env, "q"), Value::Null, "q was never scheduled");

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_change_is_refused_and_a_fixed_one_adds_a_policy_that_gets_its_first_key() {
    let env = TestEnv::new().await;
    let mut daemon = started(&env, &[p()]).await;

    write(&env, &[p(), broken_q()]);
    let refused = daemon
        .wait_for_log_where("config reload refused; the running config stays", |l| {
            field_of(l, "cause") == "file change"
        })
        .await;
    assert!(
        field_of(&refused, "reason").contains("policy[1].schedule"),
        "{refused}"
    );
    assert!(daemon.is_alive());
    assert_eq!(policies_in_status(&daemon).await, ["p"]);

    write(&env, &[p(), q("")]);
    let reloaded = daemon.wait_for_log("config reloaded").await;
    assert_eq!(field_of(&reloaded, "added"), "q");
    assert_eq!(field_of(&reloaded, "cause"), "file change");
    let journal = wait_for_history(&env, "q", 1).await;
    assert_eq!(
        journal["history"][0]["trigger"], "reload",
        "the rotation the reload caused says so"
    );
    let key = std::fs::read_to_string(env.path("secrets/q")).unwrap();
    assert!(env.works(&key), "q's first key works");
    assert!(daemon.is_alive(), "no restart");
    assert_eq!(policies_in_status(&daemon).await, ["p", "q"]);

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_removes_a_policy_stops_scheduling_it_without_a_restart() {
    let env = TestEnv::new().await;
    let every_2s = "schedule = \"*/2 * * * * *\"\nrevoke = { grace = \"0s\" }";
    let mut daemon = started(&env, &[p(), q(every_2s)]).await;
    wait_for_history(&env, "q", 3).await;

    write(&env, &[p()]);
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon.wait_for_log("config reloaded").await;
    assert_eq!(field_of(&reloaded, "removed"), "q");

    // A rotation of q under way when the reload came finishes.
    let idle = wait_until(Duration::from_secs(20), || {
        journal(&env, "q")["in_flight"].is_null().then_some(())
    })
    .await;
    assert!(idle.is_some(), "q's last rotation finished");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rotations = history_len(&env, "q");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(history_len(&env, "q"), rotations, "q is no longer rotated");
    assert!(daemon.is_alive(), "no restart");
    assert_eq!(policies_in_status(&daemon).await, ["p"]);
    let key = std::fs::read_to_string(env.path("secrets/q")).unwrap();
    env.assert_settled(
        &key,
        &[&std::fs::read_to_string(env.path("secrets/p")).unwrap()],
    );

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_removed_by_a_reload_loses_its_metric_series() {
    let env = TestEnv::new().await;
    let daemon = started(&env, &[p(), q("")]).await;
    wait_for_history(&env, "q", 1).await;
    // q's gauges come with the daemon's snapshot after its first run.
    let q_key_age = r#"rekey_key_age_seconds{policy="q"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !scrape(&daemon).await.contains(q_key_age) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "q's series before the reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    write(&env, &[p()]);
    daemon.signal(libc::SIGHUP);
    let reloaded = daemon.wait_for_log("config reloaded").await;
    assert_eq!(field_of(&reloaded, "removed"), "q");

    let text = scrape(&daemon).await;
    env.capture(text.clone());
    assert!(!text.contains(r#"policy="q""#), "{text}");
    assert!(
        text.contains(r#"rekey_key_age_seconds{policy="p"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rekey_rotations_total{policy="p",provider="sim",result="rotated"}"#),
        "{text}"
    );
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

async fn scrape(daemon: &RunningDaemon<'_>) -> String {
    daemon.get("/metrics").await.text().await.unwrap()
}
