//! The HA state table in deploy/ against the backend's contract (DESIGN.md,
//! "High availability: state on DynamoDB"): deploy/aws/dynamodb-table.yaml
//! has exactly the key schema the backend reads and writes, and
//! deploy/iam-policy.json grants exactly the DynamoDB actions the backend
//! calls, on that one table, with CreateTable apart as an optional statement.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use super::iam::{Statement, pascal_case, src_files, statements_of};
use super::kubernetes_ha::ha_state_table;
use super::yaml;

const TEMPLATE: &str = "deploy/aws/dynamodb-table.yaml";

/// Every operation of aws-sdk-dynamodb 1.x as its fluent-builder method
/// (`client.get_item()`), and the waiters (`client.wait_until_table_exists()`).
const SDK_OPERATIONS: &[&str] = &[
    "batch_execute_statement",
    "batch_get_item",
    "batch_write_item",
    "create_backup",
    "create_global_table",
    "create_table",
    "delete_backup",
    "delete_item",
    "delete_resource_policy",
    "delete_table",
    "describe_backup",
    "describe_continuous_backups",
    "describe_contributor_insights",
    "describe_endpoints",
    "describe_export",
    "describe_global_table",
    "describe_global_table_settings",
    "describe_import",
    "describe_kinesis_streaming_destination",
    "describe_limits",
    "describe_table",
    "describe_table_replica_auto_scaling",
    "describe_time_to_live",
    "disable_kinesis_streaming_destination",
    "enable_kinesis_streaming_destination",
    "execute_statement",
    "execute_transaction",
    "export_table_to_point_in_time",
    "get_item",
    "get_resource_policy",
    "import_table",
    "list_backups",
    "list_contributor_insights",
    "list_exports",
    "list_global_tables",
    "list_imports",
    "list_tables",
    "list_tags_of_resource",
    "put_item",
    "put_resource_policy",
    "query",
    "restore_table_from_backup",
    "restore_table_to_point_in_time",
    "scan",
    "tag_resource",
    "transact_get_items",
    "transact_write_items",
    "untag_resource",
    "update_continuous_backups",
    "update_contributor_insights",
    "update_global_table",
    "update_global_table_settings",
    "update_item",
    "update_kinesis_streaming_destination",
    "update_table",
    "update_table_replica_auto_scaling",
    "update_time_to_live",
    "wait_until_table_exists",
    "wait_until_table_not_exists",
];

/// The contract (i12 common brief): the operations the DynamoDB state
/// backend calls. Journal writes are a `transact_write_items` of a
/// ConditionCheck on the lease item plus the Put of the journal item; leases
/// are taken and renewed with `update_item`, heartbeats put with `put_item`;
/// `scan` finds journals; `query` (on the index) finds expired leases and
/// live replicas; `create_table` only with `create_table = true`.
/// The backend calls exactly these, and the policy grants exactly these.
const CONTRACT: &[&str] = &[
    "create_table",
    "describe_table",
    "get_item",
    "put_item",
    "query",
    "scan",
    "transact_write_items",
    "update_item",
];

/// The operation made on the table's index only (`table/NAME/index/*`).
const ON_INDEX: &str = "query";

/// The operation only `create_table = true` needs; its IAM action is granted
/// by a statement of its own, which deploy/README.md says to delete otherwise.
const OPTIONAL: &str = "create_table";

/// The IAM actions that authorise `operation`. A transaction is authorised
/// per item by the action of each item's kind; rekey's transactions are a
/// ConditionCheck plus a Put. A waiter polls DescribeTable.
fn iam_actions(operation: &str) -> Vec<String> {
    let api = match operation {
        "transact_write_items" => vec!["ConditionCheckItem".to_string(), "PutItem".to_string()],
        "wait_until_table_exists" | "wait_until_table_not_exists" => {
            vec!["DescribeTable".to_string()]
        }
        other => vec![pascal_case(other)],
    };
    api.into_iter().map(|a| format!("dynamodb:{a}")).collect()
}

/// Whether source file `path` may call the DynamoDB client: it names the
/// SDK crate, or it is part of the state backend. (A scan of all of src/
/// would read `url.query()` as DynamoDB's Query.)
fn uses_dynamodb(path: &Path, text: &str) -> bool {
    text.contains("aws_sdk_dynamodb")
        || path.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|c| c.contains("dynamodb"))
        })
}

/// The text of every source file under src/ that may call DynamoDB.
fn dynamodb_sources() -> String {
    src_files()
        .into_iter()
        .filter(|(path, text)| uses_dynamodb(path, text))
        .map(|(_, text)| text)
        .collect()
}

/// The DynamoDB operations `.called()` in `sources`.
fn operations_in(sources: &str) -> BTreeSet<&'static str> {
    SDK_OPERATIONS
        .iter()
        .copied()
        .filter(|op| sources.contains(&format!(".{op}()")))
        .collect()
}

fn actions_of<'a>(operations: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    operations.into_iter().flat_map(iam_actions).collect()
}

fn granted(statements: &[Statement]) -> BTreeSet<String> {
    statements.iter().flat_map(|s| s.actions.clone()).collect()
}

#[test]
fn the_iam_policy_grants_exactly_the_state_table_calls() {
    let statements = statements_of("dynamodb");
    let granted = granted(&statements);
    assert_eq!(
        granted,
        actions_of(CONTRACT.iter().copied()),
        "the DynamoDB actions of deploy/iam-policy.json vs. the backend's contract"
    );
    let called = operations_in(&dynamodb_sources());
    let uncontracted: Vec<&&str> = called.iter().filter(|op| !CONTRACT.contains(op)).collect();
    assert!(
        uncontracted.is_empty(),
        "src/ calls {uncontracted:?}: add them to CONTRACT, the policy and deploy/README.md"
    );
    let missing: Vec<String> = actions_of(called.iter().copied())
        .difference(&granted)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "called but not granted: {missing:?}");
    let contract: std::collections::BTreeSet<&str> = CONTRACT.iter().copied().collect();
    assert_eq!(
        called, contract,
        "the DynamoDB operations src/ calls vs. the contract"
    );
}

#[test]
fn the_call_scan_maps_a_transaction_to_condition_check_and_put() {
    let sources = "client.transact_write_items().transact_items(check).transact_items(put)\n\
                   client.wait_until_table_exists().table_name(t)\n\
                   let s = items.iter().scan(0, f); client.scan().table_name(t)";
    let found = operations_in(sources);
    assert_eq!(
        found,
        BTreeSet::from(["scan", "transact_write_items", "wait_until_table_exists"])
    );
    let expected: BTreeSet<String> = [
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
        "dynamodb:PutItem",
        "dynamodb:Scan",
    ]
    .map(String::from)
    .into();
    assert_eq!(actions_of(found), expected);
    assert!(operations_in("client.delete_item().key(k)").contains("delete_item"));

    let url = "if url.query().is_some() {}";
    assert!(!uses_dynamodb(
        Path::new("src/config/validate/values.rs"),
        url
    ));
    assert!(uses_dynamodb(Path::new("src/state/dynamodb/lease.rs"), ""));
    assert!(uses_dynamodb(
        Path::new("src/app.rs"),
        "use aws_sdk_dynamodb::Client;"
    ));
}

#[test]
fn the_dynamodb_statements_grant_on_the_state_table_only() {
    let arn = format!("arn:aws:dynamodb:REGION:ACCOUNT:table/{}", template_table());
    let index = format!("{arn}/index/*");
    let query = &iam_actions(ON_INDEX)[0];
    let statements = statements_of("dynamodb");
    assert!(!statements.is_empty());
    for statement in &statements {
        let on_index = statement.actions.contains(query);
        if on_index {
            assert_eq!(
                statement.actions,
                BTreeSet::from([query.clone()]),
                "{}: the index statement grants Query only",
                statement.sid
            );
        }
        let expected = if on_index { &index } else { &arn };
        assert_eq!(
            statement.resources,
            std::slice::from_ref(expected),
            "{}: the table itself, or Query on its indexes; no stream or other table",
            statement.sid
        );
        for action in &statement.actions {
            assert!(!action.contains('*'), "{action}: no wildcard actions");
        }
    }
}

#[test]
fn create_table_is_granted_only_by_its_own_optional_statement() {
    let create = &iam_actions(OPTIONAL)[0];
    let statements = statements_of("dynamodb");
    let granting: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.actions.contains(create))
        .collect();
    assert_eq!(granting.len(), 1, "one statement grants {create}");
    let statement = granting[0];
    assert_eq!(statement.actions, BTreeSet::from([create.clone()]));
    assert!(
        statement.sid.contains("CreateTableTrue"),
        "{}: the Sid says it is only for create_table = true",
        statement.sid
    );
    let readme = super::read("deploy/README.md");
    assert!(
        readme.contains(&statement.sid),
        "deploy/README.md explains statement {}",
        statement.sid
    );
}

/// The template's resources; it must hold exactly the table.
fn table_resource() -> Value {
    let template = yaml(TEMPLATE);
    assert_eq!(template["AWSTemplateFormatVersion"], "2010-09-09");
    let resources = template["Resources"].as_object().expect("Resources");
    assert_eq!(resources.len(), 1, "only the table: {:?}", resources.keys());
    let (_, table) = resources.iter().next().unwrap();
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    table.clone()
}

/// The table name the template creates by default.
fn template_table() -> String {
    let template = yaml(TEMPLATE);
    assert_eq!(
        table_resource()["Properties"]["TableName"],
        json!({"Ref": "TableName"}),
        "the name is the TableName parameter"
    );
    let parameter = &template["Parameters"]["TableName"];
    assert_eq!(parameter["AllowedPattern"], "[A-Za-z0-9_.-]{3,255}");
    parameter["Default"]
        .as_str()
        .expect("a default table name")
        .to_string()
}

#[test]
fn the_table_template_has_the_key_schema_the_backend_uses() {
    let table = table_resource();
    assert_eq!(
        table["DeletionPolicy"], "Retain",
        "the journals outlive the stack"
    );
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert_eq!(
        p["AttributeDefinitions"],
        json!([
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "idx", "AttributeType": "S"}
        ])
    );
    assert_eq!(
        p["GlobalSecondaryIndexes"],
        json!([{
            "IndexName": "rekey-index",
            "KeySchema": [
                {"AttributeName": "idx", "KeyType": "HASH"},
                {"AttributeName": "pk", "KeyType": "RANGE"}
            ],
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["owner", "expires_at_ms"]
            }
        }]),
        "the index the backend creates and queries"
    );
    for absent in [
        "LocalSecondaryIndexes",
        "TimeToLiveSpecification",
        "ProvisionedThroughput",
    ] {
        assert!(
            p.get(absent).is_none(),
            "{absent}: no other index, no TTL, on-demand"
        );
    }
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
}

#[test]
fn the_table_template_outputs_the_arn() {
    let template = yaml(TEMPLATE);
    let outputs = template["Outputs"].as_object().expect("Outputs");
    let name = yaml(TEMPLATE)["Resources"]
        .as_object()
        .and_then(|r| r.keys().next().cloned())
        .unwrap();
    let arn = json!({"Fn::GetAtt": [name, "Arn"]});
    assert!(
        outputs.values().any(|o| o["Value"] == arn),
        "an output with the table's ARN: {outputs:?}"
    );
}

#[test]
fn the_table_has_one_name_in_the_template_the_iam_policy_and_the_ha_config() {
    let table = template_table();
    assert_eq!(
        ha_state_table(),
        table,
        "deploy/kubernetes-ha/configmap.yaml"
    );
    let resources: BTreeSet<String> = statements_of("dynamodb")
        .into_iter()
        .flat_map(|s| s.resources)
        .collect();
    let arn = format!("arn:aws:dynamodb:REGION:ACCOUNT:table/{table}");
    assert_eq!(resources, BTreeSet::from([format!("{arn}/index/*"), arn]));
}
