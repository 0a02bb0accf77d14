//! Issue 14 against the simulator: `on_promote` hooks (a failing hook keeps
//! the old key live and alerts; fixed, the next pass revokes; a crash after
//! promote runs them on resume; their environment and body carry the fields
//! and nothing else) and `revoke.wait_idle` (a key in use is not revoked; past
//! `max_wait` it is revoked and alerted, or kept and alerted until
//! `--grace 0`).

use std::path::Path;
use std::time::{Duration, Instant};

use rekey::app::App;
use rekey::rotation::{Request, RotationError, RunOutcome, Until, WaitReason, run_policy};
use rekey::sim::Api;
use rekey::state::Trigger;

use crate::helpers::{TestEnv, policy};
use crate::observability::{
    Receiver, audit_records, in_process, notifier, sample, scrape, with_audit_log,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for the webhook `event` (alerts are delivered in the background).
async fn alerted(alerts: &Receiver, env: &TestEnv, event: &str) {
    let start = Instant::now();
    while !alerts.events(env).iter().any(|e| e == event) {
        assert!(
            start.elapsed() < DEADLINE,
            "{event} alerted: {:?}",
            alerts.events(env)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(app: &App, request: Request, until: Until) -> Result<RunOutcome, RotationError> {
    let policy = app.config.policy("p").unwrap().clone();
    run_policy(&app.ctx(&policy), &policy, request, until).await
}

fn manual(grace: Option<Duration>) -> Request {
    Request::Manual {
        grace,
        trigger: Trigger::Manual,
    }
}

/// Runs what is due until the rotation finishes, or panics at the deadline.
async fn until_rotated(app: &App) -> RunOutcome {
    let start = Instant::now();
    loop {
        match run(app, Request::Due, Until::Promoted).await {
            Ok(done @ RunOutcome::Rotated { .. }) => return done,
            other if start.elapsed() > DEADLINE => panic!("not rotated by the deadline: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A hook script: appends its environment to `env.log`, then exits with
/// the number in `rc` (written by the test).
fn hook_script(dir: &Path) -> String {
    let script = dir.join("hook.sh");
    let text = format!(
        "#!/bin/sh\nenv >> {log}\necho --- >> {log}\nexit $(cat {rc})\n",
        log = dir.join("env.log").display(),
        rc = dir.join("rc").display()
    );
    std::fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

fn seed_file_store(env: &TestEnv) -> (String, String) {
    let (id, old) = env.seed_key("made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    (id, old)
}

fn current(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path("secrets/k")).unwrap()
}

#[tokio::test]
async fn a_failing_hook_keeps_the_old_key_and_alerts_and_once_fixed_the_next_pass_revokes() {
    let env = TestEnv::new().await;
    let (_, old) = seed_file_store(&env);
    let (alerts, http_hook) = (Receiver::start().await, Receiver::start().await);
    std::fs::write(env.path("hook.url"), &http_hook.url).unwrap();
    std::fs::write(env.path("rc"), "3").unwrap();
    let script = hook_script(env.dir.path());
    let hooks = format!(
        r#"on_promote = [{{ exec = ["{script}"], timeout = "10s" }}, {{ http = "file:{url}", expect = 200 }}]
revoke = {{ grace = "1s" }}
notify = ["ops"]"#,
        url = env.path("hook.url").display()
    );
    let mut config = policy("p", r#"{ store = "files", secret_id = "k" }"#, &hooks);
    config.push_str(&notifier(&env, "ops", "json", &alerts.url, ""));
    env.write_config(&config);
    let audit = env.path("audit.log");
    with_audit_log(&env, &audit);
    let app = in_process(&env).await;

    let failed = run(&app, manual(None), Until::Revoked).await;
    let message = failed.expect_err("the hook failed").to_string();
    assert!(
        message.contains("on_promote[0] (exec hook.sh) failed"),
        "{message}"
    );
    let new = current(&env);
    assert_ne!(new, old, "the new key is current");
    assert!(
        env.works(&old),
        "the old key is not revoked while a hook fails"
    );
    assert!(env.works(&new));
    let journal = env.journal("p");
    assert_eq!(journal["in_flight"]["step"], "promoted", "{journal}");
    assert!(journal["in_flight"]["after_promote"]["hook_failing_since"].is_string());
    assert_eq!(
        journal["format"], 2,
        "a rekey before hooks would revoke without them: it must refuse this journal"
    );
    alerted(&alerts, &env, "hook_failed").await;
    assert_eq!(
        sample(
            &scrape(&env, &app),
            "rekey_hook_runs_total",
            &[("policy", "p"), ("result", "failed")]
        ),
        Some(1.0)
    );
    assert!(
        http_hook.bodies(&env).is_empty(),
        "hooks run in order: the second waits"
    );

    // Fixed: the next pass (after the backoff) runs both and revokes.
    std::fs::write(env.path("rc"), "0").unwrap();
    let done = until_rotated(&app).await;
    assert!(matches!(done, RunOutcome::Rotated { .. }), "{done:?}");
    assert!(
        !env.works(&old),
        "the old key is revoked once every hook succeeded"
    );
    env.assert_settled(&new, &[]);

    let runs = std::fs::read_to_string(env.path("env.log")).unwrap();
    let last = runs
        .trim_end()
        .trim_end_matches("---")
        .rsplit("---")
        .next()
        .unwrap();
    let mut names: Vec<&str> = (last.lines())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| *k != "PWD" && *k != "SHLVL" && *k != "_")
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "PATH",
            "REKEY_KEY_ID",
            "REKEY_KEY_LABEL",
            "REKEY_POLICY",
            "REKEY_PROVIDER",
            "REKEY_ROTATION_ID",
            "REKEY_SECRET_ID",
            "REKEY_STORE",
        ],
        "a clean environment (the shell adds PWD, SHLVL and _): {last}"
    );
    let journal = env.journal("p");
    let new_id = journal["current"]["id"].as_str().unwrap();
    assert!(last.contains(&format!("REKEY_KEY_ID={new_id}")), "{last}");
    assert!(last.contains("REKEY_POLICY=p"), "{last}");
    let bodies = http_hook.bodies(&env);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body = &bodies[0];
    assert_eq!(body["policy"], "p");
    assert_eq!(body["key_id"], new_id);
    assert_eq!(body["store"], "files");
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "key_id",
            "key_label",
            "policy",
            "provider",
            "rotation_id",
            "secret_id",
            "store"
        ]
    );
    let scraped = scrape(&env, &app);
    let ok = sample(
        &scraped,
        "rekey_hook_runs_total",
        &[("policy", "p"), ("result", "ok")],
    );
    assert_eq!(ok, Some(2.0));
    let steps: Vec<String> = (audit_records(&env, &audit).iter())
        .filter(|r| r["step"] == "hook")
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["failed", "ok", "ok"], "audit step hook");
    env.capture(runs);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_crash_after_promote_runs_the_hooks_on_resume_once() {
    let env = TestEnv::new().await;
    let (_, old) = seed_file_store(&env);
    std::fs::write(env.path("rc"), "0").unwrap();
    let script = hook_script(env.dir.path());
    let hooks = format!(
        r#"on_promote = [{{ exec = ["{script}"] }}]
revoke = {{ grace = "1s" }}"#
    );
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        &hooks,
    ));
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let crashed = env
        .rekey_env(&args, &[("REKEY_FAILPOINT", "hooks:before")])
        .await;
    assert_eq!(crashed.code, None, "aborted at the failpoint: {crashed:?}");
    let journal = env.journal("p");
    assert_eq!(journal["in_flight"]["step"], "promoted", "{journal}");
    assert!(
        !env.path("env.log").exists(),
        "no hook ran before the crash"
    );
    assert!(env.works(&old));

    let start = Instant::now();
    while env.journal("p")["in_flight"].is_object() {
        assert!(start.elapsed() < DEADLINE, "the resumed rotation finished");
        env.cmd("run", &["--once"]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let runs = std::fs::read_to_string(env.path("env.log")).unwrap();
    assert_eq!(runs.matches("---").count(), 1, "the hook ran once: {runs}");
    assert!(!env.works(&old), "revoked after the hook ran");
    env.assert_settled(&current(&env), &[]);
    env.capture(runs);
    env.assert_no_secret_leaked();
}

/// Calls the simulator's chat with `key` every 100 ms until told to stop.
fn consumer(env: &TestEnv, key: String) -> tokio::sync::oneshot::Sender<()> {
    consumer_at(env, Api::OpenRouter, key)
}

fn consumer_at(env: &TestEnv, api: Api, key: String) -> tokio::sync::oneshot::Sender<()> {
    let path = match api {
        Api::ARouter => "/v1/chat/completions",
        _ => "/chat/completions",
    };
    let url = format!("{}{path}", env.sim.url(api));
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let body = serde_json::json!({
            "model": "openai/gpt-4o-mini",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "ping"}],
        });
        loop {
            let _ = http.post(&url).bearer_auth(&key).json(&body).send().await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = &mut stopped => return,
            }
        }
    });
    stop
}

/// Runs what is due until the rotation waits for its old key to go idle.
async fn until_busy(app: &App) {
    let start = Instant::now();
    loop {
        let outcome = run(app, Request::Due, Until::Promoted).await;
        if let Ok(RunOutcome::NotDue {
            why: WaitReason::OldKeyBusy,
            ..
        }) = outcome
        {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "not waiting for idle: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn idle_config(env: &TestEnv, alerts: &Receiver, revoke: &str) {
    let extra = format!("revoke = {revoke}\nnotify = [\"ops\"]");
    let mut config = policy("p", r#"{ store = "files", secret_id = "k" }"#, &extra);
    config.push_str(&notifier(env, "ops", "json", &alerts.url, ""));
    env.write_config(&config);
}

#[tokio::test]
async fn an_old_key_in_use_is_revoked_only_once_it_has_been_idle_for_wait_idle() {
    let env = TestEnv::new().await;
    let (_, old) = seed_file_store(&env);
    let alerts = Receiver::start().await;
    idle_config(
        &env,
        &alerts,
        r#"{ grace = "1s", wait_idle = "2s", max_wait = "5m" }"#,
    );
    let app = in_process(&env).await;
    let stop = consumer(&env, old.clone());

    let promoted = run(&app, manual(None), Until::Promoted).await.unwrap();
    assert!(
        matches!(promoted, RunOutcome::InGrace { .. }),
        "{promoted:?}"
    );
    until_busy(&app).await;
    // Well past grace + wait_idle, the key in use is still live.
    let busy_since = Instant::now();
    while busy_since.elapsed() < Duration::from_secs(5) {
        let _ = run(&app, Request::Due, Until::Promoted).await;
        assert!(env.works(&old), "a key in use is not revoked");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let journal = env.journal("p");
    let watch = &journal["in_flight"]["after_promote"]["idle"];
    assert!(
        watch["why"].as_str().unwrap().contains("spend"),
        "{journal}"
    );
    let status = env.cmd("status", &["--json"]).await;
    assert!(
        status.stdout.contains("old key still in use"),
        "{}",
        status.stdout
    );
    // The gauge, as the daemon's pass feeds it from the journal.
    let policy = app.config.policy("p").unwrap();
    let state = app.state.load(&policy.name).await.unwrap();
    app.observer
        .policy_snapshot(policy, &state, None, chrono::Utc::now());
    let gauge = sample(
        &scrape(&env, &app),
        "rekey_old_key_busy",
        &[("policy", "p")],
    );
    assert_eq!(gauge, Some(1.0));

    drop(stop);
    let done = until_rotated(&app).await;
    assert!(matches!(done, RunOutcome::Rotated { .. }), "{done:?}");
    assert!(!env.works(&old));
    assert!(!alerts.events(&env).iter().any(|e| e.contains("busy")));
    env.assert_settled(&current(&env), &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn past_max_wait_a_busy_key_is_revoked_and_alerted_or_kept_until_grace_0() {
    for on_busy in ["revoke", "keep"] {
        let env = TestEnv::new().await;
        let (_, old) = seed_file_store(&env);
        let alerts = Receiver::start().await;
        let revoke = format!(
            r#"{{ grace = "1s", wait_idle = "2s", max_wait = "3s", on_busy = "{on_busy}" }}"#
        );
        idle_config(&env, &alerts, &revoke);
        let app = in_process(&env).await;
        let _stop = consumer(&env, old.clone());
        run(&app, manual(None), Until::Promoted).await.unwrap();
        until_busy(&app).await;
        if on_busy == "revoke" {
            until_rotated(&app).await;
            assert!(!env.works(&old), "revoked past max_wait");
            alerted(&alerts, &env, "revoked_busy").await;
            continue;
        }
        let start = Instant::now();
        while !alerts.events(&env).contains(&"old_key_busy".to_string()) {
            assert!(start.elapsed() < DEADLINE, "old_key_busy alerted");
            let outcome = run(&app, Request::Due, Until::Promoted).await;
            assert!(!matches!(outcome, Ok(RunOutcome::Rotated { .. })), "kept");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(env.works(&old), "kept (on_busy = \"keep\")");
        let refused = run(&app, manual(None), Until::Promoted).await;
        let refused = refused.expect_err("no new rotation while the old key is kept");
        assert!(refused.to_string().contains("--grace 0"), "{refused}");
        let leaked = run(&app, manual(Some(Duration::ZERO)), Until::Revoked).await;
        assert!(
            matches!(leaked, Ok(RunOutcome::Rotated { .. })),
            "{leaked:?}"
        );
        assert!(!env.works(&old), "--grace 0 revokes the busy key at once");
        env.assert_settled(&current(&env), &[]);
        env.assert_no_secret_leaked();
    }
}

#[tokio::test]
async fn on_a_provider_with_last_use_times_the_old_key_waits_until_its_last_use_is_old_enough() {
    let env = TestEnv::new().await;
    let case = crate::helpers::Case::arouter_guide();
    let (_, old) = env.seed_key_in(Api::ARouter, "made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let extra = format!(
        "{}\nrevoke = {{ grace = \"1s\", wait_idle = \"2s\", max_wait = \"5m\" }}",
        case.policy_lines
    );
    let target = r#"{ store = "files", secret_id = "k" }"#;
    env.write_config_case(&case, &policy("p", target, &extra));
    let app = in_process(&env).await;
    let stop = consumer_at(&env, Api::ARouter, old.clone());

    let promoted = run(&app, manual(None), Until::Promoted).await.unwrap();
    assert!(
        matches!(promoted, RunOutcome::InGrace { .. }),
        "{promoted:?}"
    );
    until_busy(&app).await;
    let journal = env.journal("p");
    let why = journal["in_flight"]["after_promote"]["idle"]["why"]
        .as_str()
        .unwrap();
    assert!(why.starts_with("last used at"), "{journal}");
    let busy_since = Instant::now();
    while busy_since.elapsed() < Duration::from_secs(4) {
        let _ = run(&app, Request::Due, Until::Promoted).await;
        assert!(
            env.works(&old),
            "a key used within wait_idle is not revoked"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(stop);
    let done = until_rotated(&app).await;
    assert!(matches!(done, RunOutcome::Rotated { .. }), "{done:?}");
    assert!(!env.works(&old));
    env.assert_settled(&current(&env), &[]);
    env.assert_no_secret_leaked();
}
