//! Opening the table: created (on-demand, `pk` S) and waited for with
//! `create_table`, refused with a message naming the table, region and IAM
//! actions without it, refused when its key schema is another one; and the
//! `rekey` binary on a DynamoDB state: `check --online`, a rotation whose
//! journal holds no key, `status` read from the table.

use super::*;

#[tokio::test]
async fn create_table_creates_an_on_demand_table_keyed_by_pk_and_waits_for_it() {
    let (config, _store) = fresh().await;
    let out = (client().describe_table())
        .table_name(&config.table)
        .send()
        .await
        .unwrap();
    let table = out.table().unwrap();
    assert_eq!(table.table_status().unwrap().as_str(), "ACTIVE");
    let keys: Vec<_> = (table.key_schema().iter())
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(keys, vec![("pk".to_string(), "HASH".to_string())]);
    let billing = table.billing_mode_summary().and_then(|b| b.billing_mode());
    assert_eq!(billing.map(|b| b.as_str()), Some("PAY_PER_REQUEST"));
    let existing = DynamoConfig {
        create_table: false,
        ..config
    };
    DynamoStateStore::open(&existing)
        .await
        .expect("opens as it is");
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_it_the_region_and_the_iam_actions() {
    let config = table_config(&moto_url(), false);
    let err = DynamoStateStore::open(&config)
        .await
        .map(|_| ())
        .unwrap_err();
    let text = err.to_string();
    for part in [
        &format!("DynamoDB table {} in us-east-1", config.table),
        "does not exist",
        "daemon.dynamodb.create_table = true",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    let checked = DynamoStateStore::check(&config).await.unwrap_err();
    assert!(checked.contains("does not exist"), "{checked}");
    let creatable = DynamoConfig {
        create_table: true,
        ..config.clone()
    };
    let said = DynamoStateStore::check(&creatable).await.unwrap();
    assert!(said.contains("create_table = true creates it"), "{said}");
    let gone = (client().describe_table())
        .table_name(&config.table)
        .send()
        .await;
    assert!(gone.is_err(), "check created nothing");
}

#[tokio::test]
async fn a_table_with_another_key_schema_is_refused() {
    let config = table_config(&moto_url(), false);
    (client().create_table())
        .table_name(&config.table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = DynamoStateStore::open(&config)
        .await
        .map(|_| ())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("has key schema [id (HASH)]"), "{text}");
    assert!(text.contains("partition key \"pk\" of type S"), "{text}");
}

/// The test env's config with its state moved to a new table at moto.
fn on_dynamodb(env: &TestEnv, create_table: bool) -> String {
    on_dynamodb_with(env, create_table, "10s")
}

fn on_dynamodb_with(env: &TestEnv, create_table: bool, lease: &str) -> String {
    let table = format!("it-{}", uuid::Uuid::now_v7());
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    let file_state = format!("state = \"file:{}\"", env.path("state").display());
    assert!(config.contains(&file_state));
    let config = config.replace(&file_state, &format!("state = \"dynamodb:{table}\""))
        + &format!(
            "\n[daemon.dynamodb]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             create_table = {create_table}\nlease = \"{lease}\"\n",
            moto_url()
        );
    std::fs::write(env.config_path(), config).unwrap();
    table
}

#[tokio::test]
async fn the_binary_checks_rotates_and_reports_on_a_table_and_the_table_holds_no_key() {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/llm"), &old).unwrap();
    let target = r#"{ store = "files", secret_id = "llm", format = "raw" }"#;
    env.write_config(&policy("p", target, ""));
    let table = on_dynamodb(&env, false);

    let missing = env.cmd("check", &["--online"]).await;
    missing.assert_code(1);
    assert!(
        missing.stderr.contains(&format!(
            "error: daemon.state: state dynamodb:{table}: DynamoDB table {table} in us-east-1"
        )),
        "{}",
        missing.stderr
    );
    let refused = env.cmd("rotate", &["p", "--now"]).await;
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("does not exist"),
        "{}",
        refused.stderr
    );

    let config = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        config.replace("create_table = false", "create_table = true"),
    )
    .unwrap();
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let new = std::fs::read_to_string(env.path("secrets/llm")).unwrap();
    assert_ne!(new.trim(), old, "rotated");
    let lease = item(&table, "lease#file:").await;
    assert!(
        lease.is_none(),
        "lease items are keyed by the secret's identity"
    );
    let scan = (client().scan()).table_name(&table).send().await.unwrap();
    let leases: Vec<_> = (scan.items().iter())
        .filter(|i| text(i, "pk").starts_with("lease#file:"))
        .collect();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(
        text(leases[0], "owner"),
        "",
        "released before the process exited"
    );
    env.cmd("check", &["--online"]).await.assert_code(0);
    let offline = env.cmd("check", &[]).await;
    offline.assert_code(0);
    assert!(
        offline.stdout.contains(&format!(
            "daemon.state: dynamodb:{table} in us-east-1: not checked offline"
        )),
        "{}",
        offline.stdout
    );
    assert!(
        offline.stdout.contains("next due unknown offline"),
        "{}",
        offline.stdout
    );
    let online = env.cmd("check", &["--online"]).await;
    assert!(
        online.stdout.contains("next due 20"),
        "from the table: {}",
        online.stdout
    );

    let status = env.cmd("status", &["--json"]).await;
    status.assert_code(0);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        rows[0]["in_flight"]["step"], "promoted",
        "{}",
        status.stdout
    );
    assert!(rows[0]["current_label"].is_string(), "{}", status.stdout);

    let scan = (client().scan()).table_name(&table).send().await.unwrap();
    let dump = format!("{:?}", scan.items());
    assert!(dump.contains("journal#p"), "{dump}");
    for secret in env.sim.sim.issued_secrets().iter().chain([&old]) {
        assert!(!dump.contains(secret.as_str()), "a key is in the table");
        assert!(
            !dump.contains(&secret[secret.len() - 12..]),
            "a key's tail is in the table"
        );
    }
    env.capture(dump);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_process_killed_right_after_its_acquire_landed_keeps_the_secret_only_until_expiry() {
    let env = TestEnv::new().await;
    let (_, old) = env.seed_key("made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/llm"), &old).unwrap();
    let target = r#"{ store = "files", secret_id = "llm", format = "raw" }"#;
    env.write_config(&policy("p", target, ""));
    let table = on_dynamodb_with(&env, true, "2s");
    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];

    let crashed = env
        .rekey_env(&args, &[("REKEY_FAILPOINT", "state:lease-acquired")])
        .await;
    assert_eq!(crashed.code, None, "aborted: {}", crashed.stderr);
    let started = Instant::now();
    let scan = (client().scan()).table_name(&table).send().await.unwrap();
    let ghost = (scan.items().iter())
        .find(|i| text(i, "pk").starts_with("lease#file:"))
        .expect("the acquire landed");
    assert_ne!(text(ghost, "owner"), "", "held by the dead process");

    let busy = env.rekey(&args).await;
    busy.assert_code(1);
    assert!(
        busy.stderr.contains("busy: another process"),
        "{}",
        busy.stderr
    );
    let deadline = started + Duration::from_secs(15);
    loop {
        let run = env.rekey(&args).await;
        if run.code == Some(0) {
            break;
        }
        assert!(run.stderr.contains("busy"), "{}", run.stderr);
        assert!(Instant::now() < deadline, "the lease expires within 15s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before it expired"
    );
    let new = std::fs::read_to_string(env.path("secrets/llm")).unwrap();
    assert_ne!(new.trim(), old, "rotated once the lease expired");
    env.assert_no_secret_leaked();
}
