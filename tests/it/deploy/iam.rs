//! deploy/iam-policy.json against the code: exactly the Secrets Manager
//! operations that src/ calls, on secret ARN prefixes only, covering every
//! secret the Kubernetes config reads or writes; and the DynamoDB actions of
//! the HA state table (`state = "dynamodb:TABLE"`), on that table's ARN only.

use std::collections::BTreeSet;

use rekey::config::{Config, SecretRef, StoreKind};

use super::{configmap_config, read, repo};

/// Every operation of aws-sdk-secretsmanager 1.x, as its fluent-builder
/// method (`client.get_secret_value()`).
const SDK_OPERATIONS: &[&str] = &[
    "batch_get_secret_value",
    "cancel_rotate_secret",
    "create_secret",
    "delete_resource_policy",
    "delete_secret",
    "describe_secret",
    "get_random_password",
    "get_resource_policy",
    "get_secret_value",
    "list_secret_version_ids",
    "list_secrets",
    "put_resource_policy",
    "put_secret_value",
    "remove_regions_from_replication",
    "replicate_secret_to_regions",
    "restore_secret",
    "rotate_secret",
    "stop_replication_to_replica",
    "tag_resource",
    "untag_resource",
    "update_secret",
    "update_secret_version_stage",
    "validate_resource_policy",
];

/// `get_secret_value` → `secretsmanager:GetSecretValue`.
fn iam_action(operation: &str) -> String {
    format!("secretsmanager:{}", pascal_case(operation))
}

/// `get_secret_value` → `GetSecretValue`: an SDK operation's API name.
pub(super) fn pascal_case(operation: &str) -> String {
    operation
        .split('_')
        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
        .collect()
}

/// Every Rust source file under src/ with its text.
pub(super) fn src_files() -> Vec<(std::path::PathBuf, String)> {
    crate::helpers::files_under(&repo("src"))
        .into_iter()
        .filter(|file| file.extension().is_some_and(|e| e == "rs"))
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            (file, text)
        })
        .collect()
}

/// The IAM actions of every Secrets Manager `.operation()` call under src/.
/// (An operation name both SDKs have, like `tag_resource`, counts for
/// both: rekey calls none of them.)
fn actions_called_in_src() -> BTreeSet<String> {
    let sources: String = src_files().into_iter().map(|(_, text)| text).collect();
    SDK_OPERATIONS
        .iter()
        .filter(|op| sources.contains(&format!(".{op}()")))
        .map(|op| iam_action(op))
        .collect()
}

pub(super) struct Statement {
    pub(super) sid: String,
    pub(super) actions: BTreeSet<String>,
    pub(super) resources: Vec<String>,
}

impl Statement {
    /// The AWS service of its actions (`secretsmanager`); every statement
    /// of the policy grants on one service, so each is checked by one test.
    pub(super) fn service(&self) -> &str {
        let services: BTreeSet<&str> = self
            .actions
            .iter()
            .map(|a| a.split_once(':').map_or("", |(service, _)| service))
            .collect();
        assert_eq!(services.len(), 1, "{}: one service per statement", self.sid);
        services.into_iter().next().unwrap()
    }
}

/// The statements of deploy/iam-policy.json granting on `service`.
pub(super) fn statements_of(service: &str) -> Vec<Statement> {
    statements()
        .into_iter()
        .filter(|s| s.service() == service)
        .collect()
}

fn statements() -> Vec<Statement> {
    let doc: serde_json::Value = serde_json::from_str(&read("deploy/iam-policy.json"))
        .expect("deploy/iam-policy.json is valid JSON");
    assert_eq!(doc["Version"], "2012-10-17");
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().expect("a string").to_string())
                .collect(),
            other => panic!("expected a string or a list, got {other}"),
        }
    };
    let statements = doc["Statement"].as_array().expect("a Statement list");
    statements
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow", "{s}");
            assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
            Statement {
                sid: s["Sid"]
                    .as_str()
                    .expect("every statement has a Sid")
                    .to_string(),
                actions: list(&s["Action"]).into_iter().collect(),
                resources: list(&s["Resource"]),
            }
        })
        .collect()
}

/// The secret-name prefix of a `arn:aws:secretsmanager:R:A:secret:PREFIX*` resource.
fn secret_prefix(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("arn:aws:secretsmanager:")?;
    let (_, name) = rest.split_once(":secret:")?;
    name.strip_suffix('*')
}

#[test]
fn every_statement_grants_on_one_service_only() {
    let services: BTreeSet<String> = statements()
        .iter()
        .map(|s| s.service().to_string())
        .collect();
    let expected = BTreeSet::from(["dynamodb".to_string(), "secretsmanager".to_string()]);
    assert_eq!(services, expected);
}

#[test]
fn the_iam_policy_allows_exactly_the_secrets_manager_calls_rekey_makes() {
    let called = actions_called_in_src();
    assert!(
        called.contains("secretsmanager:GetSecretValue"),
        "the source scan finds the calls: {called:?}"
    );
    let allowed: BTreeSet<String> = statements_of("secretsmanager")
        .into_iter()
        .flat_map(|s| s.actions)
        .collect();
    assert_eq!(allowed, called, "IAM actions vs. SDK calls in src/");
}

#[test]
fn the_iam_policy_grants_only_on_secret_arn_prefixes() {
    for statement in statements_of("secretsmanager") {
        for resource in &statement.resources {
            let prefix = secret_prefix(resource)
                .unwrap_or_else(|| panic!("{resource} is not a secret ARN prefix ending in *"));
            assert!(
                prefix.len() > 1 && prefix.ends_with('/'),
                "{resource}: a named prefix like rekey/*, never all secrets"
            );
            assert!(!resource.contains(":*:"), "{resource}");
        }
        for action in &statement.actions {
            assert!(!action.contains('*'), "{action}: no wildcard actions");
        }
    }
}

/// The secret ids `config` reads (aws-sm: references) and writes (targets in AWS stores).
fn aws_secrets(config: &Config) -> (Vec<String>, Vec<String>) {
    let mut refs: Vec<&SecretRef> = config
        .providers
        .values()
        .map(|p| &p.management_key)
        .collect();
    refs.extend(config.daemon.admin_token.iter());
    refs.extend(config.notify.values().map(|n| &n.url));
    let read = refs
        .into_iter()
        .filter_map(|r| match r {
            SecretRef::AwsSm { secret_id, .. } => Some(secret_id.clone()),
            _ => None,
        })
        .collect();
    let written = config
        .policies
        .iter()
        .filter(|p| {
            matches!(
                config.stores[&p.target.store].kind,
                StoreKind::AwsSecretsManager { .. }
            )
        })
        .map(|p| p.target.secret_id.to_string())
        .collect();
    (read, written)
}

/// Whether some statement allows `action` on secret `id`.
fn allowed(statements: &[Statement], action: &str, id: &str) -> bool {
    statements.iter().any(|s| {
        s.actions.contains(action)
            && s.resources
                .iter()
                .any(|r| secret_prefix(r).is_some_and(|p| id.starts_with(p)))
    })
}

#[test]
fn the_iam_policy_covers_every_secret_the_kubernetes_config_uses() {
    let statements = statements_of("secretsmanager");
    let (read, written) = aws_secrets(&configmap_config());
    assert!(!read.is_empty() && !written.is_empty());
    for id in &read {
        assert!(
            allowed(&statements, "secretsmanager:GetSecretValue", id),
            "reading credential {id}"
        );
        assert!(
            !allowed(&statements, "secretsmanager:PutSecretValue", id),
            "rekey may read but not overwrite its own credential {id}"
        );
    }
    for id in &written {
        for action in actions_called_in_src() {
            assert!(allowed(&statements, &action, id), "{action} on target {id}");
        }
    }
}
