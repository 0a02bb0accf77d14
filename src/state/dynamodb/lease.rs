//! Lease items (`pk = "lease#<lease key>"`, never deleted): acquire, the
//! background renewal every lease/3, release on drop, and what
//! [`Lease::ensure`] may promise.
//!
//! Acquire is a consistent read (a lease held by another costs no write)
//! then one conditional UpdateItem: the item is free (absent, released, or
//! expired by this replica's wall clock) and its counter is still the one
//! read, so of two replicas racing for it exactly one wins; it sets owner,
//! expiry, counter + 1, a fresh nonce and `token = "<counter>-<nonce>"`.
//! The counter is read first because the token must name it, and DynamoDB
//! cannot build a string from a number in an update.
//!
//! Time: `expires_at_ms` is the writer's wall clock (replicas' clocks are
//! assumed within the skew margin of each other). What this process may
//! promise is judged on the monotonic clock only: from when the last
//! successful acquire or renewal was *sent*, the lease length minus the skew
//! margin, max(lease/10, 1s): a tenth keeps most of a long lease usable,
//! and one second covers NTP-disciplined clocks and a slow table answer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::ReturnValue;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::table::{Failure, PK, Table};
use super::{Health, Item, n, number, s, text};
use crate::names::LeaseKey;
use crate::state::{Fence, Lease, StateError};

const PREFIX: &str = "lease#";

pub(super) fn pk(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// Now on this replica's wall clock, in Unix milliseconds.
pub(super) fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// max(lease/10, 1s): see the module documentation.
pub(super) fn skew_margin(lease: Duration) -> Duration {
    (lease / 10).max(Duration::from_secs(1))
}

/// What a lease and its renewal task share.
struct Shared {
    table: Arc<Table>,
    health: Arc<Health>,
    key: LeaseKey,
    pk: String,
    fence: Fence,
    length: Duration,
    clock: Mutex<Clock>,
}

struct Clock {
    /// When the last acquire or renewal that succeeded was sent.
    sent: Instant,
    /// Why the lease is lost; `Some` is final.
    lost: Option<String>,
}

impl Shared {
    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lose(&self, why: &str) {
        let mut clock = self.clock();
        if clock.lost.is_none() {
            warn!(lease = %self.key, why, "lease lost");
            clock.lost = Some(why.to_string());
        }
    }
}

/// A held lease on a table's lease item; dropping it stops the renewal and
/// releases the item.
pub struct DynamoLease {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Lease for DynamoLease {
    fn key(&self) -> &LeaseKey {
        &self.shared.key
    }

    fn ensure(&self, span: Duration) -> Result<(), StateError> {
        let clock = self.shared.clock();
        let lost = |why: String| StateError::LeaseLost {
            key: self.shared.key.to_string(),
            why,
        };
        if let Some(why) = &clock.lost {
            return Err(lost(why.clone()));
        }
        let margin = skew_margin(self.shared.length);
        let sure_until = (clock.sent + self.shared.length).checked_sub(margin);
        let needed = Instant::now().checked_add(span);
        match (sure_until, needed) {
            (Some(until), Some(needed)) if needed < until => Ok(()),
            _ => Err(lost(format!(
                "it cannot be promised for {} more ms: the last successful renewal was sent {} ms ago \
                 (lease {} ms, skew margin {} ms)",
                span.as_millis(),
                clock.sent.elapsed().as_millis(),
                self.shared.length.as_millis(),
                margin.as_millis()
            ))),
        }
    }

    fn fence(&self) -> Option<&Fence> {
        Some(&self.shared.fence)
    }
}

impl Drop for DynamoLease {
    /// Stops renewing and, when a runtime is there to run it, releases the
    /// item; without one it simply expires.
    fn drop(&mut self) {
        self.stop.cancel();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move { release(&shared).await });
        }
    }
}

/// Takes the lease on `key` for `owner`, or `None` while another holds it.
pub(super) async fn acquire(
    table: &Arc<Table>,
    health: &Arc<Health>,
    key: &LeaseKey,
    owner: &str,
    length: Duration,
) -> Result<Option<DynamoLease>, StateError> {
    let pk = pk(key);
    let seen = read(table, health, &pk).await?;
    if let Some(item) = &seen
        && held(item)
    {
        return Ok(None);
    }
    let counter = seen
        .as_ref()
        .and_then(|i| number(i, "counter"))
        .unwrap_or(0);
    let nonce = format!("{:016x}", rand::random::<u64>());
    let token = format!("{}-{nonce}", counter + 1);
    let sent = Instant::now();
    let now = wall_ms();
    let expires = now.saturating_add(i64::try_from(length.as_millis()).unwrap_or(i64::MAX));
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(&pk))
        .update_expression(
            "SET #o = :me, #e = :exp, #c = if_not_exists(#c, :zero) + :one, #n = :nonce, #t = :token",
        )
        .condition_expression(
            "(attribute_not_exists(#pk) OR #o = :free OR #e < :now) \
             AND (attribute_not_exists(#c) OR #c = :seen)",
        )
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#e", "expires_at_ms")
        .expression_attribute_names("#c", "counter")
        .expression_attribute_names("#n", "nonce")
        .expression_attribute_names("#t", "token")
        .expression_attribute_values(":me", s(owner))
        .expression_attribute_values(":free", s(""))
        .expression_attribute_values(":exp", n(expires))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":seen", n(counter))
        .expression_attribute_values(":nonce", s(&nonce))
        .expression_attribute_values(":token", s(&token))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    crate::failpoint::hit("state:lease-acquired");
    let mine = match answer {
        Ok(out) => {
            health.ok();
            out.attributes().is_some_and(|i| ours(i, owner, &nonce))
        }
        Err(e) => match table.failure("UpdateItem", &e) {
            // Usually another replica won the race; but the SDK may have
            // retried an attempt of ours that landed and lost its answer,
            // which the retry's condition then refuses: read it back.
            Failure::Refused => settle(table, health, &pk, owner, &nonce, None).await?,
            Failure::Failed(why) => {
                health.failed(why.clone());
                return Err(io(table, &pk, why));
            }
            Failure::Unknown(why) => settle(table, health, &pk, owner, &nonce, Some(why)).await?,
        },
    };
    if !mine {
        return Ok(None);
    }
    let shared = Arc::new(Shared {
        table: table.clone(),
        health: health.clone(),
        key: key.clone(),
        pk,
        fence: Fence {
            owner: owner.to_string(),
            token,
        },
        length,
        clock: Mutex::new(Clock { sent, lost: None }),
    });
    let stop = CancellationToken::new();
    tokio::spawn(renew_loop(shared.clone(), stop.clone()));
    Ok(Some(DynamoLease { shared, stop }))
}

/// An acquire refused or whose answer was lost (`why`): the item is read
/// back. Ours (owner and this attempt's nonce) → held. Not ours → not held.
/// A read-back that fails too → a conditional release of whatever this
/// attempt may have set, then the error: a lease item never stays ours
/// unrenewed past its expiry, and never at all once the release lands.
async fn settle(
    table: &Arc<Table>,
    health: &Arc<Health>,
    pk: &str,
    owner: &str,
    nonce: &str,
    why: Option<String>,
) -> Result<bool, StateError> {
    match &why {
        Some(why) => health.failed(why.clone()),
        None => health.ok(),
    }
    let why = why.unwrap_or_else(|| "the acquire was refused".to_string());
    match read(table, health, pk).await {
        Ok(item) => Ok(item.is_some_and(|i| ours(&i, owner, nonce))),
        Err(e) => {
            let released = (table.client.update_item())
                .table_name(&table.name)
                .key(PK, s(pk))
                .update_expression("SET #o = :free")
                .condition_expression("#o = :me AND #n = :nonce")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#n", "nonce")
                .expression_attribute_values(":free", s(""))
                .expression_attribute_values(":me", s(owner))
                .expression_attribute_values(":nonce", s(nonce))
                .send()
                .await;
            if let Err(r) = released {
                warn!(lease = pk, error = %table.render("UpdateItem", &r), "could not release a lease whose acquire answer was lost; it expires unrenewed");
            }
            Err(io(
                table,
                pk,
                format!("{why}; reading the lease back failed too: {e}"),
            ))
        }
    }
}

/// The lease item (consistent read); `None` when there is none yet.
async fn read(table: &Table, health: &Health, pk: &str) -> Result<Option<Item>, StateError> {
    let answer = (table.client.get_item())
        .table_name(&table.name)
        .key(PK, s(pk))
        .consistent_read(true)
        .send()
        .await;
    match answer {
        Ok(out) => {
            health.ok();
            Ok(out.item().cloned())
        }
        Err(e) => Err(health.io(table, pk, &table.failure("GetItem", &e))),
    }
}

/// Held by someone (this replica included) and not expired by our clock.
pub(super) fn held(item: &Item) -> bool {
    text(item, "owner").is_some_and(|o| !o.is_empty())
        && number(item, "expires_at_ms").is_some_and(|at| at >= wall_ms())
}

fn ours(item: &Item, owner: &str, nonce: &str) -> bool {
    text(item, "owner") == Some(owner) && text(item, "nonce") == Some(nonce)
}

fn io(table: &Table, pk: &str, message: String) -> StateError {
    StateError::Io {
        path: table.at(pk),
        message,
    }
}

/// Renews every lease/3 until stopped or lost.
async fn renew_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.length / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // A test pauses renewal here to let the lease expire under a holder.
        crate::failpoint::pause("state:lease-renew").await;
        if stop.is_cancelled() || !renew(&shared).await {
            return;
        }
    }
}

/// One renewal; `false` once the lease is lost. A renewal that fails for
/// another reason changes nothing: `ensure` stops promising as time passes,
/// and the next tick tries again.
async fn renew(shared: &Shared) -> bool {
    let table = &shared.table;
    let sent = Instant::now();
    let now = wall_ms();
    let expires = now.saturating_add(i64::try_from(shared.length.as_millis()).unwrap_or(i64::MAX));
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(&shared.pk))
        .update_expression("SET #e = :exp")
        .condition_expression("#o = :me AND #t = :token AND #e > :now")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#t", "token")
        .expression_attribute_names("#e", "expires_at_ms")
        .expression_attribute_values(":me", s(&shared.fence.owner))
        .expression_attribute_values(":token", s(&shared.fence.token))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":exp", n(expires))
        .send()
        .await;
    match answer {
        Ok(_) => {
            shared.health.ok();
            let mut clock = shared.clock();
            clock.sent = clock.sent.max(sent);
            true
        }
        Err(e) => {
            match table.failure("UpdateItem", &e) {
                Failure::Refused => {
                    shared.health.ok();
                    shared.lose("the table refused its renewal: another replica took it, or it expired first");
                    false
                }
                Failure::Failed(why) | Failure::Unknown(why) => {
                    warn!(lease = %shared.key, error = %why, "lease renewal failed; retrying");
                    shared.health.failed(why);
                    true
                }
            }
        }
    }
}

/// Clears the owner if the item still carries our token (a lease already
/// taken over is left alone).
async fn release(shared: &Shared) {
    let table = &shared.table;
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(&shared.pk))
        .update_expression("SET #o = :free")
        .condition_expression("#o = :me AND #t = :token")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#t", "token")
        .expression_attribute_values(":free", s(""))
        .expression_attribute_values(":me", s(&shared.fence.owner))
        .expression_attribute_values(":token", s(&shared.fence.token))
        .send()
        .await;
    match answer {
        Ok(_) => info!(lease = %shared.key, "lease released"),
        Err(e) => match table.failure("UpdateItem", &e) {
            Failure::Refused => {}
            other => {
                warn!(lease = %shared.key, error = %other.message(), "lease release failed; it expires unrenewed")
            }
        },
    }
}
