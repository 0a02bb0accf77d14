//! Full rotations into AWS Secrets Manager (moto), `raw` and `json`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;

use crate::helpers::{TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

async fn value(client: &Client, id: &str, stage: &str) -> Option<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .ok()?;
    out.secret_string().map(str::to_string)
}

/// version id -> its stages
async fn stages(client: &Client, id: &str) -> BTreeMap<String, Vec<String>> {
    let out = client.describe_secret().secret_id(id).send().await.unwrap();
    out.version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_rotation_into_secrets_manager_moves_current_and_previous_and_revokes_after_grace() {
    let client = sm_client().await;
    for format in ["raw", "json"] {
        let env = TestEnv::new().await;
        let (_, old) = env.seed_key("legacy");
        let id = unique_secret_name("it/rotate");
        let initial = match format {
            "raw" => old.clone(),
            _ => format!(r#"{{"OTHER": "keep me", "ratio": 1.10, "OPENROUTER_API_KEY": "{old}"}}"#),
        };
        client
            .create_secret()
            .name(&id)
            .secret_string(&initial)
            .send()
            .await
            .unwrap();
        let field = if format == "json" {
            r#", field = "OPENROUTER_API_KEY""#
        } else {
            ""
        };
        let target =
            format!(r#"{{ store = "aws", secret_id = "{id}", format = "{format}"{field} }}"#);
        env.write_config(&policy("p", &target, "revoke = { grace = \"1s\" }"));

        env.cmd("rotate", &["p", "--now"]).await.assert_code(0);

        let current = value(&client, &id, "AWSCURRENT").await.unwrap();
        let previous = value(&client, &id, "AWSPREVIOUS").await.unwrap();
        assert_eq!(
            previous, initial,
            "{format}: AWSPREVIOUS is the old value, unchanged"
        );
        let new = match format {
            "raw" => current.clone(),
            _ => {
                assert!(
                    current.contains(r#""OTHER": "keep me""#)
                        && current.contains(r#""ratio": 1.10"#),
                    "{current:?}"
                );
                let doc: serde_json::Value = serde_json::from_str(&current).unwrap();
                doc["OPENROUTER_API_KEY"].as_str().unwrap().to_string()
            }
        };
        assert_ne!(new, old);
        let all = stages(&client, &id).await;
        assert!(
            all.values().flatten().all(|s| s != "AWSPENDING"),
            "no AWSPENDING left: {all:?}"
        );
        env.assert_settled(&new, &[&old]);

        tokio::time::sleep(Duration::from_millis(1200)).await;
        env.cmd("run", &["--once"]).await.assert_code(0);
        assert!(
            !env.live_secrets().contains(&old),
            "{format}: the old key is gone after the grace"
        );
        env.assert_settled(&new, &[]);
        env.assert_no_secret_leaked();
    }
}

#[tokio::test]
async fn a_secret_that_is_not_a_json_object_fails_clearly_and_creates_nothing() {
    let client = sm_client().await;
    let env = TestEnv::new().await;
    let id = unique_secret_name("it/notjson");
    client
        .create_secret()
        .name(&id)
        .secret_string("just-a-string")
        .send()
        .await
        .unwrap();
    let target =
        format!(r#"{{ store = "aws", secret_id = "{id}", format = "json", field = "K" }}"#);
    env.write_config(&policy("p", &target, ""));

    let run = env.cmd("rotate", &["p", "--now"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("not a JSON object"), "{}", run.stderr);
    assert!(env.live_secrets().is_empty(), "no key was created");
    assert_eq!(stages(&client, &id).await.len(), 1, "no version was added");
}

mod calls;

mod revoke;
