//! Anthropic, assisted rotation, with the real binary against the simulator
//! (and moto): a person places a console-made key as pending; rekey claims
//! it, verifies it with `GET /v1/models`, promotes it and, after the grace,
//! sets the old key `inactive` (or `archived`) through the Admin API. Also
//! waiting for a key, a placed key that does not work, and the crash matrix.
//! The provider client's own behaviour over HTTP is in `api`; the daemon
//! noticing a placed key by itself in `daemon`.

use std::time::Duration;

use rekey::secret::redacted_label;
use rekey::sim::{Api, SimKey};

use crate::crash_matrix::{ASSISTED_FAILPOINTS, Store, crash_matrix, place_pending};
use crate::helpers::{Case, Run, TestEnv, extract, policy};
use crate::moto::{sm_client, unique_secret_name};

mod api;
mod daemon;
mod usage;

const FIELD: &str = "ANTHROPIC_API_KEY";

/// One test's secret: where it lives and in which format.
struct Secret {
    store: Store,
    id: String,
    format: &'static str,
}

impl Secret {
    fn target(&self) -> String {
        let store = match self.store {
            Store::Files => "files",
            Store::Aws => "aws",
        };
        let field = match self.format {
            "raw" => String::new(),
            _ => format!(r#", field = "{FIELD}""#),
        };
        format!(
            r#"{{ store = "{store}", secret_id = "{}", format = "{}"{field} }}"#,
            self.id, self.format
        )
    }

    /// The whole value holding `key`, in this secret's format.
    fn value(&self, key: &str) -> String {
        match self.format {
            "raw" => key.to_string(),
            "json" => format!(r#"{{"OTHER": "kept", "{FIELD}": "{key}"}}"#),
            _ => format!("OTHER=kept\n{FIELD}={key}\n"),
        }
    }

    async fn create(env: &TestEnv, store: Store, format: &'static str, key: &str) -> Secret {
        let id = match store {
            Store::Files => format!("app-{format}"),
            Store::Aws => unique_secret_name("it/anthropic"),
        };
        let secret = Secret { store, id, format };
        let value = secret.value(key);
        match store {
            Store::Files => {
                std::fs::create_dir_all(env.path("secrets")).unwrap();
                std::fs::write(env.path(&format!("secrets/{}", secret.id)), value).unwrap();
            }
            Store::Aws => {
                let client = sm_client().await;
                let create = client.create_secret().name(&secret.id).secret_string(value);
                create.send().await.unwrap();
            }
        }
        secret
    }

    async fn place(&self, env: &TestEnv, key: &str) {
        place_pending(env, self.store, &self.id, &self.value(key)).await;
    }

    async fn current(&self, env: &TestEnv) -> String {
        let value = match self.store {
            Store::Files => std::fs::read_to_string(env.path(&format!("secrets/{}", self.id)))
                .expect("current file"),
            Store::Aws => stage_value(&self.id, "AWSCURRENT")
                .await
                .expect("AWSCURRENT"),
        };
        extract(&value, self.format, FIELD).expect("current holds a key")
    }

    async fn has_pending(&self, env: &TestEnv) -> bool {
        match self.store {
            Store::Files => env.path(&format!("secrets/{}.pending", self.id)).exists(),
            Store::Aws => stage_value(&self.id, "AWSPENDING").await.is_some(),
        }
    }
}

async fn stage_value(id: &str, stage: &str) -> Option<String> {
    let client = sm_client().await;
    let out = client.get_secret_value().secret_id(id).version_stage(stage);
    let out = out.send().await.ok()?;
    out.secret_string().map(str::to_string)
}

fn sim_key(env: &TestEnv, id: &str) -> SimKey {
    let mut keys = env.sim.sim.keys().into_iter();
    keys.find(|k| k.hash == id)
        .expect("the key exists at the simulator")
}

fn status_of(env: &TestEnv, id: &str) -> String {
    let key = sim_key(env, id);
    let status = key.extra.get("status").and_then(|s| s.as_str());
    status.unwrap_or("active").to_string()
}

/// Writes the config: provider `sim` speaking the Anthropic API, one policy
/// (a `verify = ...` line in `extra` replaces the case's).
fn configure(env: &TestEnv, secret: &Secret, extra: &str) {
    let case = Case::anthropic();
    let own_verify = extra.contains("verify =");
    let lines = (case.policy_lines.lines())
        .filter(|line| !(own_verify && line.starts_with("verify =")))
        .collect::<Vec<_>>()
        .join("\n");
    let extra = format!("{lines}\n{extra}");
    env.write_config_case(&case, &policy("p", &secret.target(), &extra));
}

/// The whole assisted cycle for one secret: adopt the console key, claim
/// the placed one, promote it, and retire the old key with `status` after the grace.
async fn assisted_rotation(store: Store, format: &'static str, mode: &str, status: &str) {
    let env = TestEnv::new().await;
    let (old_id, old) = env.seed_key_in(Api::Anthropic, "console key in use");
    let secret = Secret::create(&env, store, format, &old).await;
    configure(
        &env,
        &secret,
        &format!(r#"revoke = {{ grace = "1s", mode = "{mode}" }}"#),
    );

    env.cmd("run", &["--once"]).await.assert_code(0);
    let journal = env.journal("p");
    assert_eq!(
        journal["current"]["id"],
        old_id.as_str(),
        "{format}: adopted by its hint"
    );
    assert!(
        journal["history"].as_array().is_none_or(|h| h.is_empty()),
        "nothing rotated yet"
    );

    let (new_id, new) = env.seed_key_in(Api::Anthropic, "made in the console for rekey");
    secret.place(&env, &new).await;
    env.cmd("run", &["--once"]).await.assert_code(0);

    assert_eq!(
        secret.current(&env).await,
        new,
        "{format}: the placed key is current"
    );
    assert!(
        !secret.has_pending(&env).await,
        "{format}: nothing left pending"
    );
    assert!(
        env.works(&old),
        "{format}: the old key works during the grace"
    );
    assert_eq!(status_of(&env, &old_id), "active");
    env.assert_settled(&new, &[&old]);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    env.cmd("run", &["--once"]).await.assert_code(0);

    assert_eq!(
        status_of(&env, &old_id),
        status,
        "{format}: the old key is retired"
    );
    assert!(
        !env.works(&old),
        "{format}: the old key no longer authenticates"
    );
    assert_eq!(status_of(&env, &new_id), "active");
    env.assert_settled(&new, &[]);
    let journal = env.journal("p");
    assert_eq!(
        journal["current"]["label"],
        redacted_label(&new.clone().into())
    );
    assert_eq!(journal["current"]["id"], new_id.as_str());
    let last = &journal["history"][0];
    assert_eq!(
        (last["kind"].as_str(), last["trigger"].as_str()),
        (Some("rotated"), Some("placed"))
    );
    assert!(journal["in_flight"].is_null());
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_placed_key_on_the_file_store_is_promoted_and_the_old_key_deactivated_after_grace() {
    for format in ["raw", "json", "env"] {
        assisted_rotation(Store::Files, format, "disable", "inactive").await;
    }
}

#[tokio::test]
async fn a_placed_key_in_secrets_manager_is_promoted_and_the_old_key_archived_after_grace() {
    assisted_rotation(Store::Aws, "raw", "archive", "archived").await;
    assisted_rotation(Store::Aws, "json", "disable", "inactive").await;
}

#[tokio::test]
async fn a_due_policy_with_no_key_placed_waits_and_says_where_to_place_one() {
    let env = TestEnv::new().await;
    let (old_id, old) = env.seed_key_in(Api::Anthropic, "console key in use");
    let secret = Secret::create(&env, Store::Files, "raw", &old).await;
    configure(&env, &secret, r#"revoke = { grace = "1s" }"#);
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        config.replace(r#"max_age = "30d""#, r#"max_age = "2s""#),
    )
    .unwrap();
    env.cmd("run", &["--once"]).await.assert_code(0);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let run = env.cmd("run", &["--once"]).await;
    run.assert_code(0);
    let pending_path = env.path("secrets/app-raw.pending");
    assert!(
        run.stderr.contains(&pending_path.display().to_string()),
        "{}",
        run.stderr
    );

    let status = env.cmd("status", &["--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["waiting_for_key"], true, "{}", status.stdout);
    assert_eq!(rows[0]["due_now"], true);
    assert!(rows[0]["waiting_since"].is_string());
    let table = env.cmd("status", &[]).await;
    assert!(
        table.stdout.contains("waiting for a new key"),
        "{}",
        table.stdout
    );

    let rotate = env.cmd("rotate", &["p", "--now"]).await;
    rotate.assert_code(1);
    assert!(
        rotate.stderr.contains("waiting for a new key")
            && rotate.stderr.contains(&pending_path.display().to_string()),
        "{}",
        rotate.stderr
    );

    assert_eq!(secret.current(&env).await, old, "the store is unchanged");
    assert!(!secret.has_pending(&env).await);
    assert_eq!(
        status_of(&env, &old_id),
        "active",
        "nothing changed at the provider"
    );
    assert_eq!(env.sim.sim.keys().len(), 1);
    let journal = env.journal("p");
    assert!(journal["in_flight"].is_null());
    assert!(journal["last_result"].is_null(), "waiting is not a failure");
    assert_eq!(journal["failures"], 0);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn rotate_now_on_secrets_manager_with_no_key_placed_names_the_aws_command() {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key_in(Api::Anthropic, "console key in use");
    let secret = Secret::create(&env, Store::Aws, "json", &old).await;
    configure(&env, &secret, "");

    let rotate = env.cmd("rotate", &["p", "--now"]).await;
    rotate.assert_code(1);
    let command = format!("put-secret-value --secret-id {}", secret.id);
    for needle in [command.as_str(), "AWSPENDING", FIELD] {
        assert!(
            rotate.stderr.contains(needle),
            "{needle}: {}",
            rotate.stderr
        );
    }
    assert_eq!(secret.current(&env).await, old);
    assert!(!secret.has_pending(&env).await);
    env.assert_no_secret_leaked();
}

/// Places `bad`, runs, and checks the rollback left everything as it was.
async fn placed_key_fails(env: &TestEnv, secret: &Secret, old: &str, bad: &str) -> Run {
    secret.place(env, bad).await;
    let run = env.cmd("run", &["--once"]).await;
    run.assert_code(1);
    for needle in [
        "the placed key does not verify",
        "place a working key as pending",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(
        !secret.has_pending(env).await,
        "the placed value is dropped"
    );
    assert_eq!(secret.current(env).await, old, "the old key stays current");
    env.assert_settled(old, &[]);
    let journal = env.journal("p");
    assert_eq!(journal["last_result"]["kind"], "rolled_back");
    assert!(journal["in_flight"].is_null());
    run
}

#[tokio::test]
async fn a_placed_key_that_does_not_verify_is_dropped_and_the_old_key_stays_current() {
    for store in [Store::Files, Store::Aws] {
        let env = TestEnv::new().await;
        let (old_id, old) = env.seed_key_in(Api::Anthropic, "console key in use");
        let secret = Secret::create(&env, store, "raw", &old).await;
        configure(
            &env,
            &secret,
            r#"verify = { mode = "models", timeout = "1s" }"#,
        );
        env.cmd("run", &["--once"]).await.assert_code(0);

        let (dead_id, dead) = env.seed_key_in(Api::Anthropic, "deactivated in the console");
        api::client(&env).disable_key(&dead_id).await.unwrap();
        placed_key_fails(&env, &secret, &old, &dead).await;
        assert_eq!(
            status_of(&env, &dead_id),
            "inactive",
            "{store:?}: untouched"
        );

        // Past the failure backoff (1s in tests), then a key never issued,
        // which must not leak either.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let unknown = format!("sk-ant-api03-{}-unknownAA", "x".repeat(64));
        let run = placed_key_fails(&env, &secret, &old, &unknown).await;
        assert!(!run.stderr.contains(&unknown) && !run.stdout.contains(&unknown));

        assert_eq!(
            status_of(&env, &old_id),
            "active",
            "{store:?}: nothing deactivated"
        );
        let history = env.journal("p")["history"].clone();
        assert_eq!(history.as_array().map(Vec::len), Some(2));
        assert_eq!(history[0]["new_key"]["id"], dead_id.as_str());
        assert!(
            history[1]["new_key"]["id"].is_null(),
            "an unknown key has no id"
        );
        env.assert_no_secret_leaked();
    }
}

#[tokio::test]
async fn an_empty_secret_takes_the_first_placed_key_with_nothing_to_retire() {
    let env = TestEnv::new().await;
    let secret = Secret {
        store: Store::Files,
        id: "fresh".into(),
        format: "raw",
    };
    let target = secret.target().replace(" }", ", create = true }");
    let case = Case::anthropic();
    env.write_config_case(&case, &policy("p", &target, &case.policy_lines));

    env.cmd("rotate", &["p", "--now"]).await.assert_code(1);
    let (_, first) = env.seed_key_in(Api::Anthropic, "the first key");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    secret.place(&env, &first).await;
    env.cmd("run", &["--once"]).await.assert_code(0);

    assert_eq!(secret.current(&env).await, first);
    env.assert_settled(&first, &[]);
    let journal = env.journal("p");
    assert_eq!(journal["history"][0]["kind"], "rotated");
    assert!(journal["history"][0]["old_key"].is_null());
    env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_assisted_step_boundary_is_resumed_on_the_file_store() {
    crash_matrix(&Case::anthropic(), Store::Files, ASSISTED_FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_assisted_step_boundary_is_resumed_on_secrets_manager() {
    crash_matrix(&Case::anthropic(), Store::Aws, ASSISTED_FAILPOINTS).await;
}
