//! Bounded retries of single provider calls: 429/503 honour `Retry-After`;
//! transient failures (5xx, 503, timeouts) are retried only for idempotent
//! calls. A non-idempotent call (create) is repeated only after an answer
//! proving it was not carried out (a 429, a connection never made): one that
//! may have landed is settled by the sweep by rotation id, never repeated.
//! Behind a limiter (`providers::limited`, every entry built by `App`), a
//! 429 already holds the entry's next calls until its `Retry-After`, so
//! the retry goes straight back to the limiter and waits there, with every
//! other caller, rather than sleeping on its own.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use super::Ctx;
use crate::backoff::{Backoff, Jitter};
use crate::providers::ProviderError;

const MAX_ATTEMPTS: u32 = 4;
/// A `Retry-After` longer than this fails the call; the rotation backs off instead.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The pause when the answer names none: jittered, so rotations refused
/// together (one provider outage) do not all come back at the same instant.
const BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), MAX_WAIT).with_jitter(Jitter::Equal);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Yes,
    No,
}

pub async fn call<T, F, Fut>(
    ctx: &Ctx,
    what: &str,
    idempotent: Idempotent,
    mut f: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 1;
    loop {
        let e = match f().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let repeatable = idempotent == Idempotent::Yes || !e.may_have_taken_effect();
        let retry = repeatable
            && match &e {
                ProviderError::RateLimited { retry_after, .. } => {
                    retry_after.is_none_or(|d| d <= MAX_WAIT)
                }
                ProviderError::Transient { .. } => true,
                _ => false,
            };
        if !retry || attempt >= MAX_ATTEMPTS {
            return Err(e);
        }
        // The provider's own `Retry-After` is waited exactly.
        let wait = e
            .retry_after()
            .unwrap_or_else(|| BACKOFF.delay(attempt - 1));
        // A 429 the limiter saw: the limiter holds the next call.
        let held =
            matches!(e, ProviderError::RateLimited { status: 429, .. }) && ctx.provider.paced();
        if let Some(lease) = &ctx.lease
            && let Err(lost) = lease.ensure(wait + ctx.provider_span + ctx.provider.queue_delay())
        {
            // The step fails with the call's own error; the journal write
            // that records it is refused too if the lease is really gone.
            warn!(error = %e, lease = %lost, "{what}: not retried: the secret's lease may not outlive another attempt");
            return Err(e);
        }
        warn!(attempt, retry_in_ms = wait.as_millis() as u64, error = %e, kind = e.kind(), "{what}: retrying");
        let own = if held { Duration::ZERO } else { wait };
        tokio::select! {
            _ = tokio::time::sleep(own) => {}
            _ = ctx.cancel.cancelled() => return Err(e),
        }
        attempt += 1;
    }
}
