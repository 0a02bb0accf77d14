//! `rekey state migrate` from files to DynamoDB and back, with a rotation
//! in its grace: every hop keeps `revoke_after` as it was, and the old key
//! is revoked on time by a `run` on the final backend.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Ha, wait_for};

fn revoke_after(journal: &Value) -> DateTime<Utc> {
    let at = journal["in_flight"]["revoke_after"].as_str();
    let at = at.unwrap_or_else(|| panic!("a rotation in grace: {journal}"));
    DateTime::parse_from_rfc3339(at).unwrap().into()
}

impl Ha {
    /// `rekey state migrate -c <config> --to <to>`.
    async fn migrate(&self, to: &str) -> crate::helpers::Run {
        let config = self.env.config_path();
        let args = [
            "state",
            "migrate",
            "-c",
            config.to_str().unwrap(),
            "--to",
            to,
        ];
        self.env.rekey(&args).await
    }

    /// The same with `--dry-run`.
    async fn migrate_dry(&self, to: &str) -> crate::helpers::Run {
        let config = self.env.config_path();
        let config = config.to_str().unwrap();
        let args = ["state", "migrate", "-c", config, "--to", to, "--dry-run"];
        self.env.rekey(&args).await
    }
}

async fn table_exists(table: &str) -> bool {
    let described = super::dynamo()
        .await
        .describe_table()
        .table_name(table)
        .send()
        .await;
    described.is_ok()
}

fn file_journal(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("policies/p.json")).expect("a journal file");
    serde_json::from_str(&text).expect("the journal is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_survives_file_to_dynamodb_to_file_and_ends_on_time() {
    let mut ha = Ha::new().await;
    // A table that does not exist yet: the migration creates it, a dry
    // run does not.
    ha.table = super::unique_table();
    ha.write_config("revoke = { grace = \"8s\" }");
    let text = std::fs::read_to_string(ha.env.config_path()).unwrap();
    let lease = format!("lease = \"{}\"\n", super::LEASE);
    let text = text.replacen(&lease, &format!("{lease}create_table = true\n"), 1);
    std::fs::write(ha.env.config_path(), text).unwrap();
    let first = ha.env.path("state");
    let back = ha.env.path("state-back");
    ha.use_state(&format!("file:{}", first.display()));
    ha.env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let in_grace = file_journal(&first);
    assert_eq!(in_grace["in_flight"]["step"], "promoted", "{in_grace}");
    let due = revoke_after(&in_grace);

    let to_table = format!("dynamodb:{}", ha.table);
    let dry = ha.migrate_dry(&to_table).await;
    dry.assert_code(0);
    assert!(dry.stdout.contains("would move"), "{}", dry.stdout);
    assert!(!table_exists(&ha.table).await, "a dry run creates no table");
    ha.migrate(&to_table).await.assert_code(0);
    assert!(
        table_exists(&ha.table).await,
        "the migration created the table"
    );
    ha.use_state(&to_table);
    let in_table = ha.journal().await;
    assert_eq!(revoke_after(&in_table), due, "the table keeps revoke_after");
    assert!(ha.env.works(&ha.old), "the old key is alive in its grace");

    let to_files = format!("file:{}", back.display());
    ha.migrate(&to_files).await.assert_code(0);
    ha.use_state(&to_files);
    assert_eq!(
        revoke_after(&file_journal(&back)),
        due,
        "files keep revoke_after"
    );

    if Utc::now() + chrono::Duration::seconds(1) < due {
        ha.env.cmd("run", &["--once"]).await.assert_code(0);
        if Utc::now() < due {
            assert!(ha.env.works(&ha.old), "no revoke before revoke_after");
        }
    }
    wait_for(Duration::from_secs(15), "the grace to end", || {
        Utc::now() > due
    })
    .await;
    ha.env.cmd("run", &["--once"]).await.assert_code(0);
    assert!(
        !ha.env.works(&ha.old),
        "the old key is revoked after its grace"
    );
    let finished = file_journal(&back);
    assert!(finished["in_flight"].is_null(), "{finished}");
    let current = ha.value("AWSCURRENT").await.unwrap();
    assert!(ha.env.works(&current), "the new key stays current");
    assert_eq!(ha.env.live_secrets(), vec![current], "one live key");
    ha.env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_dynamodb_target_needs_the_tables_whereabouts_and_a_valid_name() {
    let ha = Ha::new().await;
    ha.env.write_config(&ha.policy(""));
    let config = ha.env.config_path();
    let config = config.to_str().unwrap();
    let to = format!("dynamodb:{}", ha.table);
    let args = ["state", "migrate", "-c", config, "--to", &to];
    let run = ha.env.rekey(&args).await;
    run.assert_code(2);
    assert!(run.stderr.contains("[daemon.dynamodb]"), "{}", run.stderr);

    ha.write_config("");
    ha.use_state(&format!("file:{}", ha.env.path("state").display()));
    let args = ["state", "migrate", "-c", config, "--to", "dynamodb:a/b"];
    let run = ha.env.rekey(&args).await;
    run.assert_code(2);
    assert!(run.stderr.contains("3-255 characters"), "{}", run.stderr);
}
