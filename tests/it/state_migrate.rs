//! `rekey state migrate` with the real binary, file state to file state:
//! journals move as they are (a grace in progress included, and its old key
//! is revoked on time from the target), a held lease or a rotation not yet
//! promoted refuses the whole move and writes nothing, a re-run after a
//! partial move finishes it, `--dry-run` writes nothing and a bad `--to`
//! is bad usage.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{Run, TestEnv, policy};

/// Policies `p` (secret `k`, a 3 s grace) and `q` (secret `k2`), each with
/// a key made by hand in the file store.
async fn two_policies() -> (TestEnv, String) {
    let env = TestEnv::new().await;
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    let (_, old) = env.seed_key("by-hand-p");
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let (_, other) = env.seed_key("by-hand-q");
    std::fs::write(env.path("secrets/k2"), &other).unwrap();
    env.write_config(&both());
    (env, old)
}

fn both() -> String {
    let p = policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        r#"revoke = { grace = "3s" }"#,
    );
    let q = policy("q", r#"{ store = "files", secret_id = "k2" }"#, "");
    format!("{p}{q}")
}

/// The target state directory every test migrates to.
fn target(env: &TestEnv) -> PathBuf {
    env.path("target-state")
}

async fn migrate(env: &TestEnv, extra: &[&str]) -> Run {
    let to = format!("file:{}", target(env).display());
    let mut args = vec!["migrate", "-c"];
    let config = env.config_path();
    args.push(config.to_str().unwrap());
    args.extend(["--to", to.as_str()]);
    args.extend_from_slice(extra);
    env.rekey(&[&["state"], args.as_slice()].concat()).await
}

fn journal_bytes(state_dir: &Path, policy: &str) -> Vec<u8> {
    std::fs::read(state_dir.join(format!("policies/{policy}.json"))).expect("journal exists")
}

/// The config as it is, with `daemon.state` pointing at the target.
fn target_config(env: &TestEnv) -> PathBuf {
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let from = format!("state = \"file:{}\"", env.path("state").display());
    let to = format!("state = \"file:{}\"", target(env).display());
    assert!(text.contains(&from), "the config names the source state");
    let path = env.path("target.toml");
    std::fs::write(&path, text.replace(&from, &to)).unwrap();
    path
}

/// Every file under a directory, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = crate::helpers::files_under(dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    files.sort();
    files
}

fn revoke_after(journal: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    let at = journal["in_flight"]["revoke_after"]
        .as_str()
        .expect("in grace");
    chrono::DateTime::parse_from_rfc3339(at).unwrap().into()
}

async fn until(deadline: Duration, what: &str, done: impl Fn() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    while !done() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn journals_move_with_a_grace_in_progress_and_its_old_key_is_revoked_from_the_target() {
    let (env, old) = two_policies().await;
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    env.cmd("rotate", &["q", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let in_grace = env.journal("p");
    assert_eq!(in_grace["in_flight"]["step"], "promoted");
    // `q` leaves the config: its journal moves all the same.
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        r#"revoke = { grace = "3s" }"#,
    ));
    let source = snapshot(&env.path("state"));

    let run = migrate(&env, &[]).await;
    run.assert_code(0);

    let out = &run.stdout;
    assert!(
        out.contains("  p: moved (in grace: old key revoked after"),
        "{out}"
    );
    assert!(
        out.contains("  q: moved (not in the config any more)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "set daemon.state = \"file:{}\"",
            target(&env).display()
        )),
        "{out}"
    );
    assert!(out.contains("left untouched as a backup"), "{out}");
    for name in ["p", "q"] {
        assert_eq!(
            journal_bytes(&target(&env), name),
            journal_bytes(&env.path("state"), name),
            "{name}'s journal is copied as it is"
        );
    }
    assert_eq!(
        snapshot(&env.path("state")),
        source,
        "the source is untouched"
    );
    let moved: serde_json::Value =
        serde_json::from_slice(&journal_bytes(&target(&env), "p")).unwrap();
    assert_eq!(revoke_after(&moved), revoke_after(&in_grace));
    assert!(env.works(&old), "the old key is alive during its grace");

    let due = revoke_after(&moved);
    until(Duration::from_secs(10), "the grace to end", || {
        chrono::Utc::now() > due
    })
    .await;
    let config = target_config(&env);
    let args = ["run", "-c", config.to_str().unwrap(), "--once"];
    env.rekey(&args).await.assert_code(0);
    assert!(!env.works(&old), "the old key is revoked after its grace");
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert!(env.works(&new), "the new key stays current");
    let finished: serde_json::Value =
        serde_json::from_slice(&journal_bytes(&target(&env), "p")).unwrap();
    assert!(finished["in_flight"].is_null(), "{finished}");
    assert_eq!(
        snapshot(&env.path("state")),
        source,
        "the run on the target left the source as it was"
    );
    env.assert_no_secret_leaked();
}

/// `flock`s `path` (as a daemon's lease does) until the file is dropped.
fn hold_lock(path: &Path) -> File {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = File::create(path).unwrap();
    // SAFETY: flock on a file descriptor this test owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "the test holds the lock");
    file
}

#[tokio::test]
async fn a_held_lease_refuses_the_migration_and_nothing_is_written() {
    let (env, _) = two_policies().await;
    env.cmd("rotate", &["q", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let lock = env.path("state/locks/someone-0000000000000000.lock");
    let held = hold_lock(&lock);

    let run = migrate(&env, &[]).await;
    run.assert_code(1);
    assert!(
        run.stdout.contains(&format!(
            "refused: source file:{}",
            env.path("state").display()
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("lease held: {}", lock.display())),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("migration refused, nothing written: stop every daemon"),
        "{}",
        run.stderr
    );
    assert!(
        !target(&env).exists(),
        "a refused migration creates nothing"
    );

    drop(held);
    migrate(&env, &[]).await.assert_code(0);
    journal_bytes(&target(&env), "q");
}

#[tokio::test]
async fn a_rotation_not_yet_promoted_refuses_the_migration_until_it_is_finished() {
    let (env, _) = two_policies().await;
    env.cmd("rotate", &["q", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let crashing = env.command(&args, &[("REKEY_FAILPOINT", "stage")]);
    let crashed = env.keep(output_within_a_minute(crashing).await);
    assert_eq!(crashed.code, None, "aborted at the failpoint");
    assert_eq!(env.journal("p")["in_flight"]["step"], "staged");

    let run = migrate(&env, &[]).await;
    run.assert_code(1);
    assert!(
        run.stdout.contains("  p: refused: rotation ")
            && run.stdout.contains(" is at step staged, not yet promoted"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  q: can move"), "{}", run.stdout);
    assert!(run.stderr.contains("`rekey run --once`"), "{}", run.stderr);
    assert!(!target(&env).exists(), "nothing written");

    env.cmd("run", &["--once"]).await.assert_code(0);
    let run = migrate(&env, &[]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("  p: moved"), "{}", run.stdout);
}

#[tokio::test]
async fn a_rerun_after_a_partial_migration_moves_the_rest_and_never_overwrites() {
    let (env, _) = two_policies().await;
    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    env.cmd("rotate", &["q", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    migrate(&env, &[]).await.assert_code(0);
    // As if the first run had stopped after `p`.
    std::fs::remove_file(target(&env).join("policies/q.json")).unwrap();

    let rerun = migrate(&env, &[]).await;
    rerun.assert_code(0);
    assert!(
        rerun.stdout.contains("  p: already there (identical)"),
        "{}",
        rerun.stdout
    );
    assert!(rerun.stdout.contains("  q: moved"), "{}", rerun.stdout);
    assert_eq!(
        journal_bytes(&target(&env), "q"),
        journal_bytes(&env.path("state"), "q")
    );

    // A target journal that differs is never overwritten.
    let mut other: serde_json::Value =
        serde_json::from_slice(&journal_bytes(&target(&env), "q")).unwrap();
    other["failures"] = 7.into();
    let path = target(&env).join("policies/q.json");
    std::fs::write(&path, other.to_string()).unwrap();
    let conflict = migrate(&env, &[]).await;
    conflict.assert_code(1);
    assert!(
        conflict
            .stdout
            .contains("  q: refused: the target already holds a different journal for it"),
        "{}",
        conflict.stdout
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), other.to_string());
}

#[tokio::test]
async fn a_dry_run_says_what_would_move_and_writes_nothing() {
    let (env, _) = two_policies().await;
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let source = snapshot(&env.path("state"));

    let run = migrate(&env, &["--dry-run"]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("  p: would move (in grace: old key revoked after"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  q: no journal yet (nothing to move)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("dry run: nothing written"),
        "{}",
        run.stdout
    );
    assert!(!target(&env).exists(), "the target is not even created");
    assert_eq!(snapshot(&env.path("state")), source);
}

#[tokio::test]
async fn a_bad_target_is_bad_usage_and_the_source_itself_is_refused() {
    let (env, _) = two_policies().await;
    let config = env.config_path();
    let config = config.to_str().unwrap();
    for to in ["s3:bucket", "file:", "/var/lib/rekey"] {
        let run = env
            .rekey(&["state", "migrate", "-c", config, "--to", to])
            .await;
        run.assert_code(2);
        assert!(
            run.stderr.contains(&format!("--to {to:?}")),
            "{}",
            run.stderr
        );
    }
    env.rekey(&["state", "migrate", "--to", "file:/tmp/x"])
        .await
        .assert_code(2);

    // A relative directory is the current directory's, shown absolute.
    let args = [
        "state",
        "migrate",
        "-c",
        config,
        "--to",
        "file:rel",
        "--dry-run",
    ];
    let mut relative = env.command(&args, &[]);
    relative.current_dir(env.dir.path());
    let run = env.keep(output_within_a_minute(relative).await);
    run.assert_code(0);
    let absolute = format!("to file:{}\n", env.path("rel").display());
    assert!(run.stdout.contains(&absolute), "{}", run.stdout);

    let same = format!("file:{}", env.path("state").display());
    let run = env
        .rekey(&["state", "migrate", "-c", config, "--to", &same])
        .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("is the config's daemon.state"),
        "{}",
        run.stderr
    );
}

async fn output_within_a_minute(mut command: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("finished within 60s")
        .expect("ran")
}
