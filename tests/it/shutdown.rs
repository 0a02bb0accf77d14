//! Graceful shutdown of `rekey run`: SIGTERM stops a rotation at its next
//! step boundary, a rotation stuck in a provider call is cut off after
//! `daemon.shutdown_timeout`, and either way the journal lets `run --once`
//! finish the rotation afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey::sim::Faults;

use crate::daemon_proc::{
    RunningDaemon, TOKEN_ENV, journal, token_line, wait_for_history, wait_until,
    write_config_with_daemon,
};
use crate::helpers::{TestEnv, policy};

const TOKEN: &str = "it-shutdown-token-9e8d";
const TARGET: &str = r#"{ store = "files", secret_id = "k", create = true }"#;
const SLOW_VERIFY: &str =
    r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "2m" }"#;

/// The daemon with `shutdown_timeout`, once `p` has its first key, and a
/// rotation asked for through the API that has staged its new key.
async fn rotating<'a>(
    env: &'a TestEnv,
    shutdown_timeout: &str,
    faults: Faults,
) -> RunningDaemon<'a> {
    let daemon_lines = format!(
        "{}\nshutdown_timeout = \"{shutdown_timeout}\"",
        token_line()
    );
    write_config_with_daemon(env, &daemon_lines, &policy("p", TARGET, SLOW_VERIFY));
    let daemon = RunningDaemon::start(env, &[(TOKEN_ENV, TOKEN)]).await;
    wait_for_history(env, "p", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.sim.sim.set_faults(faults);
    let rotate = daemon
        .post("/v1/policies/p/rotate?grace=0s", Some(TOKEN), None)
        .await;
    assert_eq!(rotate.status(), 202);
    let staged = wait_until(Duration::from_secs(20), || {
        (journal(env, "p")["in_flight"]["step"] == "staged").then_some(())
    })
    .await;
    assert!(staged.is_some(), "the new key was staged");
    daemon
}

fn key(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path("secrets/k")).unwrap()
}

/// `run --once` finishes the rotation SIGTERM interrupted.
async fn run_once_completes_it(env: &TestEnv, old: &str) {
    env.sim.sim.set_faults(Faults::default());
    env.cmd("run", &["--once"]).await.assert_code(0);
    let journal = journal(env, "p");
    assert!(journal["in_flight"].is_null(), "{journal}");
    assert_eq!(journal["history"][1]["trigger"], "api");
    assert_eq!(journal["history"][1]["kind"], "rotated");
    let new = key(env);
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_verification_stops_at_a_step_boundary_and_run_once_completes_it() {
    let env = TestEnv::new().await;
    // The new key works only after 12 s: verification keeps retrying.
    let slow = Faults {
        propagation_delay_ms: 12_000,
        ..Faults::default()
    };
    let daemon = rotating(&env, "3s", slow).await;
    let old = key(&env);
    daemon.wait_for_log("new key not working yet").await;

    daemon.signal(libc::SIGTERM);
    let exited = daemon.wait_exit(Duration::from_secs(30)).await;

    assert_eq!(exited.code, Some(0));
    assert!(
        exited.elapsed < Duration::from_secs(3 + 4),
        "exited within shutdown_timeout + slack, not after the verification: {:?}",
        exited.elapsed
    );
    assert!(
        exited.stderr.contains("stopping at a step boundary")
            || exited.stderr.contains("stopped for shutdown")
    );
    assert_eq!(journal(&env, "p")["in_flight"]["step"], "staged");
    assert_eq!(key(&env), old, "the old key is still current");
    assert!(env.works(&old));

    run_once_completes_it(&env, &old).await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_stuck_in_a_provider_call_is_cut_off_at_the_shutdown_timeout() {
    let env = TestEnv::new().await;
    // Each verification call hangs until the 5 s request timeout.
    let stuck = Faults {
        latency_ms: BTreeMap::from([("chat".to_string(), 8_000)]),
        ..Faults::default()
    };
    let daemon = rotating(&env, "1s", stuck).await;
    let old = key(&env);
    tokio::time::sleep(Duration::from_millis(200)).await;

    daemon.signal(libc::SIGTERM);
    let exited = daemon.wait_exit(Duration::from_secs(30)).await;

    assert_eq!(exited.code, Some(0));
    assert!(
        exited.elapsed < Duration::from_secs(4),
        "cut off after the 1 s shutdown timeout, not after the 5 s call: {:?}",
        exited.elapsed
    );
    let warning = exited
        .stderr
        .lines()
        .find(|l| l.contains("shutdown timeout: exiting with rotations still running"))
        .expect("the shutdown timeout is logged");
    assert!(warning.contains(r#""policies":"p""#), "{warning}");
    assert_eq!(key(&env), old, "the old key is still current");

    run_once_completes_it(&env, &old).await;
    env.assert_no_secret_leaked();
}
