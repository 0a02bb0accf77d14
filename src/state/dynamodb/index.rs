//! The table's one global secondary index, `rekey-index` (HASH `idx` S,
//! RANGE `pk` S, projecting `owner` and `expires_at_ms`): sparse, it holds
//! only the items that carry `idx`: lease items while they have an owner
//! (`idx = "lease"`, set by acquire, removed by release) and replica
//! heartbeats (`idx = "replica"`). One Query of a partition then answers
//! "which leases expired unreleased" or "which replicas are alive" without
//! a Scan of the table or a read per policy.
//!
//! This module owns the index's definition (for CreateTable), the check of
//! an existing table's index (with the exact `aws dynamodb update-table`
//! command when it is missing), and the paged Query. Reads from a global
//! secondary index are eventually consistent: an item written a moment ago
//! may be missing from one answer, which the callers allow for (a lease
//! found expired is taken with a conditional write; a replica counts
//! itself).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, GlobalSecondaryIndexDescription, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TableDescription,
};

use super::table::{PK, Table};
use super::{AttributeValue, Health, Item};
use crate::state::StateError;

/// The index name.
pub(super) const NAME: &str = "rekey-index";
/// Its partition key: which kind of item (`lease`, `replica`).
pub(super) const IDX: &str = "idx";
/// The non-key attributes the queries read.
const PROJECTED: [&str; 2] = ["owner", "expires_at_ms"];
/// Pages of one query (each up to 1 MB): a bound, not a size anyone reaches.
const MAX_PAGES: usize = 10_000;

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
pub(super) fn check(table: &Table, desc: &TableDescription) -> Result<IndexStatus, String> {
    let found = (desc.global_secondary_indexes().iter()).find(|i| i.index_name() == Some(NAME));
    let Some(index) = found else {
        return Err(format!(
            "DynamoDB table {} has no global secondary index {NAME}, which rekey queries \
             for expired leases and live replicas; add it (the table stays in use while it \
             fills), or update the stack from deploy/aws/dynamodb-table.yaml, then start \
             rekey again once it is ACTIVE: {}",
            table.whereabouts(),
            update_command(table)
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
            "DynamoDB table {}: index {NAME} is not the one rekey uses (HASH {IDX} of type S, \
             RANGE {PK}, projecting {}): delete it and add it again: {}",
            table.whereabouts(),
            PROJECTED.join(" and "),
            update_command(table)
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

/// The `aws dynamodb update-table` command that adds the index.
pub(super) fn update_command(table: &Table) -> String {
    let endpoint =
        (table.endpoint.as_ref()).map_or(String::new(), |u| format!(" --endpoint-url {u}"));
    let included = PROJECTED.map(|p| format!("\"{p}\"")).join(",");
    format!(
        "aws dynamodb update-table --table-name {} --region {}{endpoint} \
         --attribute-definitions AttributeName={PK},AttributeType=S AttributeName={IDX},AttributeType=S \
         --global-secondary-index-updates '[{{\"Create\":{{\"IndexName\":\"{NAME}\",\
         \"KeySchema\":[{{\"AttributeName\":\"{IDX}\",\"KeyType\":\"HASH\"}},\
         {{\"AttributeName\":\"{PK}\",\"KeyType\":\"RANGE\"}}],\
         \"Projection\":{{\"ProjectionType\":\"INCLUDE\",\"NonKeyAttributes\":[{included}]}}}}}}]'",
        table.name, table.region
    )
}

/// Every item of the index partition `idx = kind` that passes `filter`,
/// every page, up to [`MAX_PAGES`]: `pk`, `owner` and `expires_at_ms`.
pub(super) async fn query(
    table: &Table,
    health: &Health,
    kind: &str,
    filter: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<Vec<Item>, StateError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    for _ in 0..MAX_PAGES {
        let mut request = (table.client.query())
            .table_name(&table.name)
            .index_name(NAME)
            .key_condition_expression("#i = :kind")
            .filter_expression(filter)
            .projection_expression("#pk, #o, #e")
            .expression_attribute_names("#i", IDX)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#e", "expires_at_ms")
            .expression_attribute_values(":kind", AttributeValue::S(kind.to_string()))
            .set_exclusive_start_key(start.take());
        for (name, value) in &values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        let at = format!("(index {NAME}, {kind})");
        let out = (request.send().await)
            .map_err(|e| health.io(table, &at, &table.failure("Query", &e)))?;
        health.ok();
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return Ok(items),
        }
    }
    Err(StateError::Io {
        path: format!("dynamodb:{}", table.name),
        message: format!("Query of index {NAME} did not finish within {MAX_PAGES} pages"),
    })
}
