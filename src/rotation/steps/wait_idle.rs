//! `revoke.wait_idle`: after the grace, the old key is revoked only once
//! its provider shows it unused for `wait_idle` — last use where the
//! provider reports it (OpenAI, ARouter, LiteLLM), else spend counters that
//! stop moving between two reads (OpenRouter: a weak signal). Past
//! `max_wait` a busy key is revoked (alert `revoked_busy`) or kept (alert
//! `old_key_busy`). A missing or unreadable signal is never taken for idle.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::events::{EventOutcome, EventStep};
use crate::policy::OnBusy;
use crate::providers::{KeyInfo, KeyUsage, UsageSignal};
use crate::rotation::decide::{WaitReason, failure_backoff};
use crate::rotation::run::Run;
use crate::rotation::{RotationError, RunOutcome};
use crate::state::IdleWatch;

/// What a read of the old key at the provider found.
enum Read {
    Gone,
    Usage(KeyUsage),
    /// The provider has the key but said nothing about its use.
    Unknown(String),
}

/// What one read of the old key's use found.
enum Use {
    Idle(String),
    Busy { why: String, recheck: DateTime<Utc> },
}

impl Run<'_> {
    /// `revoke.wait_idle`, after the grace: `None` when the old key may be
    /// revoked now; `Some` when this run stops here (the journal says when
    /// to read its use again). Never sleeps: a run holding the lease (an
    /// operator's `rotate`, the daemon's permit) does not wait on a consumer.
    pub(super) async fn wait_idle(&mut self) -> Result<Option<RunOutcome>, RotationError> {
        let Some(wait) = self.policy.revoke.wait_idle else {
            return Ok(None);
        };
        let Some(old_id) = (self.rotation_ref().old_key.as_ref()).and_then(|k| k.id.clone()) else {
            return Ok(None);
        };
        let now = self.now();
        let busy_until = |run: &Self| {
            let watch = run.rotation_ref().after_promote.idle.as_ref();
            Some(RunOutcome::NotDue {
                until: watch.map(|w| w.next_check),
                why: WaitReason::OldKeyBusy,
            })
        };
        let next = (self.rotation_ref().after_promote.idle.as_ref()).map(|w| w.next_check);
        if next.is_some_and(|at| at > now) {
            return Ok(busy_until(self));
        }
        let found = match self.old_key_use(&old_id).await {
            Ok(Read::Gone) => Use::Idle("the old key is gone at the provider".into()),
            Ok(Read::Unknown(why)) => Use::Busy {
                why,
                recheck: crate::clock::later(now, wait),
            },
            Ok(Read::Usage(usage)) => self.judge(usage, wait, now),
            // Past max_wait a read that keeps failing must not hold the
            // rotation forever: it counts as busy, and on_busy decides.
            Err(e) if now >= self.idle_deadline(now) => Use::Busy {
                why: format!("its use could not be read: {e}"),
                recheck: crate::clock::later(now, wait),
            },
            Err(e) => return Err(e),
        };
        match found {
            Use::Idle(why) => {
                info!(key_id = %old_id, %why, "the old key is idle; revoking it");
                if self.rotation_ref().after_promote.idle.is_some() {
                    self.emit(EventStep::WaitIdle, EventOutcome::Ok, None);
                }
                Ok(None)
            }
            Use::Busy { why, recheck } => match self.busy(&old_id, why, recheck).await? {
                true => Ok(None),
                false => Ok(busy_until(self)),
            },
        }
    }

    /// When `max_wait` ends: after the grace, or after the first read of the
    /// old key's use when hooks held it past the grace.
    fn idle_deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let rotation = self.rotation_ref();
        let grace_end = rotation.revoke_after.unwrap_or(now);
        let watched = rotation
            .after_promote
            .idle
            .as_ref()
            .map_or(now, |w| w.since);
        crate::clock::later(grace_end.max(watched), self.policy.revoke.max_wait)
    }

    /// The old key still in use: watch on, or past `max_wait` revoke
    /// (`true`) or keep it. Journals the watch.
    async fn busy(
        &mut self,
        old_id: &str,
        why: String,
        recheck: DateTime<Utc>,
    ) -> Result<bool, RotationError> {
        let now = self.now();
        let (revoke, failures) = (&self.policy.revoke, self.ctx.backoff);
        let deadline = self.idle_deadline(now);
        let poll = crate::clock::later(now, self.ctx.usage_poll);
        let watch = self
            .rotation()
            .after_promote
            .idle
            .get_or_insert_with(|| IdleWatch::new(now));
        let first = watch.why.is_empty();
        watch.why = why.clone();
        if now < deadline {
            watch.next_check = recheck.min(poll).min(deadline).max(now);
            info!(key_id = %old_id, %why, "the old key is still in use; not revoked yet (revoke.wait_idle)");
            self.save().await?;
            if first {
                let waiting = RotationError::InUse(why);
                self.emit(EventStep::WaitIdle, EventOutcome::Waiting, Some(&waiting));
            }
            return Ok(false);
        }
        if revoke.on_busy == OnBusy::Revoke {
            let error = RotationError::RevokedBusy(why);
            warn!(key_id = %old_id, error = %error, "revoking a busy old key: revoke.max_wait has passed");
            self.save().await?;
            self.emit(EventStep::WaitIdle, EventOutcome::Ok, Some(&error));
            return Ok(true);
        }
        watch.next_check = recheck.min(poll).max(now);
        let backoff = failure_backoff(watch.busy_alerts + 1, failures);
        let alert = watch
            .alerted_at
            .is_none_or(|at| now >= crate::clock::later(at, backoff));
        if alert {
            watch.busy_alerts += 1;
            watch.alerted_at = Some(now);
        }
        let error = RotationError::OldKeyBusy(format!(
            "{why}; kept past revoke.max_wait (on_busy = \"keep\"): no new rotation starts until it is idle or `rekey rotate --now --grace 0`"
        ));
        warn!(key_id = %old_id, error = %error, "the old key is still in use");
        self.save().await?;
        if alert {
            self.emit(EventStep::WaitIdle, EventOutcome::Waiting, Some(&error));
        }
        Ok(false)
    }

    /// The old key's use as its provider reports it (through the policy's
    /// rate-limited client).
    async fn old_key_use(&self, id: &str) -> Result<Read, RotationError> {
        let provider = &self.ctx.provider;
        let found = self
            .provider_call("read the old key's use", || provider.get_key(id))
            .await?;
        let Some(found) = found else {
            return Ok(Read::Gone);
        };
        if let Some(usage) = found.usage {
            return Ok(Read::Usage(usage));
        }
        // Some lookups do not show use (OpenAI's): the listing does.
        let keys = self
            .provider_call("list keys for the old key's use", || provider.list_keys())
            .await?;
        let listed = keys.into_iter().find(|k: &KeyInfo| k.id == id);
        Ok(match listed.and_then(|k| k.usage) {
            Some(usage) => Read::Usage(usage),
            None => Read::Unknown(
                "the provider's answers carried no use for it (not listed, or no usage fields)"
                    .into(),
            ),
        })
    }

    /// Whether `usage` says the old key has been idle for `wait`.
    fn judge(&mut self, usage: KeyUsage, wait: Duration, now: DateTime<Utc>) -> Use {
        let since = |at: DateTime<Utc>| crate::clock::later(at, wait);
        let by_time =
            usage.signal.has_last_use() && (usage.last_used_at.is_some() || usage.spend.is_none());
        if by_time {
            if let Some(watch) = self.rotation().after_promote.idle.as_mut() {
                watch.last_used_at = usage.last_used_at;
            }
            return match usage.last_used_at {
                None => Use::Idle("never used, the provider says".into()),
                Some(last) if since(last) <= now => {
                    Use::Idle(format!("last used at {}", crate::clock::rfc3339(last)))
                }
                Some(last) => Use::Busy {
                    why: format!(
                        "last used at {}, less than revoke.wait_idle ({}) ago",
                        crate::clock::rfc3339(last),
                        humantime::format_duration(wait)
                    ),
                    recheck: since(last),
                },
            };
        }
        if usage.signal == UsageSignal::NoSignal {
            warn!(
                "provider {} gives no usage signal for a key: revoking after the grace without waiting for idle",
                self.policy.provider
            );
            return Use::Idle("no usage signal at this provider".into());
        }
        let Some(total) = spend_total(&usage) else {
            return Use::Busy {
                why: "the provider reported no spend for it".into(),
                recheck: since(now),
            };
        };
        let watch = self.rotation_ref().after_promote.idle.clone();
        let before = watch.as_ref().and_then(|w| Some((w.spend?, w.spend_at?)));
        let moved = |why: String| Use::Busy {
            why,
            recheck: since(now),
        };
        let found = match before {
            None => moved(format!(
                "spend {total} read; idle if unchanged after revoke.wait_idle (a weak signal: free models move nothing)"
            )),
            Some((was, at)) if was == total && since(at) <= now => {
                return Use::Idle(format!(
                    "spend unchanged at {total} since {}",
                    crate::clock::rfc3339(at)
                ));
            }
            Some((was, at)) if was == total => {
                return Use::Busy {
                    why: format!("spend unchanged at {total}; waiting out revoke.wait_idle"),
                    recheck: since(at),
                };
            }
            Some((was, _)) => moved(format!("spend moved from {was} to {total}")),
        };
        self.record_spend(total, now);
        found
    }

    fn record_spend(&mut self, total: f64, now: DateTime<Utc>) {
        let watch = self
            .rotation()
            .after_promote
            .idle
            .get_or_insert_with(|| IdleWatch::new(now));
        watch.spend = Some(total);
        watch.spend_at = Some(now);
    }
}

/// Spend through the key and its BYOK spend, over the longest period given.
fn spend_total(usage: &KeyUsage) -> Option<f64> {
    let longest = |s: &crate::providers::Spend| s.total.or(s.monthly).or(s.weekly).or(s.daily);
    let own = longest(usage.spend.as_ref()?)?;
    Some(own + usage.byok.as_ref().and_then(longest).unwrap_or(0.0))
}
