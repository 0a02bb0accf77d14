//! A journal that cannot be read, seen from outside: `rekey status` (both
//! shapes) and `/v1/status` report it on its own row while the others stay
//! normal; the daemon keeps rotating the healthy policy, never touches the
//! broken one nor its file, sets `rekey_journal_corrupt` and alerts once;
//! `rekey rotate` on it fails naming the journal.

use std::time::Duration;

use serde_json::Value;

use crate::daemon_proc::{RunningDaemon, history_len, wait_for_history, wait_until};
use crate::helpers::{TestEnv, policy};
use crate::observability::{Receiver, notifier, sample};

const EVERY_2S: &str = "schedule = \"*/2 * * * * *\"\nrevoke = { grace = \"0s\" }";

/// Policies `good` and `bad` (each its own file secret, alerts to `ops`),
/// both with a first key, then `bad`'s journal torn in half as a crash of a
/// careless editor would leave it. Returns the torn bytes.
async fn one_journal_torn(env: &TestEnv, schedule: &str, hook: Option<&str>) -> Vec<u8> {
    let route = if hook.is_some() {
        r#"notify = ["ops"]"#
    } else {
        ""
    };
    let extra = format!("{schedule}\n{route}");
    let target = |id: &str| format!(r#"{{ store = "files", secret_id = "{id}", create = true }}"#);
    let mut config = policy("good", &target("good"), &extra);
    config.push_str(&policy("bad", &target("bad"), &extra));
    if let Some(url) = hook {
        config.push_str(&notifier(
            env,
            "ops",
            "json",
            url,
            r#"on = ["journal_corrupt"]"#,
        ));
    }
    env.write_config(&config);
    env.cmd("run", &["--once"]).await.assert_code(0);

    let path = env.path("state/policies/bad.json");
    let whole = std::fs::read(&path).unwrap();
    assert!(history_len(env, "bad") >= 1, "bad has its first key");
    let torn = whole[..whole.len() / 2].to_vec();
    std::fs::write(&path, &torn).unwrap();
    torn
}

fn secret(env: &TestEnv, id: &str) -> String {
    std::fs::read_to_string(env.path(&format!("secrets/{id}"))).unwrap()
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    (rows.as_array().expect("an array of rows").iter())
        .find(|r| r["policy"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

/// The broken row names the problem and the file; the healthy row is whole.
fn assert_rows(rows: &Value) {
    let bad = row(rows, "bad");
    let why = bad["journal_corrupt"].as_str().expect("bad says why");
    assert!(why.contains("corrupt journal"), "{why}");
    assert!(why.contains("bad.json"), "names the file: {why}");
    assert!(
        bad["current_label"].is_null(),
        "unknown, not invented: {bad}"
    );
    let good = row(rows, "good");
    assert!(good.get("journal_corrupt").is_none(), "{good}");
    assert!(good["current_label"].is_string(), "{good}");
    assert_eq!(good["last_result"]["kind"], "rotated", "{good}");
}

#[tokio::test]
async fn status_reports_a_corrupt_journal_on_its_own_row_and_rotate_refuses_it() {
    let env = TestEnv::new().await;
    let torn = one_journal_torn(&env, "", None).await;
    let bad_key = secret(&env, "bad");

    let table = env.cmd("status", &[]).await;
    table.assert_code(0);
    let line = |name: &str| {
        (table.stdout.lines())
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", table.stdout))
            .to_string()
    };
    assert!(line("bad").contains("journal corrupt"), "{}", table.stdout);
    assert!(!line("good").contains("corrupt"), "{}", table.stdout);
    assert!(!line("good").contains("(none)"), "{}", table.stdout);
    let note = (table.stdout.lines())
        .find(|l| l.starts_with("bad: "))
        .unwrap_or_else(|| panic!("no reason under the table:\n{}", table.stdout));
    assert!(note.contains("corrupt journal"), "{note}");
    assert!(note.contains("bad.json"), "{note}");

    let json = env.cmd("status", &["--json"]).await;
    json.assert_code(0);
    assert_rows(&serde_json::from_str(&json.stdout).expect("status --json is JSON"));

    let rotate = env.cmd("rotate", &["bad", "--now"]).await;
    assert_ne!(rotate.code, Some(0), "{rotate:?}");
    assert!(rotate.code.is_some(), "an exit, not a crash: {rotate:?}");
    assert!(
        rotate.stderr.contains("corrupt journal"),
        "{}",
        rotate.stderr
    );
    assert!(rotate.stderr.contains("bad.json"), "{}", rotate.stderr);

    let now = std::fs::read(env.path("state/policies/bad.json")).unwrap();
    assert!(now == torn, "the torn journal is left as it was");
    assert_eq!(secret(&env, "bad"), bad_key, "bad's secret untouched");
    assert!(env.works(&bad_key), "bad's key is not revoked");
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rotates_around_a_corrupt_journal_and_alerts_it_once() {
    let env = TestEnv::new().await;
    let hook = Receiver::start().await;
    let torn = one_journal_torn(&env, EVERY_2S, Some(&hook.url)).await;
    let bad_key = secret(&env, "bad");
    let rotated = history_len(&env, "good");

    let daemon = RunningDaemon::start(&env, &[]).await;
    // Several passes: each due `good` wakes the loop, which reads `bad` too.
    wait_for_history(&env, "good", rotated + 3).await;

    let alerts = wait_until(Duration::from_secs(10), || {
        let events = hook.events(&env);
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(
        alerts.as_deref(),
        Some(&["journal_corrupt".to_string()][..])
    );
    let alert = &hook.bodies(&env)[0];
    assert_eq!(alert["policy"], "bad");
    assert!(
        alert["error"].as_str().unwrap().contains("bad.json"),
        "{alert}"
    );

    let status = daemon.get("/v1/status").await;
    assert_eq!(status.status(), 200);
    assert_rows(&status.json().await.expect("a JSON body"));

    let text = daemon.get("/metrics").await.text().await.unwrap();
    env.capture(text.clone());
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text");
    let corrupt = |p: &str| sample(&scrape, "rekey_journal_corrupt", &[("policy", p)]);
    assert_eq!(corrupt("bad"), Some(1.0));
    assert_eq!(corrupt("good"), Some(0.0));

    // More passes; still the one alert, and `bad` never touched.
    wait_for_history(&env, "good", rotated + 5).await;
    daemon.stop().await;
    assert_eq!(hook.events(&env), ["journal_corrupt"], "alerted once");
    let now = std::fs::read(env.path("state/policies/bad.json")).unwrap();
    assert!(now == torn, "the torn journal is left byte for byte");
    assert_eq!(secret(&env, "bad"), bad_key, "bad's secret untouched");
    assert!(env.works(&bad_key), "bad's key is not revoked");
    let good_key = secret(&env, "good");
    assert!(env.works(&good_key), "good's current key works");
    env.assert_no_secret_leaked();
}
