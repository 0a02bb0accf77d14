//! OpenRouter workspaces: a listing without `workspace_id` shows the default
//! workspace only, so a provider entry whose keys live elsewhere names its
//! workspace, and rekey sends it on every listing and create. Client and
//! simulator first, then the sweep and adoption of whole rotations.

use rekey::config::ProviderConfig;
use rekey::providers::openrouter::OpenRouter;
use rekey::providers::{KeySpec, Provider};
use rekey::sim::{AfterEffect, Api, Counted, CreateAnswer, Faults, SimHandle};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{MANAGEMENT_KEY, client, config, http, spawn_sim};
use crate::helpers::{Case, TestEnv, policy};

/// With a `/` that must be encoded into the query.
const WORKSPACE: &str = "ws-team/1";

fn in_workspace(sim: &SimHandle, workspace: &str) -> OpenRouter {
    let config = ProviderConfig {
        workspace_id: Some(workspace.to_string()),
        limits: Default::default(),
        ..config(&sim.base_url)
    };
    OpenRouter::new(&config, SecretString::from(MANAGEMENT_KEY)).expect("client builds")
}

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn names(keys: &[rekey::providers::KeyInfo]) -> Vec<&str> {
    keys.iter().map(|k| k.name.as_str()).collect()
}

#[tokio::test]
async fn keys_of_another_workspace_are_listed_only_by_a_client_that_names_it() {
    let sim = spawn_sim(Faults::default()).await;
    let default = client(&sim);
    let team = in_workspace(&sim, WORKSPACE);
    default.create_key(&spec("default-1")).await.unwrap();
    let made = team.create_key(&spec("team-1")).await.unwrap();

    let held = sim.sim.keys();
    let workspace_of = |name: &str| {
        let key = held.iter().find(|k| k.name == name).unwrap();
        key.extra.get("workspace_id").cloned()
    };
    assert_eq!(workspace_of("team-1"), Some(json!(WORKSPACE)), "made in it");
    assert_eq!(workspace_of("default-1"), None);

    assert_eq!(names(&default.list_keys().await.unwrap()), ["default-1"]);
    assert_eq!(names(&team.list_keys().await.unwrap()), ["team-1"]);
    let other = in_workspace(&sim, "ws-empty");
    assert!(other.list_keys().await.unwrap().is_empty());
    let got = default.get_key(&made.id).await.unwrap();
    assert_eq!(
        got.map(|k| k.name).as_deref(),
        Some("team-1"),
        "get is by hash"
    );
}

/// Mints a key in `workspace` as a person would in the dashboard; returns
/// (hash, secret).
async fn mint(env: &TestEnv, workspace: &str, name: &str) -> (String, String) {
    let answer = http()
        .post(format!("{}/keys", env.sim.url(Api::OpenRouter)))
        .bearer_auth(&env.mgmt_key)
        .json(&json!({ "name": name, "workspace_id": workspace }))
        .send()
        .await
        .expect("simulator answers");
    assert_eq!(answer.status(), 201);
    let body: Value = answer.json().await.unwrap();
    let hash = body["data"]["hash"].as_str().unwrap().to_string();
    (hash, body["key"].as_str().unwrap().to_string())
}

fn team_case() -> Case {
    Case {
        provider_lines: format!("workspace_id = {WORKSPACE:?}"),
        ..Case::openrouter()
    }
}

/// A key minted in the team workspace, in `secrets/k`, under policy `p`.
async fn seeded(env: &TestEnv, case: &Case) -> (String, String) {
    let (hash, old) = mint(env, WORKSPACE, "made-by-hand").await;
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let target = r#"{ store = "files", secret_id = "k" }"#;
    env.write_config_case(case, &policy("p", target, ""));
    (hash, old)
}

#[tokio::test]
async fn a_key_in_the_named_workspace_is_adopted_and_revoked_and_the_new_key_made_there() {
    let env = TestEnv::new().await;
    let (hash, old) = seeded(&env, &team_case()).await;

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let history = &env.journal("p")["history"][0];
    assert_eq!(history["old_key"]["id"], hash.as_str());
    assert!(!env.works(&old), "the adopted key is revoked");
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    let held = env.sim.sim.keys();
    let key = held.iter().find(|k| k.secret == new).expect("new key");
    assert_eq!(key.extra.get("workspace_id"), Some(&json!(WORKSPACE)));
    env.assert_settled(&new, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn without_its_workspace_the_key_is_invisible_and_left_alive() {
    let env = TestEnv::new().await;
    let (_, old) = seeded(&env, &Case::openrouter()).await;

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    let history = &env.journal("p")["history"][0];
    assert_eq!(
        history["old_key"]["id"],
        Value::Null,
        "not found at the provider"
    );
    assert!(env.works(&old), "a key rekey cannot see is never revoked");
}

#[tokio::test]
async fn a_create_that_lands_in_the_named_workspace_and_answers_503_is_swept_there() {
    let faults = Faults {
        after_effect: AfterEffect {
            create: Some(Counted::next(1, CreateAnswer::Unavailable)),
            ..AfterEffect::default()
        },
        ..Faults::default()
    };
    let env = TestEnv::new().await;
    let (_, old) = seeded(&env, &team_case()).await;
    env.sim.sim.set_faults(faults);

    let failed = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    failed.assert_code(1);
    assert!(
        failed.stderr.contains("found 1 key"),
        "the sweep listed the workspace the key was made in:\n{}",
        failed.stderr
    );
    assert_eq!(env.live_secrets(), vec![old], "the orphan is deleted");
    env.assert_no_secret_leaked();
}
