//! The daemon looks at assisted policies every 30 s even when nothing is
//! due, so a key placed while it runs is taken up without anyone running a
//! command.

use std::time::{Duration, Instant};

use rekey::sim::Api;

use super::{Secret, configure, status_of};
use crate::crash_matrix::Store;
use crate::helpers::TestEnv;

/// Polls `done` every 250 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_daemon_takes_up_a_key_placed_while_nothing_is_due() {
    let env = TestEnv::new().await;
    let (old_id, old) = env.seed_key_in(Api::Anthropic, "console key in use");
    let secret = Secret::create(&env, Store::Files, "raw", &old).await;
    configure(&env, &secret, r#"revoke = { grace = "0s" }"#);
    let config = env.config_path();
    let daemon = env
        .command(&["run", "-c", config.to_str().unwrap()], &[])
        .spawn()
        .expect("daemon starts");
    let journal = env.path("state/policies/p.json");
    let adopted = eventually(Duration::from_secs(20), || journal.exists()).await;
    assert!(adopted, "the first pass adopted the current key");

    let (_, new) = env.seed_key_in(Api::Anthropic, "placed while the daemon runs");
    secret.place(&env, &new).await;
    let current = env.path(&format!("secrets/{}", secret.id));
    let retired = eventually(Duration::from_secs(75), || {
        std::fs::read_to_string(&current).is_ok_and(|c| c == new)
            && status_of(&env, &old_id) == "inactive"
    })
    .await;

    let pid = daemon.id().expect("daemon still running") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = tokio::time::timeout(Duration::from_secs(15), daemon.wait_with_output())
        .await
        .expect("exits after SIGTERM")
        .expect("daemon output");
    let run = env.keep(out);
    assert!(
        retired,
        "the placed key became current and the old key inactive; stderr:\n{}",
        run.stderr
    );
    run.assert_code(0);
    assert_eq!(env.journal("p")["history"][0]["trigger"], "placed");
    env.assert_settled(&new, &[]);
    env.assert_no_secret_leaked();
}
