//! OpenAI through the real binary: each rotation's key is a new service
//! account in the policy's project, verified with `GET /models`, and the
//! old account is deleted after the grace — on the file store and on
//! Secrets Manager (moto); adoption, rollback, the failures a person must
//! fix, and the crash matrix. The client's own behaviour is in `client`.

mod client;
mod simulator;
mod usage;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rekey::sim::{
    Api, Faults, RateLimitFault, SIM_OPENAI_DEFAULT_PROJECT, SIM_OPENAI_PROJECT, SimKey,
};

use crate::crash_matrix::{FAILPOINTS, Store, crash_matrix};
use crate::helpers::{Case, TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

/// A seeded service account's key placed in `store`; returns the policy target.
async fn store_key(env: &TestEnv, store: Store, key: &str) -> (String, String) {
    let secret_id = match store {
        Store::Files => {
            std::fs::create_dir_all(env.path("secrets")).unwrap();
            std::fs::write(env.path("secrets/k"), key).unwrap();
            "k".to_string()
        }
        Store::Aws => {
            let id = unique_secret_name("it/openai");
            let client = sm_client().await;
            let create = client.create_secret().name(&id).secret_string(key);
            create.send().await.unwrap();
            id
        }
    };
    let name = match store {
        Store::Files => "files",
        Store::Aws => "aws",
    };
    let target = format!(r#"{{ store = "{name}", secret_id = "{secret_id}" }}"#);
    (target, secret_id)
}

/// The store's current key (AWS: the `AWSCURRENT` stage, asked for explicitly).
async fn current(env: &TestEnv, store: Store, secret_id: &str) -> String {
    match store {
        Store::Files => std::fs::read_to_string(env.path(&format!("secrets/{secret_id}"))).unwrap(),
        Store::Aws => {
            let read = sm_client().await.get_secret_value().secret_id(secret_id);
            let out = read.version_stage("AWSCURRENT").send().await.unwrap();
            out.secret_string().unwrap().to_string()
        }
    }
}

async fn has_pending(env: &TestEnv, store: Store, secret_id: &str) -> bool {
    match store {
        Store::Files => env.path(&format!("secrets/{secret_id}.pending")).exists(),
        Store::Aws => {
            let describe = sm_client().await.describe_secret().secret_id(secret_id);
            let out = describe.send().await.unwrap();
            let stages = out.version_ids_to_stages().into_iter().flatten();
            stages.flat_map(|(_, s)| s).any(|s| s == "AWSPENDING")
        }
    }
}

/// The simulator's OpenAI service accounts.
fn accounts(env: &TestEnv) -> Vec<SimKey> {
    let keys = env.sim.sim.keys().into_iter();
    keys.filter(|k| k.api == Api::OpenAi.as_str()).collect()
}

/// Policy `p` for service accounts of `project`, verified by `/models`
/// within `verify_timeout`, plus `extra` lines.
fn openai_policy(target: &str, project: &str, verify_timeout: &str, extra: &str) -> String {
    let lines = format!(
        "project_id = \"{project}\"\nverify = {{ mode = \"models\", timeout = \"{verify_timeout}\" }}\n{extra}"
    );
    policy("p", target, &lines)
}

/// An environment whose store `k` holds a key a person made in the dashboard.
async fn seeded(faults: Faults) -> (TestEnv, String, String) {
    let env = TestEnv::with_faults(faults).await;
    let (id, old) = env.seed_key_in(Api::OpenAi, "made-in-the-dashboard");
    let (target, _) = store_key(&env, Store::Files, &old).await;
    env.write_config_case(
        &Case::openai(),
        &openai_policy(&target, SIM_OPENAI_PROJECT, "5s", ""),
    );
    (env, id, old)
}

async fn rotation_creates_a_service_account_and_deletes_the_old_one_after_grace(store: Store) {
    let env = TestEnv::new().await;
    let (old_id, old) = env.seed_key_in(Api::OpenAi, "made-in-the-dashboard");
    let (target, secret_id) = store_key(&env, store, &old).await;
    let policy = openai_policy(
        &target,
        SIM_OPENAI_PROJECT,
        "5s",
        "revoke = { grace = \"1s\" }",
    );
    env.write_config_case(&Case::openai(), &policy);

    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);

    let new = current(&env, store, &secret_id).await;
    assert_ne!(new, old, "{store:?}: the key changed");
    let journal = env.journal("p");
    let rotation_id = journal["in_flight"]["id"].as_str().unwrap();
    let account = accounts(&env)
        .into_iter()
        .find(|a| a.secret == new)
        .unwrap();
    assert!(account.hash.starts_with("svc_acct_"), "{}", account.hash);
    assert!(account.name.contains(rotation_id), "{}", account.name);
    assert_eq!(account.extra["project_id"], SIM_OPENAI_PROJECT);
    assert_eq!(journal["current"]["id"], account.hash.as_str());
    assert!(
        env.sim.sim.call_counts()["models"] >= 1,
        "verified via /models"
    );
    assert!(
        !has_pending(&env, store, &secret_id).await,
        "{store:?}: no pending left"
    );
    env.assert_settled(&new, &[&old]);
    assert!(
        env.works(&old),
        "the old key keeps working during the grace"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert!(
        !accounts(&env).iter().any(|a| a.hash == old_id),
        "{store:?}: the old service account is deleted after the grace"
    );
    env.assert_settled(&new, &[]);
    assert_eq!(
        env.journal("p")["history"][0]["old_key"]["id"],
        old_id.as_str()
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_openai_rotation_on_the_file_store_replaces_the_service_account_after_grace() {
    rotation_creates_a_service_account_and_deletes_the_old_one_after_grace(Store::Files).await;
}

#[tokio::test]
async fn an_openai_rotation_into_secrets_manager_replaces_the_service_account_after_grace() {
    rotation_creates_a_service_account_and_deletes_the_old_one_after_grace(Store::Aws).await;
}

#[tokio::test]
async fn a_dashboard_made_service_account_key_is_adopted_by_its_redacted_value_and_deleted() {
    let (env, old_id, old) = seeded(Faults::default()).await;
    let (bystander, _) = env.seed_key_in(Api::OpenAi, "another-team");

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    let alive: Vec<String> = accounts(&env).into_iter().map(|a| a.hash).collect();
    assert!(!alive.contains(&old_id), "the adopted account is deleted");
    assert!(
        alive.contains(&bystander),
        "an unrelated account is left alone"
    );
    assert_eq!(alive.len(), 2, "the new account and the bystander");
    let history = &env.journal("p")["history"][0];
    assert_eq!(history["old_key"]["id"], old_id.as_str());
    assert_eq!(history["old_key"]["adopted"], true);
    assert!(env.works(&new));
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_new_key_that_never_verifies_is_rolled_back_and_its_service_account_deleted() {
    let faults = Faults {
        reject_new_keys: true,
        ..Faults::default()
    };
    let (env, old_id, old) = seeded(faults).await;
    let target = r#"{ store = "files", secret_id = "k" }"#;
    let policy = openai_policy(target, SIM_OPENAI_PROJECT, "2s", "");
    env.write_config_case(&Case::openai(), &policy);

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("rolled back"), "{}", run.stderr);

    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    assert!(!env.path("secrets/k.pending").exists(), "pending dropped");
    let alive: Vec<String> = accounts(&env).into_iter().map(|a| a.hash).collect();
    assert_eq!(alive, [old_id], "the new service account is deleted");
    assert_eq!(env.sim.sim.call_counts()["create"], 1);
    env.assert_settled(&old, &[]);
    let journal = env.journal("p");
    assert_eq!(journal["last_result"]["kind"], "rolled_back");
    assert!(journal["in_flight"].is_null());
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_exhausted_quota_rolls_back_after_one_verification_and_says_to_add_credits() {
    let faults = Faults {
        quota_exhausted: true,
        ..Faults::default()
    };
    let (env, _, old) = seeded(faults).await;

    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(1);

    assert!(
        run.stderr.contains("quota is exhausted; add credits"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.sim.sim.call_counts()["models"],
        1,
        "an exhausted quota is not retried"
    );
    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    assert_eq!(
        env.live_secrets(),
        vec![old.clone()],
        "the new account is deleted"
    );
    assert_eq!(env.journal("p")["last_result"]["kind"], "rolled_back");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn rate_limits_on_create_and_models_are_waited_out_and_the_rotation_completes() {
    let once = || RateLimitFault {
        count: 1,
        retry_after_secs: 1,
    };
    let faults = Faults {
        rate_limit: BTreeMap::from([("create".into(), once()), ("models".into(), once())]),
        ..Faults::default()
    };
    let (env, _, old) = seeded(faults).await;

    let started = Instant::now();
    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);

    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "both Retry-Afters waited"
    );
    let calls = env.sim.sim.call_counts();
    assert_eq!(
        (calls["create"], calls["models"]),
        (2, 2),
        "one refusal, one retry each"
    );
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_wrong_admin_key_fails_after_one_call_naming_the_management_key_setting() {
    let (env, _, old) = seeded(Faults::default()).await;
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let wrong = "sk-admin-wrongwrongwrongwrongwrong";

    let run = env
        .rekey_env(&args, &[(crate::helpers::MGMT_ENV, wrong)])
        .await;
    run.assert_code(1);

    assert!(
        run.stderr.contains("providers.sim.management_key"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("admin key"), "{}", run.stderr);
    assert!(
        !run.stderr.contains(wrong),
        "the wrong key is not echoed whole"
    );
    let calls = env.sim.sim.call_counts();
    assert_eq!(calls["list"], 1, "refused once, not retried: {calls:?}");
    assert!(!calls.contains_key("create"), "nothing was created");
    assert_eq!(std::fs::read_to_string(env.path("secrets/k")).unwrap(), old);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_policy_on_the_default_project_fails_clearly_and_creates_nothing() {
    let (env, _, old) = seeded(Faults::default()).await;
    let target = r#"{ store = "files", secret_id = "k" }"#;
    let policy = openai_policy(target, SIM_OPENAI_DEFAULT_PROJECT, "5s", "");
    env.write_config_case(&Case::openai(), &policy);

    let run = env.cmd("rotate", &["p", "--now"]).await;
    run.assert_code(1);

    assert!(
        run.stderr
            .contains("the Default project cannot hold service accounts"),
        "{}",
        run.stderr
    );
    assert_eq!(env.sim.sim.call_counts()["create"], 1, "not retried");
    assert_eq!(env.live_secrets(), vec![old.clone()]);
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_rotation_crashing_at_any_step_boundary_recovers_on_the_file_store() {
    crash_matrix(&Case::openai(), Store::Files, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_rotation_crashing_at_any_step_boundary_recovers_on_secrets_manager() {
    crash_matrix(&Case::openai(), Store::Aws, FAILPOINTS).await;
}
