//! The command line as an operator meets it: dry runs that create nothing,
//! usage errors that exit 2, status output, SIGTERM ending the daemon cleanly,
//! and logs without colour codes when stderr is a pipe.

use std::time::Duration;

use crate::helpers::{TestEnv, policy};

async fn seeded() -> (TestEnv, String) {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy("p", r#"{ store = "files", secret_id = "k" }"#, ""));
    (env, old)
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_creates_nothing() {
    let (env, old) = seeded().await;

    let run = env.cmd("rotate", &["p", "--dry-run"]).await;
    run.assert_code(0);

    assert!(
        run.stdout.contains("management key works"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&rekey::secret::redacted_label(&old.clone().into())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing created"), "{}", run.stdout);
    assert_eq!(
        env.sim.sim.issued_secrets().len(),
        1,
        "only the seeded key exists"
    );
    assert_eq!(env.sim.sim.call_counts().get("create"), None);
    assert!(!env.path("secrets/k.pending").exists());
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_dry_run_with_a_bad_management_key_fails_naming_the_provider() {
    let (env, _) = seeded().await;
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--dry-run"];
    let run = env
        .rekey_env(&args, &[(crate::helpers::MGMT_ENV, "sk-or-v1-nope")])
        .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("providers.sim.management_key"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn usage_errors_exit_2_and_say_what_is_wrong() {
    let (env, _) = seeded().await;
    let unknown = env.cmd("rotate", &["nope", "--now"]).await;
    unknown.assert_code(2);
    assert!(
        unknown
            .stderr
            .contains("no policy named \"nope\" (policies: p)"),
        "{}",
        unknown.stderr
    );

    env.rekey(&["rotate"]).await.assert_code(2);
    env.rekey(&["frobnicate"]).await.assert_code(2);
    let missing = env.rekey(&["check", "-c", "/nonexistent/rekey.toml"]).await;
    missing.assert_code(2);
    assert!(
        missing.stderr.contains("/nonexistent/rekey.toml"),
        "{}",
        missing.stderr
    );

    let no_env = env.command(
        &[
            "rotate",
            "-c",
            env.config_path().to_str().unwrap(),
            "p",
            "--now",
        ],
        &[],
    );
    let mut no_env = no_env;
    no_env.env_remove(crate::helpers::MGMT_ENV);
    let run = env.keep(no_env.output().await.unwrap());
    // An unreadable credential is a runtime failure (1), not bad usage.
    run.assert_code(1);
    assert!(
        run.stderr.contains("providers.sim.management_key"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn status_shows_the_redacted_current_key_and_the_last_result() {
    let (env, _) = seeded().await;
    let before = env.cmd("status", &[]).await;
    before.assert_code(0);
    assert!(before.stdout.contains("(none)"), "{}", before.stdout);

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    let after = env.cmd("status", &[]).await;
    assert!(
        after
            .stdout
            .contains(&rekey::secret::redacted_label(&new.into())),
        "{}",
        after.stdout
    );
    assert!(after.stdout.contains("rotated"), "{}", after.stdout);
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_with_exit_0() {
    let (env, _) = seeded().await;
    let config = env.config_path();
    let mut child = env
        .command(&["run", "-c", config.to_str().unwrap()], &[])
        .spawn()
        .unwrap();
    // Give the daemon time to finish its first pass (an adoption and a rotation).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let (env, _) = seeded().await;
    let config = env.config_path();
    let args = [
        "rotate",
        "-c",
        config.to_str().unwrap(),
        "p",
        "--grace",
        "0s",
    ];
    let mut cmd = env.command(&args, &[]);
    // Colour must be off because stderr is a pipe, not because of NO_COLOR.
    cmd.env_remove("NO_COLOR");
    let run = env.keep(cmd.output().await.expect("rekey runs"));
    run.assert_code(0);
    assert!(
        run.stderr.contains("INFO"),
        "pretty log lines: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("\x1b["), "{:?}", run.stderr);
    env.assert_no_secret_leaked();
}
