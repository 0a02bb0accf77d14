//! Replica heartbeats: one item per process (`pk = "replica#<owner>"`,
//! `idx = "replica"`, `expires_at_ms` three lease periods ahead), put once
//! per call of [`heartbeat`] (the daemon calls it once per lease period),
//! and the count of replicas alive from one Query of the index: each takes
//! its share of a provider's `rate_limit`.
//!
//! A clean exit expires the item ([`retire`], from the store's drop, which
//! the exit waits for like lease releases), so the others count one fewer
//! at their next heartbeat; a crashed replica's item stops counting when it
//! expires. Heartbeats expired for good are taken out of the index (at most
//! [`TIDY_PER_CALL`] per call), so the Query stays small across restarts;
//! the items themselves (a hundred bytes each) stay, like lease items.

use std::time::Duration;

use tracing::{info, warn};

use super::PK;
use super::held::wall_ms;
use super::index::IDX;
use super::query;
use super::table::{Failure, Table};
use super::{Health, n, number, s, text};
use crate::state::StateError;

const PREFIX: &str = "replica#";
/// `idx` of a heartbeat item.
const INDEXED: &str = "replica";
/// A heartbeat lasts this many lease periods: a replica that misses one
/// call (a slow pass, a table blip) still counts.
const LIFETIME: u32 = 3;
/// The most heartbeats of dead replicas taken out of the index per call.
const TIDY_PER_CALL: usize = 4;

fn pk(owner: &str) -> String {
    format!("{PREFIX}{owner}")
}

/// Puts this replica's heartbeat, then counts the replicas whose heartbeat
/// has not expired: itself (whether or not the index shows it yet) and
/// every other.
pub(super) async fn heartbeat(
    table: &Table,
    health: &Health,
    owner: &str,
    lease: Duration,
) -> Result<usize, StateError> {
    let mine = pk(owner);
    let now = wall_ms();
    let life = i64::try_from((lease * LIFETIME).as_millis()).unwrap_or(i64::MAX);
    let answer = (table.client.put_item())
        .table_name(&table.name)
        .item(PK, s(&mine))
        .item(IDX, s(INDEXED))
        .item("owner", s(owner))
        .item("expires_at_ms", n(now.saturating_add(life)))
        .send()
        .await;
    if let Err(e) = answer {
        return Err(health.io(table, &mine, &table.failure("PutItem", &e)));
    }
    health.ok();
    let items = query::index(table, health, INDEXED, "attribute_exists(#o)", vec![]).await?;
    let now = wall_ms();
    let mut alive = 1usize;
    let mut dead = Vec::new();
    for item in &items {
        let Some(at) = number(item, "expires_at_ms") else {
            continue;
        };
        match text(item, PK) {
            Some(pk) if pk == mine => {}
            Some(_) if at >= now => alive = alive.saturating_add(1),
            Some(pk) if dead.len() < TIDY_PER_CALL => dead.push(pk.to_string()),
            _ => {}
        }
    }
    for pk in dead {
        tidy(table, &pk, now).await;
    }
    Ok(alive)
}

/// Takes a dead replica's heartbeat out of the index, unless it came back
/// to life since it was read. A failure only leaves it for the next call.
async fn tidy(table: &Table, pk: &str, now: i64) {
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(pk))
        .update_expression("REMOVE #i")
        .condition_expression("#e < :now")
        .expression_attribute_names("#i", IDX)
        .expression_attribute_names("#e", "expires_at_ms")
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    if let Err(e) = answer
        && !matches!(table.failure("UpdateItem", &e), Failure::Refused)
    {
        warn!(item = pk, error = %table.render("UpdateItem", &e), "could not tidy a dead replica's heartbeat; the next heartbeat tries again");
    }
}

/// Expires this replica's heartbeat and takes it out of the index (a
/// clean exit), so the others count one fewer at their next heartbeat.
pub(super) async fn retire(table: &Table, owner: &str) {
    let mine = pk(owner);
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(&mine))
        .update_expression("SET #e = :zero REMOVE #i")
        .condition_expression("#o = :me")
        .expression_attribute_names("#i", IDX)
        .expression_attribute_names("#e", "expires_at_ms")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":me", s(owner))
        .send()
        .await;
    match answer {
        Ok(_) => info!(replica = owner, "replica heartbeat retired"),
        Err(e) => match table.failure("UpdateItem", &e) {
            Failure::Refused => {}
            other => {
                warn!(replica = owner, error = %other.message(), "could not retire the replica heartbeat; it expires on its own")
            }
        },
    }
}
