//! High availability on DynamoDB, black-box: real `rekey run` replicas
//! sharing one state table in moto, rotating a Secrets Manager secret (also
//! moto) at the simulator. Each scenario gets its own table, secret and
//! simulator, and checks DESIGN.md's invariants at its end: the store's
//! current key works at the provider, every key rekey made is current, in
//! grace or revoked (no orphan), no key material in any output, state file
//! or journal item, and at most one rotation in flight per secret.
//!
//! Leases are short (5 s, renewed every 5/3 s) and so are the provider's
//! and the store's `request_timeout` (1 s), so that a lost replica's lease
//! expires within a test's patience. The submodules are the scenarios:
//! [`replicas`] (three replicas on a schedule while a consumer reads the
//! secret), [`kill`] (a replica aborted at every step boundary), [`stop`]
//! (a replica frozen past its lease), [`outage`] (the table failing behind
//! the fault proxy), [`migrate`] (file → DynamoDB → file in a grace) and
//! [`late`] (a side effect waits for a late renewal).

mod expired;
mod kill;
mod late;
mod migrate;
mod outage;
mod replicas;
mod stop;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use serde_json::Value;

use crate::daemon_proc::wait_until;
use crate::helpers::{TestEnv, policy};
use crate::moto::{moto_url, sm_client, unique_secret_name};

/// The lease every replica takes: short, so a lost replica's expires soon,
/// yet long enough that a side effect (1 s) fits between renewals (every
/// 5/3 s) with the skew margin (1 s) on a loaded machine even without
/// waiting for a renewal (see [`late`]).
pub const LEASE: &str = "5s";

/// A DynamoDB client with static test credentials, talking to moto.
pub async fn dynamo() -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rekey-tests",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A table name no other test uses.
pub fn unique_table() -> String {
    format!("rekey-it-{}", uuid::Uuid::now_v7().simple())
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

/// rekey's index as deploy/aws/dynamodb-table.yaml defines it (HASH `idx`,
/// RANGE `pk`, projecting `owner` and `expires_at_ms`), and the definition
/// of its `idx` attribute.
pub fn rekey_index() -> (AttributeDefinition, GlobalSecondaryIndex) {
    let projection = Projection::builder()
        .projection_type(ProjectionType::Include)
        .non_key_attributes("owner")
        .non_key_attributes("expires_at_ms")
        .build();
    let index = GlobalSecondaryIndex::builder()
        .index_name("rekey-index")
        .key_schema(key("idx", KeyType::Hash))
        .key_schema(key("pk", KeyType::Range))
        .projection(projection)
        .build()
        .unwrap();
    (string_attribute("idx"), index)
}

/// Creates `table` as deploy/ does (on demand, `pk` S, rekey's index), so
/// that replicas started together do not race to create it.
pub async fn create_table(table: &str) {
    let pk = "pk";
    let (idx, index) = rekey_index();
    dynamo()
        .await
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(pk))
        .attribute_definitions(idx)
        .global_secondary_indexes(index)
        .key_schema(key(pk, KeyType::Hash))
        .send()
        .await
        .expect("moto creates the state table");
}

/// One HA scenario: a simulator with a seeded key, that key in a fresh
/// Secrets Manager secret, a fresh state table, and policy `p` rotating it.
pub struct Ha {
    pub env: TestEnv,
    pub table: String,
    pub secret_id: String,
    /// The seeded key, current before any rotation.
    pub old: String,
}

impl Ha {
    pub async fn new() -> Ha {
        let env = TestEnv::new().await;
        let (_, old) = env.seed_key("before-ha");
        let secret_id = unique_secret_name("it/ha");
        sm_client()
            .await
            .create_secret()
            .name(&secret_id)
            .secret_string(&old)
            .send()
            .await
            .expect("moto creates the secret");
        let table = unique_table();
        create_table(&table).await;
        Ha {
            env,
            table,
            secret_id,
            old,
        }
    }

    /// The policy `p` on the AWS store with `extra` lines (a grace, a schedule).
    pub fn policy(&self, extra: &str) -> String {
        let target = format!(r#"{{ store = "aws", secret_id = "{}" }}"#, self.secret_id);
        let verify = r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "2s" }"#;
        policy("p", &target, &format!("{verify}\n{extra}"))
    }

    /// Writes the config with the state in this scenario's table, reached
    /// at `table_url` (moto, or a fault proxy in front of it).
    pub fn write_config_at(&self, table_url: &str, daemon_lines: &str, policy_extra: &str) {
        self.env.write_config(&self.policy(policy_extra));
        let text = std::fs::read_to_string(self.env.config_path()).unwrap();
        let file_state = format!("state = \"file:{}\"", self.env.path("state").display());
        assert!(text.contains(&file_state), "{text}");
        let dynamodb = format!(
            "[daemon.dynamodb]\nregion = \"us-east-1\"\nendpoint_url = \"{table_url}\"\nlease = \"{LEASE}\"\n\n[providers.sim]"
        );
        let text = text
            .replacen(
                &file_state,
                &format!("state = \"dynamodb:{}\"", self.table),
                1,
            )
            .replacen("[daemon]\n", &format!("[daemon]\n{daemon_lines}\n"), 1)
            .replacen("[providers.sim]", &dynamodb, 1)
            .replacen("request_timeout = \"5s\"", "request_timeout = \"1s\"", 1)
            .replacen(
                "[stores.aws]\n",
                "[stores.aws]\nrequest_timeout = \"1s\"\n",
                1,
            );
        std::fs::write(self.env.config_path(), text).unwrap();
    }

    /// Points the written config's `daemon.state` at `location`
    /// (`[daemon.dynamodb]` stays: it tells `state migrate` where the table is).
    pub fn use_state(&self, location: &str) {
        let text = std::fs::read_to_string(self.env.config_path()).unwrap();
        let lines = text.lines().map(|line| {
            if line.starts_with("state = ") {
                format!("state = \"{location}\"")
            } else {
                line.to_string()
            }
        });
        let text: Vec<String> = lines.collect();
        std::fs::write(self.env.config_path(), text.join("\n") + "\n").unwrap();
    }

    /// Rewrites the written config's lease length.
    pub fn use_lease(&self, lease: &str) {
        let text = std::fs::read_to_string(self.env.config_path()).unwrap();
        let from = format!("lease = \"{LEASE}\"");
        assert!(text.contains(&from), "{text}");
        let text = text.replacen(&from, &format!("lease = \"{lease}\""), 1);
        std::fs::write(self.env.config_path(), text).unwrap();
    }

    /// [`Ha::write_config_at`] with the table at moto itself.
    pub fn write_config(&self, policy_extra: &str) {
        self.write_config_at(&moto_url(), "", policy_extra);
    }

    /// Policy `p`'s journal in the table (`Null` while there is none); the
    /// item's text is kept for the leak check.
    pub async fn journal(&self) -> Value {
        let item = dynamo()
            .await
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("journal#p".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers GetItem");
        let Some(item) = item.item() else {
            return Value::Null;
        };
        self.env.capture(format!("{item:?}"));
        let body = item.get("body").and_then(|b| b.as_s().ok());
        let body = body.expect("a journal item has a body");
        serde_json::from_str(body).expect("the journal body is JSON")
    }

    /// Waits (up to `within`) until `p`'s journal has at least `n` finished
    /// rotations and none in flight.
    pub async fn wait_for_history(&self, n: usize, within: Duration) -> Value {
        let what = format!("{n} finished rotations");
        self.wait_for_journal(&what, within, |journal| {
            journal["history"].as_array().map_or(0, Vec::len) >= n
        })
        .await
    }

    /// Waits (up to `within`) until a rotation of `p` finished as
    /// `rotated` and none is in flight.
    pub async fn wait_for_rotated(&self, within: Duration) -> Value {
        self.wait_for_journal("a rotation that rotated", within, |journal| {
            let history = journal["history"].as_array().into_iter().flatten();
            history.into_iter().any(|r| r["kind"] == "rotated")
        })
        .await
    }

    /// Waits (up to `within`) until `p`'s journal meets `done` with no
    /// rotation in flight; returns it.
    async fn wait_for_journal(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let journal = self.journal().await;
            if done(&journal) && journal["in_flight"].is_null() {
                return journal;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} within {within:?}; journal: {journal}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `rekey run --once` until at most `live` keys are live at the
    /// simulator (graces end on their own time), for up to 15 s.
    pub async fn finish_graces(&self, live: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            self.env.cmd("run", &["--once"]).await.assert_code(0);
            if self.env.live_secrets().len() <= live {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the graces did not end within 15 s: {} keys live",
                self.env.live_secrets().len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Every item of the table, the lease items and journals alike; their
    /// text is kept for the leak check.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let scanned = dynamo()
            .await
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers Scan");
        let items = scanned.items().to_vec();
        self.env.capture(format!("{items:?}"));
        items
    }

    /// The one lease item's owner and `expires_at_ms` (one secret per table).
    pub async fn lease(&self) -> Option<(String, i64)> {
        let items = self.items().await;
        let mut leases = (items.iter()).filter(|item| {
            let pk = item.get("pk").and_then(|v| v.as_s().ok());
            pk.is_some_and(|pk| pk.starts_with("lease#"))
        });
        let lease = leases.next()?;
        assert!(
            leases.next().is_none(),
            "one secret, one lease item: {items:?}"
        );
        let owner = lease.get("owner")?.as_s().ok()?.clone();
        let expires = lease.get("expires_at_ms")?.as_n().ok()?.parse().ok()?;
        Some((owner, expires))
    }

    /// The value of the secret at `stage`.
    pub async fn value(&self, stage: &str) -> Option<String> {
        let out = sm_client()
            .await
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        out.secret_string().map(str::to_string)
    }

    /// The version id holding `stage`.
    pub async fn version_of(&self, stage: &str) -> Option<String> {
        let out = sm_client()
            .await
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .expect("moto describes the secret");
        let versions = out.version_ids_to_stages().cloned().unwrap_or_default();
        (versions.into_iter())
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id)
    }

    /// Keys created at the simulator so far.
    pub fn creates(&self) -> u64 {
        let counts = self.env.sim.sim.call_counts();
        counts.get("create").copied().unwrap_or(0)
    }

    /// The invariants once everything settled: the store's current key
    /// works, it and the keys in `in_grace` are the only live keys, no
    /// rotation is in flight, and no key appears anywhere it must not.
    pub async fn assert_settled(&self, in_grace: &[&str], when: &str) -> String {
        let current = self.value("AWSCURRENT").await.expect("a current value");
        assert!(
            self.env.works(&current),
            "{when}: the store's current key works at the provider"
        );
        for live in self.env.live_secrets() {
            assert!(
                live == current || in_grace.contains(&live.as_str()),
                "{when}: a key is alive that is neither current nor in grace (an orphan)"
            );
        }
        let journal = self.journal().await;
        assert!(
            journal["in_flight"].is_null(),
            "{when}: no rotation is left in flight: {journal}"
        );
        self.items().await;
        self.env.assert_no_secret_leaked();
        current
    }
}

/// Waits (up to `within`) for `check`, panicking with `what` when it never holds.
pub async fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let held = wait_until(within, || check().then_some(())).await;
    assert!(held.is_some(), "{what} (waited {within:?})");
}
