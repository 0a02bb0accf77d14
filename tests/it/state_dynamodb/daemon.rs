//! The daemon's paths on a table, as on files: `run --once` makes a first
//! key, the admin API's rotate is accepted and lands, a reload
//! that adds a policy rotates it, `status` reads it all back — and no key
//! reaches the table.

use super::opening::on_dynamodb_with;
use super::*;
use crate::daemon_proc::{RunningDaemon, TOKEN_ENV, token_line, wait_until};

const TOKEN: &str = "it-admin-token-on-a-table";

/// Every item of `table`, as text, for the leak check.
async fn table_text(table: &str) -> String {
    let scan = (client().scan()).table_name(table).send().await.unwrap();
    format!("{:?}", scan.items())
}

#[tokio::test]
async fn run_once_the_admin_api_and_a_reload_work_on_a_table() {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/a"), &old).unwrap();
    let target = |file: &str| {
        format!(r#"{{ store = "files", secret_id = "{file}", format = "raw", create = true }}"#)
    };
    let policies = policy("a", &target("a"), "revoke = { grace = \"0s\" }")
        + &policy("b", &target("b"), "revoke = { grace = \"0s\" }");
    env.write_config(&policies);
    let table = on_dynamodb_with(&env, true, "10s");

    // run --once: `b` has no key yet, so its first key is due; `a` holds an
    // adopted key that is not due.
    env.cmd("run", &["--once"]).await.assert_code(0);
    let b_first = std::fs::read_to_string(env.path("secrets/b")).unwrap();
    assert!(!b_first.trim().is_empty(), "run --once made b's first key");
    let after_once = std::fs::read_to_string(env.path("secrets/a")).unwrap();
    assert_eq!(after_once.trim(), old, "a was not due");

    // The daemon with the admin API on the same table.
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replacen("[daemon]\n", &format!("[daemon]\n{}\n", token_line()), 1);
    std::fs::write(env.config_path(), &text).unwrap();
    let daemon = RunningDaemon::start(&env, &[(TOKEN_ENV, TOKEN)]).await;
    let answer = daemon
        .post("/v1/policies/a/rotate?grace=0s", Some(TOKEN), None)
        .await;
    assert_eq!(answer.status(), 202, "{:?}", answer.text().await);
    let rotated = eventually_changed(&env, "secrets/a", &after_once).await;
    assert!(
        rotated,
        "the API's rotation landed; logs:\n{}",
        daemon.stderr()
    );

    // A reload that adds a policy: its first key made by the running daemon.
    let text = std::fs::read_to_string(env.config_path()).unwrap()
        + &policy("c", &target("c"), "revoke = { grace = \"0s\" }");
    std::fs::write(env.config_path(), text).unwrap();
    daemon.signal(libc::SIGHUP);
    let c = eventually_changed(&env, "secrets/c", "").await;
    assert!(
        c,
        "the reloaded policy got its key; logs:\n{}",
        daemon.stderr()
    );
    daemon.stop().await;
    // What the daemon left in grace (a first key stops at promote), run
    // --once finishes from the table.
    env.cmd("run", &["--once"]).await.assert_code(0);

    let status = env.cmd("status", &["--json"]).await;
    status.assert_code(0);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let names: Vec<&str> = (rows.as_array().unwrap().iter())
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "{rows}");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["last_result"]["kind"], "rotated", "{row}");
    }
    let stored = table_text(&table).await;
    for file in ["secrets/a", "secrets/b", "secrets/c"] {
        let key = std::fs::read_to_string(env.path(file)).unwrap();
        assert!(!stored.contains(key.trim()), "a key reached the table");
    }
    env.assert_no_secret_leaked();
}

/// Whether the file at `rel` holds something other than `before` within a minute.
async fn eventually_changed(env: &TestEnv, rel: &str, before: &str) -> bool {
    let path = env.path(rel);
    let before = before.trim().to_string();
    wait_until(Duration::from_secs(60), || {
        let now = std::fs::read_to_string(&path).ok()?;
        (!now.trim().is_empty() && now.trim() != before).then_some(())
    })
    .await
    .is_some()
}
