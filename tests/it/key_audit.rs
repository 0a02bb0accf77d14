//! `rekey audit` against the simulator and an AWS store (issue 15): a
//! current key, a key in grace, an orphan (named by the policy's template,
//! its rotation in no journal, as a crash with a lost journal leaves), an
//! unmanaged key and a disabled one, each classified; exit 1 for the
//! orphan; `--delete-orphans` lists, `--yes` deletes exactly the orphan.

use serde_json::Value;

use rekey::sim::Api;

use crate::helpers::{TestEnv, policy};
use crate::moto::unique_secret_name;

fn class_of<'a>(audit: &'a Value, key_id: &str) -> &'a str {
    let keys = audit["keys"].as_array().expect("keys");
    let key = keys.iter().find(|k| k["key_id"] == key_id);
    key.unwrap_or_else(|| panic!("{key_id} listed: {audit}"))["class"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn every_key_is_classified_and_only_the_orphan_is_deleted() {
    let env = TestEnv::new().await;
    let secret = unique_secret_name("audit");
    let target = format!(r#"{{ store = "aws", secret_id = "{secret}", create = true }}"#);
    // `r` never rotates: its file store only holds a value by hand.
    let mut config = policy("p", &target, r#"revoke = { grace = "1h" }"#);
    config.push_str(&policy("r", r#"{ store = "files", secret_id = "r" }"#, ""));
    env.write_config(&config);
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let journal = env.journal("p");
    let current = journal["current"]["id"].as_str().unwrap().to_string();
    let in_grace = journal["in_flight"]["old_key"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let lost_rotation = uuid::Uuid::now_v7().to_string();
    let (orphan, _) = env.seed_key(&format!("it-p-{lost_rotation}"));
    // Another orphan by name, but a store of the same provider holds it:
    // never deleted.
    let (held, held_secret) = env.seed_key(&format!("it-p-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/r"), &held_secret).unwrap();
    let (unmanaged, _) = env.seed_key("made-by-hand");
    let (disabled, _) = env.seed_key("switched-off");
    let url = format!("{}/keys/{disabled}", env.sim.url(Api::OpenRouter));
    let answer = reqwest::Client::new()
        .patch(url)
        .bearer_auth(&env.mgmt_key)
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");

    // Made at the provider's API by hand: one whose limit a call used up,
    // one that expires in three days.
    let http = reqwest::Client::new();
    let keys_url = format!("{}/keys", env.sim.url(Api::OpenRouter));
    let mut made = Vec::new();
    let in_3_days = chrono::Utc::now() + chrono::TimeDelta::days(3);
    for body in [
        serde_json::json!({"name": "capped", "limit": 0.00001}),
        serde_json::json!({"name": "short-lived", "expires_at": in_3_days.to_rfc3339()}),
    ] {
        let answer = http.post(&keys_url).bearer_auth(&env.mgmt_key).json(&body);
        let answer: Value = answer.send().await.unwrap().json().await.unwrap();
        let hash = answer["data"]["hash"].as_str().unwrap().to_string();
        made.push((hash, answer["key"].as_str().unwrap().to_string()));
    }
    let chat = format!("{}/chat/completions", env.sim.url(Api::OpenRouter));
    let ping = serde_json::json!({"model": "openai/gpt-4o-mini", "max_tokens": 1,
        "messages": [{"role": "user", "content": "ping"}]});
    let spent = http
        .post(&chat)
        .bearer_auth(&made[0].1)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert!(spent.status().is_success(), "{spent:?}");
    let (over_limit, expiring) = (made[0].0.clone(), made[1].0.clone());

    let run = env.cmd("audit", &["--json"]).await;
    run.assert_code(1);
    let audit: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(class_of(&audit, &current), "current");
    assert_eq!(class_of(&audit, &in_grace), "in_grace");
    assert_eq!(class_of(&audit, &orphan), "orphan");
    assert_eq!(class_of(&audit, &unmanaged), "unmanaged");
    assert_eq!(class_of(&audit, &disabled), "disabled");
    let keys = audit["keys"].as_array().unwrap();
    assert_eq!(class_of(&audit, &held), "orphan");
    assert_eq!(class_of(&audit, &over_limit), "over_limit");
    assert_eq!(class_of(&audit, &expiring), "expiring");
    assert_eq!(keys.len(), 8, "{audit}");
    let orphan_row = keys
        .iter()
        .find(|k| k["key_id"] == orphan.as_str())
        .unwrap();
    assert_eq!(orphan_row["policy"], "p");
    assert_eq!(orphan_row["rotation_id"], lost_rotation.as_str());
    let policies =
        serde_json::json!([{"policy": "p", "class": "ok"}, {"policy": "r", "class": "ok"}]);
    assert_eq!(audit["policies"], policies);
    assert_eq!(audit["errors"], serde_json::json!([]));
    assert_eq!(audit["summary"]["orphan"], 2);
    assert_eq!(audit["summary"]["current"], 1);
    for field in [
        "provider",
        "key_id",
        "label",
        "name",
        "class",
        "policy",
        "rotation_id",
    ] {
        assert!(
            keys.iter().all(|k| k.get(field).is_some()),
            "{field}: {audit}"
        );
    }

    let table = env.cmd("audit", &[]).await;
    table.assert_code(1);
    assert!(table.stdout.contains("orphan"), "{}", table.stdout);
    assert!(table.stdout.contains("summary: "), "{}", table.stdout);

    let listed = env.cmd("audit", &["--delete-orphans"]).await;
    listed.assert_code(1);
    assert!(
        listed
            .stdout
            .contains(&format!("would delete orphan {orphan}")),
        "{}",
        listed.stdout
    );
    assert_eq!(env.sim.sim.keys().len(), 8, "nothing deleted without --yes");
    env.cmd("audit", &["--yes"]).await.assert_code(2);

    let deleted = env.cmd("audit", &["--delete-orphans", "--yes"]).await;
    deleted.assert_code(1);
    assert!(
        deleted.stdout.contains(&format!("deleted orphan {orphan}")),
        "{}",
        deleted.stdout
    );
    assert!(
        deleted
            .stdout
            .contains(&format!("not deleting orphan {held}"))
            && deleted
                .stdout
                .contains("the store of policy r holds a value with its label"),
        "{}",
        deleted.stdout
    );
    let left: Vec<String> = env.sim.sim.keys().into_iter().map(|k| k.hash).collect();
    let mut want = vec![
        current.clone(),
        in_grace.clone(),
        held.clone(),
        unmanaged,
        disabled,
    ];
    want.extend([over_limit, expiring]);
    let mut got = left.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "exactly the orphan is gone");

    let after = env.cmd("audit", &["--json"]).await;
    after.assert_code(1);
    let after: Value = serde_json::from_str(&after.stdout).unwrap();
    assert_eq!(
        after["summary"]["orphan"], 1,
        "only the held one is left: {after}"
    );
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_provider_that_does_not_answer_makes_the_audit_incomplete() {
    let env = TestEnv::new().await;
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k", create = true }"#,
        "",
    ));
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let config = env.config_path();
    let args = ["audit", "-c", config.to_str().unwrap(), "--json"];
    let wrong = [(
        crate::helpers::MGMT_ENV,
        "sk-or-v1-wrong-management-key-0123456789",
    )];
    let run = env.rekey_env(&args, &wrong).await;
    run.assert_code(3);
    let audit: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(audit["errors"][0]["provider"], "sim", "{audit}");
    let args = [
        "audit",
        "-c",
        config.to_str().unwrap(),
        "--delete-orphans",
        "--yes",
    ];
    let refused = env.rekey_env(&args, &wrong).await;
    refused.assert_code(3);
    assert!(
        refused.stderr.contains("not deleting any orphan"),
        "{}",
        refused.stderr
    );
    let bad = env.cmd("audit", &["--idle", "soon"]).await;
    bad.assert_code(2);
    env.assert_no_secret_leaked();
}
