//! What an operator reads: log lines and command output speak the config's
//! words (no `resuming` for a normal revoke, `revoke.mode = "delete"`, RFC
//! 3339 times, one `rotation=` per line), name an old key that is still live
//! and what revokes it, and `run --once` finishes what is due.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::daemon_proc::{RunningDaemon, collect, journal, wait_until};
use crate::helpers::{Run, TestEnv, policy};

const TARGET: &str = r#"{ store = "files", secret_id = "k", create = true }"#;

/// Policy `p` with this grace, and its first key in place.
async fn with_first_key(env: &TestEnv, grace: &str) {
    let extra = format!("revoke = {{ grace = \"{grace}\", mode = \"delete\" }}");
    env.write_config(&policy("p", TARGET, &extra));
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    assert!(journal(env, "p")["in_flight"].is_null(), "first key done");
}

/// `rekey --log-format json <cmd> -c <config> <rest…>`
async fn json_cmd(env: &TestEnv, cmd: &str, rest: &[&str]) -> Run {
    let config = env.config_path();
    let mut args = vec!["--log-format", "json", cmd, "-c", config.to_str().unwrap()];
    args.extend_from_slice(rest);
    env.rekey(&args).await
}

fn log_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["fields"]["message"] == message)
}

fn rfc3339(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The pretty log without colour codes.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The old key's provider id as the journal records it in flight.
fn old_key_in_flight(env: &TestEnv) -> (String, String) {
    let j = journal(env, "p");
    let old = &j["in_flight"]["old_key"];
    (
        old["id"].as_str().expect("old key id").to_string(),
        old["label"].as_str().expect("old key label").to_string(),
    )
}

/// Deletes key `id` at the simulator behind rekey's back, as a person in
/// the provider's console would.
async fn delete_by_hand(env: &TestEnv, id: &str) {
    let deleted = reqwest::Client::new()
        .delete(format!("{}/keys/{id}", env.sim.base_url))
        .bearer_auth(&env.mgmt_key)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
}

/// The `p: rotated: …` line a finished `rekey rotate` prints.
fn rotated_line(run: &Run) -> &str {
    (run.stdout.lines())
        .find(|l| l.starts_with("p: rotated: "))
        .unwrap_or_else(|| panic!("no rotated line: {}", run.stdout))
}

#[tokio::test]
async fn a_revoke_after_the_grace_is_logged_in_config_words() {
    let env = TestEnv::new().await;
    with_first_key(&env, "2s").await;

    let promoted = json_cmd(&env, "rotate", &["p", "--now"]).await;
    promoted.assert_code(0);
    let (old_id, old_label) = old_key_in_flight(&env);
    let lines = log_lines(&promoted.stderr);
    let line = with_message(&lines, "promoted: the new key is current").expect("promoted line");
    let revoke_after = rfc3339(line["fields"]["revoke_after"].as_str().unwrap());
    assert!(
        promoted.stdout.contains(&format!(
            "old key {old_id} ({old_label}) is revoked after {}",
            revoke_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        "{}",
        promoted.stdout
    );
    assert!(
        promoted
            .stdout
            .contains("`rekey run --once` after that time")
            && promoted.stdout.contains("`rekey rotate p --wait`"),
        "names every way the old key gets revoked: {}",
        promoted.stdout
    );

    // Printed in whole seconds: the grace ends within the second after.
    let ends = revoke_after + chrono::TimeDelta::seconds(1);
    let over = wait_until(Duration::from_secs(10), || {
        (Utc::now() > ends).then_some(())
    });
    over.await.expect("the grace ends");
    let once = json_cmd(&env, "run", &["--once"]).await;
    once.assert_code(0);
    let lines = log_lines(&once.stderr);
    assert!(
        with_message(&lines, "grace over: revoking the old key").is_some(),
        "{}",
        once.stderr
    );
    let revoked = with_message(&lines, "revoked old key").expect("revoke line");
    assert_eq!(revoked["fields"]["revoke.mode"], "delete", "{revoked}");
    assert_eq!(revoked["fields"]["key_id"], old_id.as_str());
    assert!(!once.stderr.contains("resuming"), "{}", once.stderr);
    assert!(!once.stderr.contains("Delete"), "{}", once.stderr);
    let started = with_message(&lines, "daemon started").expect("start line");
    assert_eq!(started["fields"]["mode"], "once", "{started}");
    env.assert_no_secret_leaked();
}

/// What the promoted line offers works: `rotate p --wait` waits out the
/// grace in flight and revokes the old key.
#[tokio::test]
async fn rotate_wait_sees_a_grace_in_flight_out_and_revokes_the_old_key() {
    let env = TestEnv::new().await;
    with_first_key(&env, "2s").await;
    let old = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    assert!(env.works(&old), "live during the grace");

    let wait = env.cmd("rotate", &["p", "--wait"]).await;
    wait.assert_code(0);
    assert!(wait.stdout.contains("rotated:"), "{}", wait.stdout);
    assert!(journal(&env, "p")["in_flight"].is_null());
    assert!(!env.works(&old), "the old key is revoked");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn grace_0_after_an_earlier_rotation_names_one_rotation_per_line() {
    let env = TestEnv::new().await;
    with_first_key(&env, "1h").await;
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let earlier = journal(&env, "p")["in_flight"]["id"]
        .as_str()
        .expect("a rotation in grace")
        .to_string();

    let run = env
        .rekey_env(
            &[
                "rotate",
                "-c",
                env.config_path().to_str().unwrap(),
                "p",
                "--now",
                "--grace",
                "0",
            ],
            &[("NO_COLOR", "1")],
        )
        .await;
    run.assert_code(0);
    let log = plain(&run.stderr);
    let named: Vec<&str> = log.lines().filter(|l| l.contains("rotation=")).collect();
    assert!(named.len() > 3, "rotation lines carry their id: {log}");
    for line in log.lines() {
        assert!(
            line.matches("rotation=").count() <= 1,
            "one rotation per line: {line}"
        );
    }
    assert!(
        log.lines().any(
            |l| l.contains(&format!("rotation=\"{earlier}\"")) && l.contains("revoked old key")
        ),
        "the earlier rotation's revoke names it: {log}"
    );
    let newer = journal(&env, "p")["history"]
        .as_array()
        .and_then(|h| h.last().cloned())
        .expect("history");
    let newer = newer["rotation_id"].as_str().unwrap();
    assert_ne!(newer, earlier);
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("rotation=\"{newer}\"")) && l.contains("created new key")),
        "the new rotation's lines name it: {log}"
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_old_key_already_gone_is_not_reported_as_revoked() {
    let env = TestEnv::new().await;
    with_first_key(&env, "1h").await;
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let (old_id, _) = old_key_in_flight(&env);
    // Someone deletes the old key by hand during the grace.
    delete_by_hand(&env, &old_id).await;

    let run = json_cmd(&env, "rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(0);
    let lines = log_lines(&run.stderr);
    let gone = format!("old key {old_id} was already gone at the provider; nothing to revoke");
    assert!(with_message(&lines, &gone).is_some(), "{}", run.stderr);
    let revoked: Vec<_> = (lines.iter())
        .filter(|l| l["fields"]["message"] == "revoked old key")
        .filter(|l| l["fields"]["key_id"] == old_id.as_str())
        .collect();
    assert!(revoked.is_empty(), "{revoked:?}");
}

#[tokio::test]
async fn rotate_prints_what_became_of_the_old_key() {
    let env = TestEnv::new().await;
    with_first_key(&env, "1h").await;
    let current = journal(&env, "p")["current"]["id"]
        .as_str()
        .expect("current key id")
        .to_string();
    // The leaked key was deleted in the provider's console first.
    delete_by_hand(&env, &current).await;
    let gone = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    gone.assert_code(0);
    let expected = format!("; old key {current} (");
    let line = rotated_line(&gone);
    assert!(line.contains(&expected), "{line}");
    assert!(line.ends_with("was already gone at the provider"), "{line}");

    // The next rotation revokes a live old key, and says so with its mode.
    let previous = journal(&env, "p")["current"]["id"]
        .as_str()
        .expect("current key id")
        .to_string();
    let revoked = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    revoked.assert_code(0);
    let line = rotated_line(&revoked);
    assert!(line.contains(&format!("; old key {previous} (")), "{line}");
    assert!(
        line.ends_with("revoked (revoke.mode = \"delete\")"),
        "{line}"
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_signal_during_the_grace_names_the_old_key_still_live() {
    let env = TestEnv::new().await;
    with_first_key(&env, "1h").await;
    let config = env.config_path();
    let args = [
        "--log-format",
        "json",
        "rotate",
        "-c",
        config.to_str().unwrap(),
        "p",
        "--now",
        "--wait",
    ];
    let mut child = env.command(&args, &[]).spawn().expect("rekey starts");
    let stderr = collect(child.stderr.take().unwrap());
    let waiting = wait_until(Duration::from_secs(30), || {
        let text = stderr.lock().unwrap().clone();
        text.contains("waiting out the grace period").then_some(())
    });
    waiting
        .await
        .unwrap_or_else(|| panic!("no grace: {}", stderr.lock().unwrap()));
    let (old_id, old_label) = old_key_in_flight(&env);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = stderr.lock().unwrap().clone();
    let live = format!("old key {old_id} ({old_label}) stays live until the grace ends at ");
    assert!(text.contains(&live), "{text}");
    assert!(
        text.contains("`rekey run` (the daemon) or `rekey run --once` after that time revokes it"),
        "{text}"
    );
    env.capture(text);

    // The daemon, stopped with that rotation still in grace, says the same.
    let daemon = RunningDaemon::start(&env, &[]).await;
    daemon.signal(libc::SIGTERM);
    let exited = daemon.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(exited.code, Some(0));
    assert!(exited.stderr.contains(&live), "{}", exited.stderr);
    env.assert_no_secret_leaked();
}

/// A rotation crashed after staging, found much later: `run --once` must
/// finish it and then make the fresh rotation the overdue policy owes.
#[tokio::test]
async fn run_once_finishes_a_resumed_rotation_and_the_one_still_due() {
    let env = TestEnv::new().await;
    let extra = "max_age = \"1d\"\nrevoke = { grace = \"0s\", mode = \"delete\" }";
    let config = policy("p", TARGET, extra).replace("max_age = \"30d\"\n", "");
    env.write_config(&config);
    env.cmd("run", &["--once"]).await.assert_code(0);

    let crashed = env
        .rekey_env(
            &[
                "rotate",
                "-c",
                env.config_path().to_str().unwrap(),
                "p",
                "--now",
            ],
            &[("REKEY_FAILPOINT", "stage")],
        )
        .await;
    assert_eq!(crashed.code, None, "aborted: {}", crashed.stderr);
    let mut j = journal(&env, "p");
    let interrupted = j["in_flight"]["id"]
        .as_str()
        .expect("in flight")
        .to_string();
    assert_eq!(j["in_flight"]["step"], "staged");
    // Its key was made two days ago: once current, it is overdue at once.
    let long_ago = (Utc::now() - chrono::TimeDelta::days(2)).to_rfc3339();
    j["in_flight"]["new_key"]["created_at"] = Value::String(long_ago);
    let path = env.path("state/policies/p.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&j).unwrap()).unwrap();

    env.cmd("run", &["--once"]).await.assert_code(0);
    let j = journal(&env, "p");
    assert!(j["in_flight"].is_null(), "{j}");
    let history = j["history"].as_array().unwrap();
    let finished = (history.iter())
        .position(|h| h["rotation_id"] == interrupted.as_str())
        .expect("the interrupted rotation is in the history");
    assert_eq!(history[finished]["kind"], "rotated");
    let after = &history[finished + 1..];
    assert!(
        after
            .iter()
            .any(|h| h["trigger"] == "overdue" && h["kind"] == "rotated"),
        "a fresh rotation after it: {after:?}"
    );
    let status = env.cmd("status", &["--json"]).await;
    status.assert_code(0);
    let rows: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["due_now"], false, "{rows}");
    env.assert_no_secret_leaked();
}

/// `rekey dev --dir DIR` until its banner is out; returns stdout so far,
/// then SIGTERM and a clean exit.
async fn dev_session(
    dir: &std::path::Path,
    extra: &[&str],
    while_up: impl AsyncFnOnce(&str),
) -> String {
    let mut cmd = tokio::process::Command::new(crate::helpers::binary());
    cmd.args(["dev", "--dir", dir.to_str().unwrap()])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("rekey dev starts");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let banner = wait_until(Duration::from_secs(30), || {
        let text = stdout.lock().unwrap().clone();
        text.contains("Ctrl-C stops").then_some(text)
    });
    let banner = banner.await.unwrap_or_else(|| {
        panic!(
            "no banner; stdout:\n{}\nstderr:\n{}",
            stdout.lock().unwrap(),
            stderr.lock().unwrap()
        )
    });
    while_up(&banner).await;
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("rekey dev exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.lock().unwrap());
    banner
}

#[tokio::test]
async fn dev_keeps_an_edited_config_and_reset_writes_a_fresh_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let config = dir.join("rekey.toml");
    let token_file = dir.join("admin-token");
    let first = dev_session(&dir, &[], async |banner: &str| {
        let admin = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin API:  http://"))
            .and_then(|rest| rest.split('/').next())
            .expect("admin address in the banner")
            .to_string();
        let token = std::fs::read_to_string(&token_file).unwrap();
        let rotate = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://{admin}/v1/policies/demo/rotate"))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        // Accepted, or refused only because the first key is being made.
        let status = rotate.status();
        assert!(
            status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::CONFLICT,
            "the token works: {status}"
        );
    })
    .await;
    assert!(!first.contains("keeping"), "{first}");
    let audit = dir.join("audit.jsonl");
    assert!(
        first.contains(&format!("audit log:  {}", audit.display())),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "Authorization: Bearer $(cat {})",
            token_file.display()
        )),
        "{first}"
    );

    let written = std::fs::read_to_string(&config).unwrap();
    let edited = written.replace("*/20 * * * * *", "*/30 * * * * *");
    assert_ne!(written, edited, "the edit changes the schedule");
    std::fs::write(&config, &edited).unwrap();

    let second = dev_session(&dir, &[], async |_: &str| {}).await;
    let keeping = format!(
        "keeping your edited {} (use --reset for a fresh one)",
        config.display()
    );
    assert!(second.contains(&keeping), "{second}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        edited,
        "edit intact"
    );

    let third = dev_session(&dir, &["--reset"], async |_: &str| {}).await;
    assert!(!third.contains("keeping"), "{third}");
    let fresh = std::fs::read_to_string(&config).unwrap();
    assert!(fresh.contains("*/20 * * * * *"), "{fresh}");
    assert!(!fresh.contains("*/30 * * * * *"), "{fresh}");
}
