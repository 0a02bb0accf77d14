//! Keeping a held lease: the renewal every lease/3 (conditioned on owner,
//! token and not expired; refused → the lease is lost), and the release
//! when it is dropped (conditioned on our token), tracked so that a process
//! about to exit can let the releases land ([`released`]).

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::PK;
use super::held::{Shared, wall_ms};
use super::table::Failure;
use super::{n, s};

/// The releases still running, so that a process about to exit lets them land.
pub(super) static RELEASES: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Waits up to `limit` for the releases of dropped leases to land (a CLI
/// command or the daemon about to exit): a lease left to expire would keep
/// the next run (or replica) out for its whole length.
pub async fn released(limit: Duration) {
    RELEASES.close();
    let _ = tokio::time::timeout(limit, RELEASES.wait()).await;
    RELEASES.reopen();
}

/// Renews a third of the lease after the last renewal (or acquire) was
/// sent, until stopped or lost: an acquire that took long to answer is
/// renewed soon after.
pub(super) async fn renew_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.length / 3;
    loop {
        let next = shared.clock().sent + every;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(next.into()) => {}
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

/// Clears the owner, and takes the item out of the index, if it still
/// carries our token (a lease already taken over is left alone).
pub(super) async fn release(shared: &Shared) {
    let table = &shared.table;
    let answer = (table.client.update_item())
        .table_name(&table.name)
        .key(PK, s(&shared.pk))
        .update_expression("SET #o = :free REMOVE #i")
        .condition_expression("#o = :me AND #t = :token")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_names("#i", super::index::IDX)
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
