//! Credentials as an operator meets them (issue 10): an unreadable
//! credential is a runtime failure (exit 1), never "bad config" (2); the
//! service waits for it with `/readyz` 503 instead of exiting; `check`
//! names every unreadable reference and, `--online`, every provider entry
//! and store that does not answer; `rotate X` needs only X's credentials;
//! a dry run reports a current key the provider does not know.

use std::time::{Duration, Instant};

use crate::daemon_proc::{RunningDaemon, write_config_with_daemon};
use crate::helpers::{MGMT_ENV, Run, TestEnv, policy};

const FILES_K: &str = r#"{ store = "files", secret_id = "k" }"#;

/// A seeded key at the simulator, in the file store as secret `k`, and policy `p` on it.
async fn seeded() -> TestEnv {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy("p", FILES_K, ""));
    env
}

/// Replaces the text `from` of the config with `to` (it must be there).
fn edit_config(env: &TestEnv, from: &str, to: &str) {
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(text.contains(from), "config has {from:?}:\n{text}");
    std::fs::write(env.config_path(), text.replacen(from, to, 1)).unwrap();
}

/// A second OpenRouter entry `other` at the same simulator, reading `reference`.
fn add_provider_other(env: &TestEnv, reference: &str) {
    let entry = format!(
        "[providers.other]\nkind = \"openrouter\"\nbase_url = \"{}\"\nmanagement_key = \"{reference}\"\n\n[stores.files]",
        env.sim.url(rekey::sim::Api::OpenRouter)
    );
    edit_config(env, "[stores.files]", &entry);
}

/// `rekey <cmd> -c <config> <rest>` without the management key in the environment.
async fn without_mgmt_key(env: &TestEnv, cmd: &str, rest: &[&str]) -> Run {
    let config = env.config_path();
    let mut args = vec![cmd, "-c", config.to_str().unwrap()];
    args.extend_from_slice(rest);
    let mut command = env.command(&args, &[]);
    command.env_remove(MGMT_ENV);
    env.keep(command.output().await.unwrap())
}

/// Polls `GET /readyz` until it answers `status` (or 30 s pass); its body.
async fn readyz_until(daemon: &RunningDaemon<'_>, status: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = daemon.get("/readyz").await;
        let got = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {status} within 30 s; last {got}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_waits_for_a_management_key_file_then_becomes_ready() {
    let env = seeded().await;
    let key_file = env.path("mounted-later/management.key");
    let reference = format!("file:{}", key_file.display());
    edit_config(&env, &format!("env:{MGMT_ENV}"), &reference);

    let daemon = RunningDaemon::start(&env, &[]).await;
    let waiting = readyz_until(&daemon, 503).await;
    let reason = waiting["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("providers.sim.management_key")
            && reason.contains(&*key_file.to_string_lossy()),
        "the reason names the reference and the file: {waiting}"
    );
    let health = daemon.get("/healthz").await;
    assert_eq!(health.status().as_u16(), 200, "alive while waiting");
    let nope = daemon.get("/nope").await;
    assert_eq!(nope.status().as_u16(), 404);
    let body: serde_json::Value = nope.json().await.expect("a JSON 404 while waiting");
    assert_eq!(body["error"], "not_found", "{body}");
    daemon
        .wait_for_log("not ready: cannot read credentials; trying again")
        .await;

    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::write(&key_file, &env.mgmt_key).unwrap();
    let ready = readyz_until(&daemon, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");

    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_credentials_exits_0_promptly() {
    let env = seeded().await;
    edit_config(&env, MGMT_ENV, "REKEY_IT_NEVER_SET");
    let daemon = RunningDaemon::start(&env, &[]).await;
    let waiting = readyz_until(&daemon, 503).await;
    assert!(
        waiting["reason"]
            .as_str()
            .is_some_and(|r| r.contains("environment variable REKEY_IT_NEVER_SET is not set")),
        "{waiting}"
    );
    let rotate = daemon.post("/v1/policies/p/rotate", None, None).await;
    assert_eq!(rotate.status().as_u16(), 503, "no rotation while waiting");

    daemon.signal(libc::SIGTERM);
    let exited = daemon.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(exited.code, Some(0), "{}", exited.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_fixed_in_the_config_while_waiting_is_read_on_sighup() {
    let env = seeded().await;
    edit_config(&env, MGMT_ENV, "REKEY_IT_NEVER_SET");
    let mut daemon = RunningDaemon::start(&env, &[]).await;
    readyz_until(&daemon, 503).await;
    // The real API takes the socket over: no connection to the waiting
    // server may be kept for reuse across the switch.
    let waiting = daemon.get("/readyz").await;
    assert_eq!(waiting.headers()["connection"], "close");

    edit_config(&env, "REKEY_IT_NEVER_SET", MGMT_ENV);
    daemon.signal(libc::SIGHUP);
    let ready = readyz_until(&daemon, 200).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(
        daemon.is_alive(),
        "SIGHUP while waiting does not end the process"
    );
    daemon.stop().await;
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn rotate_with_the_management_key_unset_exits_1_naming_it() {
    let env = seeded().await;
    let run = without_mgmt_key(&env, "rotate", &["p", "--now"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("providers.sim.management_key")
            && run
                .stderr
                .contains(&format!("environment variable {MGMT_ENV} is not set")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn rotate_names_an_unreadable_webhook_url_with_the_management_key() {
    let env = TestEnv::new().await;
    let mut config = policy("p", FILES_K, r#"notify = ["hook"]"#);
    config.push_str("\n[notify.hook]\nformat = \"json\"\nurl = \"env:REKEY_IT_HOOK_NEVER_SET\"\n");
    env.write_config(&config);

    let run = without_mgmt_key(&env, "rotate", &["p", "--now"]).await;
    run.assert_code(1);
    for expected in [
        "notify.hook.url: environment variable REKEY_IT_HOOK_NEVER_SET is not set",
        "providers.sim.management_key: environment variable",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected:?} in:\n{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn check_names_every_unreadable_reference_at_once_and_exits_1() {
    let env = seeded().await;
    let token = "admin_token = \"env:REKEY_IT_TOKEN_NEVER_SET\"";
    write_config_with_daemon(&env, token, &policy("p", FILES_K, ""));
    add_provider_other(&env, "file:/nonexistent/rekey-it/other.key");

    let run = without_mgmt_key(&env, "check", &[]).await;
    run.assert_code(1);
    for expected in [
        format!("providers.sim.management_key: environment variable {MGMT_ENV} is not set"),
        "providers.other.management_key: cannot read /nonexistent/rekey-it/other.key".into(),
        "daemon.admin_token: environment variable REKEY_IT_TOKEN_NEVER_SET is not set".into(),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "{expected:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stdout.contains("  p: provider sim"),
        "the policy lines are still printed: {}",
        run.stdout
    );
}

#[tokio::test]
async fn check_lists_aws_sm_references_as_not_checked_offline() {
    let env = seeded().await;
    add_provider_other(&env, "aws-sm:rekey/it/other");
    let run = env.cmd("check", &[]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("providers.other.management_key: aws-sm: not checked offline (use --online)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("providers.sim.management_key: readable"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn check_online_asks_each_provider_and_store() {
    let env = seeded().await;
    let run = env.cmd("check", &["--online"]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("providers.sim: ok (management key works, 1 key visible)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stores.files: ok (read secret k)"),
        "{}",
        run.stdout
    );

    let config = env.config_path();
    let args = ["check", "-c", config.to_str().unwrap(), "--online"];
    let wrong = env.rekey_env(&args, &[(MGMT_ENV, "sk-or-v1-wrong")]).await;
    wrong.assert_code(1);
    assert!(
        wrong.stderr.contains("error: providers.sim: "),
        "names the provider entry: {}",
        wrong.stderr
    );
    assert!(
        wrong.stdout.contains("stores.files: ok"),
        "the store is still checked: {}",
        wrong.stdout
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn check_online_reads_aws_sm_references_and_asks_the_aws_store() {
    let client = crate::moto::sm_client().await;
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("existing");
    let target = crate::moto::unique_secret_name("it/check");
    let mgmt = crate::moto::unique_secret_name("it/check-mgmt");
    for (name, value) in [(&target, &old), (&mgmt, &env.mgmt_key)] {
        let created = client.create_secret().name(name).secret_string(value);
        created.send().await.unwrap();
    }
    let on_aws = format!(r#"{{ store = "aws", secret_id = "{target}" }}"#);
    env.write_config(&policy("p", &on_aws, ""));
    edit_config(&env, &format!("env:{MGMT_ENV}"), &format!("aws-sm:{mgmt}"));
    let moto = crate::moto::moto_url();
    let aws = [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let config = env.config_path();
    let offline_args = ["check", "-c", config.to_str().unwrap()];
    let online_args = ["check", "-c", config.to_str().unwrap(), "--online"];

    let offline = env.rekey_env(&offline_args, &aws).await;
    offline.assert_code(0);
    let not_checked = "providers.sim.management_key: aws-sm: not checked offline (use --online)";
    assert!(offline.stdout.contains(not_checked), "{}", offline.stdout);

    let online = env.rekey_env(&online_args, &aws).await;
    online.assert_code(0);
    for expected in [
        "providers.sim.management_key: readable".to_string(),
        "providers.sim: ok (management key works, 1 key visible)".into(),
        format!("stores.aws: ok (read secret {target})"),
    ] {
        assert!(
            online.stdout.contains(&expected),
            "{expected:?} in:\n{}",
            online.stdout
        );
    }

    edit_config(
        &env,
        &format!("aws-sm:{mgmt}"),
        &format!("aws-sm:{mgmt}-gone"),
    );
    let missing = env.rekey_env(&online_args, &aws).await;
    missing.assert_code(1);
    let unreadable = format!(
        "error: providers.sim.management_key: GetSecretValue on {mgmt}-gone: ResourceNotFoundException"
    );
    assert!(missing.stderr.contains(&unreadable), "{}", missing.stderr);
    assert!(
        missing
            .stdout
            .contains("providers.sim: not checked (its management key cannot be read)"),
        "{}",
        missing.stdout
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_dry_run_needs_only_its_own_policys_credentials() {
    let env = seeded().await;
    add_provider_other(&env, "env:REKEY_IT_OTHER_NEVER_SET");
    let other = policy("q", r#"{ store = "files", secret_id = "q" }"#, "")
        .replace("provider = \"sim\"", "provider = \"other\"");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(env.config_path(), text + &other).unwrap();

    let run = env.cmd("rotate", &["p", "--dry-run"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("management key works (1 key visible)"),
        "{}",
        run.stdout
    );
    let unrelated = env.cmd("rotate", &["q", "--dry-run"]).await;
    unrelated.assert_code(1);
    assert!(
        unrelated.stderr.contains("providers.other.management_key"),
        "{}",
        unrelated.stderr
    );
}

#[tokio::test]
async fn a_dry_run_reports_a_recorded_key_deleted_at_the_provider() {
    let env = seeded().await;
    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let id = env.journal("p")["current"]["id"]
        .as_str()
        .expect("the journal records the current key's id")
        .to_string();
    let clean = env.cmd("rotate", &["p", "--dry-run"]).await;
    clean.assert_code(0);

    let url = format!("{}/keys/{id}", env.sim.url(rekey::sim::Api::OpenRouter));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deleted = http
        .delete(url)
        .bearer_auth(&env.mgmt_key)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let run = env.cmd("rotate", &["p", "--dry-run"]).await;
    run.assert_code(1);
    let expected = format!("store's current key (id {id}) is unknown to provider sim");
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stdout.contains("management key works (0 keys visible)"),
        "{}",
        run.stdout
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_dry_run_reports_a_stored_key_the_provider_never_issued() {
    let env = TestEnv::new().await;
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    let stranger = format!("sk-or-v1-{:064x}", 7u128);
    std::fs::write(env.path("secrets/k"), &stranger).unwrap();
    env.write_config(&policy("p", FILES_K, ""));

    let run = env.cmd("rotate", &["p", "--dry-run"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("is unknown to provider sim") && run.stderr.contains("never revoke it"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&stranger[12..]),
        "the key is not printed"
    );
}
