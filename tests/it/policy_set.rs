//! A `[[policy_set]]` in a running `rekey run`: each member rotates as its
//! own policy and status lists each; an edit of the members file alone is
//! picked up by the reload watcher as a diff (a member added, one removed);
//! with `on_remove = "revoke"` the removed member's current key is revoked
//! at the simulator and the journal records the retirement, also when a
//! crash cuts it short.

use std::time::Duration;

use serde_json::Value;

use crate::daemon_proc::{
    RunningDaemon, TOKEN_ENV, journal, token_line, wait_for_history, wait_until,
    write_config_with_daemon,
};
use crate::helpers::TestEnv;

const TOKEN: &str = "it-policy-set-token-3b9e";
const WATCHING: &str = "reloading the config on SIGHUP or when the file changes";

const SET: &str = r#"
[[policy_set]]
name = "tenant-{member}"
members = "file:tenants.txt"
provider = "sim"
max_age = "30d"
on_remove = "revoke"
key = { name = "it-{policy}-{rotation}" }
target = { store = "files", secret_id = "tenants/{member}", create = true }
verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "10s" }
revoke = { grace = "0s" }
"#;

/// [`SET`] with another grace.
fn set_with_grace(grace: &str) -> String {
    SET.replace("grace = \"0s\"", &format!("grace = \"{grace}\""))
}

fn members(env: &TestEnv, ids: &str) {
    std::fs::write(env.path("tenants.txt"), ids).unwrap();
}

fn secret(env: &TestEnv, member: &str) -> String {
    std::fs::read_to_string(env.path(&format!("secrets/tenants/{member}"))).unwrap()
}

async fn policies_in_status(daemon: &RunningDaemon<'_>) -> Vec<String> {
    let status: Value = daemon.get("/v1/status").await.json().await.unwrap();
    let rows = status.as_array().unwrap().iter();
    rows.map(|r| r["policy"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_members_rotate_as_policies_and_a_removed_member_is_retired() {
    let env = TestEnv::new().await;
    members(&env, "# tenants\na\nb\nc\n");
    write_config_with_daemon(&env, &token_line(), SET);
    let daemon = RunningDaemon::start(&env, &[(TOKEN_ENV, TOKEN)]).await;
    for member in ["a", "b", "c"] {
        let journal = wait_for_history(&env, &format!("tenant-{member}"), 1).await;
        assert_eq!(journal["history"][0]["kind"], "rotated", "{journal}");
        assert!(env.works(&secret(&env, member)), "{member}'s key works");
    }
    daemon.wait_for_log(WATCHING).await;
    assert_eq!(
        policies_in_status(&daemon).await,
        ["tenant-a", "tenant-b", "tenant-c"]
    );
    let c_key = secret(&env, "c");
    let a_key = secret(&env, "a");

    // Only the members file changes: c leaves, d joins.
    members(&env, "a\nb\nd\n");
    let reloaded = daemon.wait_for_log("config reloaded").await;
    assert_eq!(reloaded["fields"]["added"], "tenant-d", "{reloaded}");
    assert_eq!(reloaded["fields"]["removed"], "tenant-c", "{reloaded}");
    assert_eq!(reloaded["fields"]["cause"], "file change", "{reloaded}");
    wait_for_history(&env, "tenant-d", 1).await;
    assert!(env.works(&secret(&env, "d")), "d's first key works");

    let retired = wait_until(Duration::from_secs(30), || {
        let j = journal(&env, "tenant-c");
        j["retirement"]["done_at"].is_string().then_some(j)
    })
    .await
    .unwrap_or_else(|| panic!("tenant-c not retired: {}", journal(&env, "tenant-c")));
    assert!(retired["current"].is_null(), "{retired}");
    assert_eq!(retired["retirement"]["set"], "tenant-{member}");
    assert!(!env.works(&c_key), "the removed member's key is revoked");
    assert!(
        !env.live_secrets().contains(&c_key),
        "the simulator's key list no longer holds it"
    );
    assert!(env.works(&a_key), "the members that stay keep their keys");
    daemon
        .wait_for_log("retired a removed set member: revoked its current key (on_remove = \"revoke\", the named exception to never revoking a current key)")
        .await;
    assert_eq!(
        policies_in_status(&daemon).await,
        ["tenant-a", "tenant-b", "tenant-d"]
    );
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_in_grace_finishes_its_rotation_before_its_key_is_revoked() {
    let env = TestEnv::new().await;
    members(&env, "a\nc\n");
    write_config_with_daemon(&env, &token_line(), &set_with_grace("8s"));
    let daemon = RunningDaemon::start(&env, &[(TOKEN_ENV, TOKEN)]).await;
    wait_for_history(&env, "tenant-c", 1).await;
    daemon.wait_for_log(WATCHING).await;
    let first = secret(&env, "c");
    let rotate = daemon
        .post("/v1/policies/tenant-c/rotate", Some(TOKEN), None)
        .await;
    assert_eq!(rotate.status(), 202);
    let promoted = wait_until(Duration::from_secs(30), || {
        let j = journal(&env, "tenant-c");
        (j["in_flight"]["step"] == "promoted").then_some(())
    })
    .await;
    assert!(promoted.is_some(), "{}", journal(&env, "tenant-c"));
    let second = secret(&env, "c");
    assert_ne!(first, second);
    assert!(env.works(&first), "the old key is in its grace");

    members(&env, "a\n");
    daemon
        .wait_for_log("finishing the rotation in flight before retiring the member")
        .await;
    let retired = wait_until(Duration::from_secs(30), || {
        let j = journal(&env, "tenant-c");
        j["retirement"]["done_at"].is_string().then_some(j)
    })
    .await
    .unwrap_or_else(|| panic!("tenant-c not retired: {}", journal(&env, "tenant-c")));
    assert_eq!(
        retired["history"].as_array().map(Vec::len),
        Some(2),
        "{retired}"
    );
    assert_eq!(
        retired["history"][1]["kind"], "rotated",
        "the rotation finished first"
    );
    assert!(
        !env.works(&first),
        "the old key was revoked at the end of its grace"
    );
    assert!(!env.works(&second), "then the member's current key");
    assert!(env.works(&secret(&env, "a")));
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_cut_short_by_a_crash_is_finished_at_the_next_start() {
    let env = TestEnv::new().await;
    members(&env, "a\nc\n");
    write_config_with_daemon(&env, &token_line(), SET);
    let crashing = [(TOKEN_ENV, TOKEN), ("REKEY_FAILPOINT", "retire:marked")];
    let daemon = RunningDaemon::start(&env, &crashing).await;
    wait_for_history(&env, "tenant-c", 1).await;
    daemon.wait_for_log(WATCHING).await;
    let c_key = secret(&env, "c");

    members(&env, "a\n");
    let exited = daemon.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(
        exited.code, None,
        "aborted at the failpoint: {}",
        exited.stderr
    );
    let pending = journal(&env, "tenant-c");
    assert!(pending["retirement"]["since"].is_string(), "{pending}");
    assert!(pending["retirement"]["done_at"].is_null(), "{pending}");
    assert!(env.works(&c_key), "not revoked before the crash");

    let daemon = RunningDaemon::start(&env, &[(TOKEN_ENV, TOKEN)]).await;
    daemon
        .wait_for_log("resuming the retirement of a removed set member")
        .await;
    let retired = wait_until(Duration::from_secs(30), || {
        let j = journal(&env, "tenant-c");
        j["retirement"]["done_at"].is_string().then_some(j)
    })
    .await
    .unwrap_or_else(|| panic!("tenant-c not retired: {}", journal(&env, "tenant-c")));
    assert!(retired["current"].is_null(), "{retired}");
    assert!(!env.works(&c_key), "revoked by the restarted daemon");
    assert!(env.works(&secret(&env, "a")));
    daemon.stop().await;
    env.assert_no_secret_leaked();
}
