//! The table's one global secondary index, `rekey-index` (HASH `idx` S,
//! RANGE `pk` S, projecting `owner` and `expires_at_ms`): sparse, it holds
//! only the items that carry `idx`: lease items while they have an owner
//! (`idx = "lease"`, set by acquire, removed by release) and replica
//! heartbeats (`idx = "replica"`). One Query of a partition then answers
//! "which leases expired unreleased" or "which replicas are alive" without
//! a Scan of the table or a read per policy.
//!
//! This module owns the index's definition (for CreateTable) and the check
//! of an existing table's index (with the exact `aws dynamodb update-table`
//! command when it is missing); the Query is in [`super::query`].

use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, GlobalSecondaryIndexDescription, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TableDescription,
};

use super::PK;

/// The index name.
pub(super) const NAME: &str = "rekey-index";
/// Its partition key: which kind of item (`lease`, `replica`).
pub(super) const IDX: &str = "idx";
/// The non-key attributes the queries read.
const PROJECTED: [&str; 2] = ["owner", "expires_at_ms"];

/// The attribute definition and the index, for CreateTable.
pub(super) fn definition() -> Result<(AttributeDefinition, GlobalSecondaryIndex), String> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let attribute = AttributeDefinition::builder()
        .attribute_name(IDX)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())?;
    let projection = (PROJECTED.iter())
        .fold(
            Projection::builder().projection_type(ProjectionType::Include),
            |p, name| p.non_key_attributes(*name),
        )
        .build();
    let index = GlobalSecondaryIndex::builder()
        .index_name(NAME)
        .key_schema(key(IDX, KeyType::Hash)?)
        .key_schema(key(PK, KeyType::Range)?)
        .projection(projection)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((attribute, index))
}

/// The index's status (`ACTIVE`, `CREATING` ...) when the table has it
/// with the right keys and projection; else why not, with what to do.
/// `at` is the table for messages, `command` what adds the index.
pub(super) fn check(
    desc: &TableDescription,
    at: &str,
    command: &str,
) -> Result<IndexStatus, String> {
    let found = (desc.global_secondary_indexes().iter()).find(|i| i.index_name() == Some(NAME));
    let Some(index) = found else {
        return Err(format!(
            "DynamoDB table {at} has no global secondary index {NAME}, which rekey queries \
             for expired leases and live replicas; add it (the table stays in use while it \
             fills), or update the stack from deploy/aws/dynamodb-table.yaml, then start \
             rekey again once it is ACTIVE: {command}",
        ));
    };
    let keys: Vec<(&str, &KeyType)> = (index.key_schema().iter())
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    let idx_type = (desc.attribute_definitions().iter())
        .find(|a| a.attribute_name() == IDX)
        .map(|a| a.attribute_type().as_str());
    let right_keys = keys == [(IDX, &KeyType::Hash), (PK, &KeyType::Range)];
    if !right_keys || idx_type != Some("S") || !projects(index) {
        return Err(format!(
            "DynamoDB table {at}: index {NAME} is not the one rekey uses (HASH {IDX} of type S, \
             RANGE {PK}, projecting {}): delete it and add it again: {command}",
            PROJECTED.join(" and "),
        ));
    }
    Ok(index.index_status().cloned().unwrap_or(IndexStatus::Active))
}

/// Whether the index carries what the queries read.
fn projects(index: &GlobalSecondaryIndexDescription) -> bool {
    let Some(projection) = index.projection() else {
        return false;
    };
    match projection.projection_type() {
        Some(ProjectionType::All) => true,
        Some(ProjectionType::Include) => PROJECTED
            .iter()
            .all(|p| projection.non_key_attributes().iter().any(|a| a == p)),
        _ => false,
    }
}

/// The `aws dynamodb update-table` command that adds the index to table
/// `name` in `region` (at `endpoint`, when not AWS's own).
pub(super) fn update_command(name: &str, region: &str, endpoint: Option<&str>) -> String {
    let endpoint = endpoint.map_or(String::new(), |u| format!(" --endpoint-url {u}"));
    let included = PROJECTED.map(|p| format!("\"{p}\"")).join(",");
    format!(
        "aws dynamodb update-table --table-name {name} --region {region}{endpoint} \
         --attribute-definitions AttributeName={PK},AttributeType=S AttributeName={IDX},AttributeType=S \
         --global-secondary-index-updates '[{{\"Create\":{{\"IndexName\":\"{NAME}\",\
         \"KeySchema\":[{{\"AttributeName\":\"{IDX}\",\"KeyType\":\"HASH\"}},\
         {{\"AttributeName\":\"{PK}\",\"KeyType\":\"RANGE\"}}],\
         \"Projection\":{{\"ProjectionType\":\"INCLUDE\",\"NonKeyAttributes\":[{included}]}}}}}}]'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_command_adds_the_index_that_create_table_makes() {
        let command = update_command("t", "eu-central-1", None);
        assert!(
            command.starts_with("aws dynamodb update-table --table-name t --region eu-central-1 ")
        );
        assert!(command.contains(
            "--attribute-definitions AttributeName=pk,AttributeType=S AttributeName=idx,AttributeType=S"
        ));
        let json = command
            .split('\'')
            .nth(1)
            .expect("the quoted index updates");
        let updates: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        let create = &updates[0]["Create"];
        let (_, index) = definition().unwrap();
        assert_eq!(create["IndexName"], index.index_name());
        let keys: Vec<(&str, &str)> = (index.key_schema().iter())
            .map(|k| (k.attribute_name(), k.key_type().as_str()))
            .collect();
        let printed: Vec<(&str, &str)> = (create["KeySchema"].as_array().unwrap().iter())
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap(),
                    k["KeyType"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(printed, keys);
        let projection = index.projection().unwrap();
        assert_eq!(create["Projection"]["ProjectionType"], "INCLUDE");
        assert_eq!(
            create["Projection"]["NonKeyAttributes"],
            serde_json::json!(projection.non_key_attributes())
        );
        let local = update_command("t", "us-east-1", Some("http://127.0.0.1:5000"));
        assert!(local.contains("--region us-east-1 --endpoint-url http://127.0.0.1:5000 "));
    }
}
