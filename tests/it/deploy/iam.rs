//! deploy/iam-policy.json against the code: exactly the Secrets Manager
//! operations that src/ calls, on secret ARN prefixes only, covering every
//! secret the Kubernetes config reads or writes.

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
    let pascal: String = operation
        .split('_')
        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
        .collect();
    format!("secretsmanager:{pascal}")
}

/// The IAM actions of every `.operation()` call under src/.
fn actions_called_in_src() -> BTreeSet<String> {
    let mut sources = String::new();
    for file in crate::helpers::files_under(&repo("src")) {
        if file.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&std::fs::read_to_string(&file).unwrap());
        }
    }
    SDK_OPERATIONS
        .iter()
        .filter(|op| sources.contains(&format!(".{op}()")))
        .map(|op| iam_action(op))
        .collect()
}

struct Statement {
    actions: BTreeSet<String>,
    resources: Vec<String>,
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
fn the_iam_policy_allows_exactly_the_secrets_manager_calls_rekey_makes() {
    let called = actions_called_in_src();
    assert!(
        called.contains("secretsmanager:GetSecretValue"),
        "the source scan finds the calls: {called:?}"
    );
    let allowed: BTreeSet<String> = statements().into_iter().flat_map(|s| s.actions).collect();
    assert_eq!(allowed, called, "IAM actions vs. SDK calls in src/");
}

#[test]
fn the_iam_policy_grants_only_on_secret_arn_prefixes() {
    for statement in statements() {
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
    let statements = statements();
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
