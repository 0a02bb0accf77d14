//! A daemon that was down across a cron tick catches up on start; two
//! `run --once` processes started together never rotate one secret twice.

use crate::helpers::{TestEnv, policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_was_down_across_a_cron_tick_catches_up_on_start() {
    let env = TestEnv::new().await;
    let target = r#"{ store = "files", secret_id = "k", create = true }"#;
    env.write_config(
        &policy(
            "p",
            target,
            "schedule = \"0 3 * * *\"\nrevoke = { grace = \"0s\" }",
        )
        .replace("max_age = \"30d\"\n", ""),
    );
    env.cmd("run", &["--once"]).await.assert_code(0);
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert_eq!(
        env.journal("p")["history"].as_array().unwrap().len(),
        1,
        "a fresh key is not rotated again"
    );

    // The daemon was down for two days: the key predates the last 03:00 tick.
    let path = env.path("state/policies/p.json");
    let mut journal = env.journal("p");
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    journal["current"]["created_at"] = serde_json::json!(two_days_ago);
    std::fs::write(&path, serde_json::to_vec(&journal).unwrap()).unwrap();

    env.cmd("run", &["--once"]).await.assert_code(0);
    let journal = env.journal("p");
    let history = journal["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["trigger"], "schedule");
    let key = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.assert_settled(&key, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_run_once_processes_started_together_rotate_a_secret_once() {
    for round in 0..3 {
        let env = TestEnv::new().await;
        env.write_config(&policy(
            "p",
            r#"{ store = "files", secret_id = "k", create = true }"#,
            "",
        ));
        let config = env.config_path();
        let args = ["run", "-c", config.to_str().unwrap(), "--once"];
        let (a, b) = tokio::join!(
            env.command(&args, &[]).output(),
            env.command(&args, &[]).output()
        );
        let (a, b) = (env.keep(a.unwrap()), env.keep(b.unwrap()));
        a.assert_code(0);
        b.assert_code(0);

        assert_eq!(
            env.sim.sim.issued_secrets().len(),
            1,
            "round {round}: exactly one key was created"
        );
        assert_eq!(
            env.journal("p")["history"].as_array().unwrap().len(),
            1,
            "round {round}: one rotation"
        );
        let key = std::fs::read_to_string(env.path("secrets/k")).unwrap();
        env.assert_settled(&key, &[]);
        env.assert_no_secret_leaked();
    }
}
