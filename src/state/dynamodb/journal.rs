//! Journal items (`pk = "journal#<policy>"`): load with a consistent read,
//! the fenced save (one TransactWriteItems: a ConditionCheck on the lease
//! item + the Put), the unfenced import, and the scans for policies and
//! rotations in flight. `body` is byte for byte what the file store writes.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};

use super::PK;
use super::table::{Failure, Table};
use super::{Health, Item, lease, n, read_item, s, text};
use crate::names::{LeaseKey, PolicyName};
use crate::state::{Lease, PolicyState, StateError, codec};

const PREFIX: &str = "journal#";
/// Far below DynamoDB's 400 KB item limit, leaving room for the other
/// attributes; the history is capped at 20 entries, so only a journal gone
/// wrong comes near it.
pub(super) const MAX_BODY: usize = 350 * 1024;
/// Pages of one scan (each up to 1 MB): a bound, not a size anyone reaches.
const MAX_PAGES: usize = 10_000;

pub(super) fn pk(policy: &str) -> String {
    format!("{PREFIX}{policy}")
}

/// The journal of `policy`; a fresh state when the table has none.
pub(super) async fn load(
    table: &Table,
    health: &Health,
    policy: &PolicyName,
) -> Result<PolicyState, StateError> {
    let pk = pk(policy);
    match read_body(table, health, &pk).await? {
        Some(body) => codec::parse(&table.at(&pk), body.as_bytes()),
        None => Ok(PolicyState::new(policy)),
    }
}

/// The `body` of a journal item (consistent read); `None` when absent.
async fn read_body(table: &Table, health: &Health, pk: &str) -> Result<Option<String>, StateError> {
    let Some(item) = read_item(table, health, pk).await? else {
        return Ok(None);
    };
    match text(&item, "body") {
        Some(body) => Ok(Some(body.to_string())),
        None => Err(StateError::Corrupt {
            path: table.at(pk),
            message: "the item has no string attribute \"body\"".to_string(),
        }),
    }
}

/// The item as stored: the body and what the scans filter on.
fn item(
    table: &Table,
    state: &PolicyState,
    lease: Option<&LeaseKey>,
) -> Result<(Item, String), StateError> {
    let pk = pk(&state.policy);
    let body = String::from_utf8(codec::encode(&table.at(&pk), state)?).map_err(|e| {
        StateError::Corrupt {
            path: table.at(&pk),
            message: e.to_string(),
        }
    })?;
    if body.len() > MAX_BODY {
        return Err(StateError::Io {
            path: table.at(&pk),
            message: format!(
                "the journal is {} bytes, more than the {} KB a table item may hold here; not written",
                body.len(),
                MAX_BODY / 1024
            ),
        });
    }
    let mut item = HashMap::from([
        (PK.to_string(), s(&pk)),
        ("body".to_string(), s(&body)),
        ("format".to_string(), n(state.format())),
        (
            "in_flight".to_string(),
            AttributeValue::Bool(state.in_flight.is_some()),
        ),
        (
            "updated_at".to_string(),
            s(&crate::clock::rfc3339(chrono::Utc::now())),
        ),
    ]);
    if let Some(key) = lease {
        item.insert("lease".to_string(), s(key));
    }
    Ok((item, body))
}

/// The fenced write. The lease must still be ours by the table's own
/// record (owner and token unchanged, not expired by the writer's clock):
/// the ConditionCheck and the Put land together or not at all.
pub(super) async fn save(
    table: &Table,
    health: &Health,
    state: &PolicyState,
    held: &dyn Lease,
) -> Result<(), StateError> {
    let key = held.key();
    let Some(fence) = held.fence() else {
        return Err(lost(
            key,
            "the lease is not one of this table's (it has no fencing token)",
        ));
    };
    // A lease this process already knows is lost (or cannot vouch for) is
    // not worth a table call: the answer could only be a refusal.
    held.ensure(Duration::ZERO)?;
    let (item, body) = item(table, state, Some(key))?;
    let pk = pk(&state.policy);
    let check = ConditionCheck::builder()
        .table_name(&table.name)
        .key(PK, s(&lease::pk(key)))
        .condition_expression("#o = :me AND #t = :token AND #e > :now")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#t", "token")
        .expression_attribute_names("#e", "expires_at_ms")
        .expression_attribute_values(":me", s(&fence.owner))
        .expression_attribute_values(":token", s(&fence.token))
        .expression_attribute_values(":now", n(super::held::wall_ms()))
        .build();
    let put = Put::builder()
        .table_name(&table.name)
        .set_item(Some(item))
        .build();
    let (check, put) = match (check, put) {
        (Ok(check), Ok(put)) => (check, put),
        (Err(e), _) | (_, Err(e)) => {
            return Err(StateError::Io {
                path: table.at(&pk),
                message: format!("TransactWriteItems could not be built: {e}"),
            });
        }
    };
    let answer = (table.client.transact_write_items())
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        // The SDK retries a timed-out attempt with the same token: DynamoDB
        // applies an idempotent transaction once.
        .client_request_token(uuid::Uuid::now_v7().to_string())
        .send()
        .await;
    let err = match answer {
        Ok(_) => {
            health.ok();
            return Ok(());
        }
        Err(e) => e,
    };
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    {
        health.ok();
        let reasons: Vec<&str> = (cancel.cancellation_reasons().iter())
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        if reasons.first() == Some(&"ConditionalCheckFailed") {
            return Err(lost(
                key,
                "the table refused the journal write: the lease item no longer carries this \
                 replica's owner and token, or it expired",
            ));
        }
        // A cancelled transaction wrote nothing.
        return Err(StateError::Io {
            path: table.at(&pk),
            message: format!(
                "TransactWriteItems cancelled, nothing written (reasons: {}; {})",
                reasons.join(", "),
                err.message().unwrap_or("no message")
            ),
        });
    }
    match table.failure("TransactWriteItems", &err) {
        Failure::Unknown(why) => settle(table, health, &pk, &body, why).await,
        other => Err(health.io(table, &pk, &other)),
    }
}

/// A write whose answer was lost: the journal is read back and compared.
/// Ours → it landed. Anything else → it did not land by the time of the
/// read; a late landing is still fenced by the lease condition, and the next
/// load reads whichever is there. A failed read-back reports both reasons.
async fn settle(
    table: &Table,
    health: &Health,
    pk: &str,
    body: &str,
    why: String,
) -> Result<(), StateError> {
    health.failed(why.clone());
    match read_body(table, health, pk).await {
        Ok(Some(stored)) if stored == body => Ok(()),
        Ok(_) => Err(StateError::Io {
            path: table.at(pk),
            message: format!(
                "{why}; read back: the table still holds the previous journal, so this write is counted as not done"
            ),
        }),
        Err(e) => Err(StateError::Io {
            path: table.at(pk),
            message: format!("{why}; the read-back to settle it failed too: {e}"),
        }),
    }
}

fn lost(key: &LeaseKey, why: &str) -> StateError {
    StateError::LeaseLost {
        key: key.to_string(),
        why: why.to_string(),
    }
}

/// PutItem only where no journal item exists yet.
pub(super) async fn import(
    table: &Table,
    health: &Health,
    state: &PolicyState,
) -> Result<bool, StateError> {
    let (item, _) = item(table, state, None)?;
    let pk = pk(&state.policy);
    let answer = (table.client.put_item())
        .table_name(&table.name)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .send()
        .await;
    match answer {
        Ok(_) => {
            health.ok();
            Ok(true)
        }
        Err(e) => match table.failure("PutItem", &e) {
            Failure::Refused => {
                health.ok();
                Ok(false)
            }
            other => Err(health.io(table, &pk, &other)),
        },
    }
}

/// Every journal's policy (`only_in_flight`: those with a rotation in
/// flight), in name order. Items whose name is not a policy name are not
/// journals of this rekey and are skipped.
pub(super) async fn policies(
    table: &Table,
    health: &Health,
    only_in_flight: bool,
) -> Result<Vec<PolicyName>, StateError> {
    let mut filter = "begins_with(#pk, :prefix)".to_string();
    let mut values = vec![(":prefix", s(PREFIX))];
    if only_in_flight {
        filter.push_str(" AND in_flight = :yes");
        values.push((":yes", AttributeValue::Bool(true)));
    }
    let items = scan(table, health, &filter, values, &[("#pk", PK)], "#pk").await?;
    let mut names: Vec<PolicyName> = (items.iter())
        .filter_map(|item| text(item, PK)?.strip_prefix(PREFIX))
        .filter_map(|name| PolicyName::parse(name).ok())
        .collect();
    names.sort();
    Ok(names)
}

/// A Scan, every page (consistent reads), up to [`MAX_PAGES`].
pub(super) async fn scan(
    table: &Table,
    health: &Health,
    filter: &str,
    values: Vec<(&str, AttributeValue)>,
    names: &[(&str, &str)],
    projection: &str,
) -> Result<Vec<Item>, StateError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    for _ in 0..MAX_PAGES {
        let mut request = (table.client.scan())
            .table_name(&table.name)
            .consistent_read(true)
            .filter_expression(filter)
            .projection_expression(projection)
            .set_exclusive_start_key(start.take());
        for (name, value) in &values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        for (alias, name) in names {
            request = request.expression_attribute_names(*alias, *name);
        }
        let out = (request.send().await)
            .map_err(|e| health.io(table, "(scan)", &table.failure("Scan", &e)))?;
        health.ok();
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return Ok(items),
        }
    }
    Err(StateError::Io {
        path: format!("dynamodb:{}", table.name),
        message: format!("Scan did not finish within {MAX_PAGES} pages"),
    })
}
