//! Lease items (`pk = "lease#<lease key>"`, never deleted): acquire, and
//! what [`Lease::ensure`] may promise; renewal every lease/3 and release on
//! drop are in [`super::renewal`].
//!
//! Acquire is a consistent read (a lease held by another costs no write)
//! then one conditional UpdateItem: the item is free (absent, released, or
//! expired by this replica's wall clock) and its counter is still the one
//! read, so of two replicas racing for it exactly one wins; it sets owner,
//! expiry, counter + 1, a fresh nonce and `token = "<counter>-<nonce>"`,
//! and `idx = "lease"`, which puts the item in the table's index until a
//! release removes it: a lease whose holder died stays there, expired, for
//! [`super::index`]'s one Query to find.
//! The counter is read first because the token must name it, and DynamoDB
//! cannot build a string from a number in an update.
//!
//! Time: `expires_at_ms` is the writer's wall clock (replicas' clocks are
//! assumed within the skew margin of each other). What this process may
//! promise is judged on the monotonic clock only: from when the last
//! successful acquire or renewal was *sent*, the lease length minus the skew
//! margin, max(lease/10, 1s): a tenth keeps most of a long lease usable,
//! and one second covers NTP-disciplined clocks and a slow table answer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::ReturnValue;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::PK;
use super::held::{Clock, Shared, skew_margin, wall_ms};
use super::index;
use super::renewal::{self, RELEASES, release};
use super::table::{Failure, Table};
use super::{Health, Item, n, number, read_item as read, s, text};
use crate::names::LeaseKey;
use crate::state::{Fence, Lease, StateError};

const PREFIX: &str = "lease#";
/// `idx` of a lease item while it has an owner.
pub(super) const INDEXED: &str = "lease";

pub(super) fn pk(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// The lease key of a lease item's `pk`.
pub(super) fn key_of(pk: &str) -> Option<LeaseKey> {
    LeaseKey::parse(pk.strip_prefix(PREFIX)?).ok()
}

/// A held lease on a table's lease item; dropping it stops the renewal and
/// releases the item.
pub struct DynamoLease {
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// Released already (by [`Lease::release`]): dropping does nothing more.
    released: std::sync::atomic::AtomicBool,
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

    fn period(&self) -> Option<Duration> {
        Some(self.shared.length)
    }

    fn release(&self) -> crate::state::Releasing<'_> {
        Box::pin(async move {
            self.stop.cancel();
            if !self
                .released
                .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                release(&self.shared).await;
            }
        })
    }
}

impl Drop for DynamoLease {
    /// Stops renewing and, when a runtime is there to run it, releases the
    /// item on a task [`released`] can wait for; without one it simply expires.
    fn drop(&mut self) {
        self.stop.cancel();
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(RELEASES.track_future(async move { release(&shared).await }));
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
            "SET #o = :me, #e = :exp, #c = if_not_exists(#c, :zero) + :one, #n = :nonce, #t = :token, #i = :idx",
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
        .expression_attribute_names("#i", index::IDX)
        .expression_attribute_values(":idx", s(INDEXED))
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
        clock: Mutex::new(Clock::new(sent)),
    });
    let stop = CancellationToken::new();
    tokio::spawn(renewal::renew_loop(shared.clone(), stop.clone()));
    Ok(Some(DynamoLease {
        shared,
        stop,
        released: std::sync::atomic::AtomicBool::new(false),
    }))
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
        // Ours but already expired (the retries took longer than the
        // lease): another replica may take it any moment, so not held.
        Ok(item) => Ok(item.is_some_and(|i| ours(&i, owner, nonce) && held(&i))),
        Err(e) => {
            let released = (table.client.update_item())
                .table_name(&table.name)
                .key(PK, s(pk))
                .update_expression("SET #o = :free REMOVE #i")
                .condition_expression("#o = :me AND #n = :nonce")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#i", index::IDX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skew_margin_is_a_tenth_of_the_lease_and_never_under_a_second() {
        assert_eq!(skew_margin(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(skew_margin(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(skew_margin(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(
            skew_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn only_an_owned_unexpired_item_is_held() {
        let item = |owner: &str, at: i64| {
            Item::from([
                ("owner".to_string(), s(owner)),
                ("expires_at_ms".to_string(), n(at)),
            ])
        };
        let later = wall_ms() + 60_000;
        assert!(held(&item("host/1/a", later)));
        assert!(!held(&item("", later)), "released");
        assert!(!held(&item("host/1/a", wall_ms() - 1)), "expired");
        assert!(!held(&Item::new()), "never written");
    }
}
