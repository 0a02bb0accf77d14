//! The paged Query of one partition of the table's index
//! ([`super::index`]): the lease items still owned, or the replica
//! heartbeats. Reads from a global secondary index are eventually
//! consistent: an item written a moment ago may be missing from one
//! answer, which the callers allow for (a lease found expired is taken with
//! a conditional write; a replica counts itself).

use super::index::{IDX, NAME};
use super::table::Table;
use super::{AttributeValue, Health, Item, PK};
use crate::state::StateError;

/// Pages of one query (each up to 1 MB): a bound, not a size anyone reaches.
const MAX_PAGES: usize = 10_000;

/// Every item of the index partition `idx = kind` that passes `filter`,
/// every page, up to [`MAX_PAGES`]: `pk`, `owner` and `expires_at_ms`.
pub(super) async fn index(
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
