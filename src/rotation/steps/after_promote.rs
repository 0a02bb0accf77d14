//! What a promoted rotation waits for before it revokes the old key: its
//! `on_promote` hooks (run right after promote, in order, each journaled
//! once it succeeded) and, after the grace, the old key going idle
//! (`revoke.wait_idle`). The leaked-key path (`--grace 0`) waits for
//! neither: its hooks still run, once, and still alert when they fail.

use tracing::{info, warn};

use crate::events::{EventOutcome, EventStep};
use crate::failpoint;
use crate::hooks::HookFields;
use crate::rotation::run::Run;
use crate::rotation::{RotationError, RunOutcome, Until};

impl Run<'_> {
    /// After promote: the hooks, the grace, the old key going idle, revoke.
    pub(super) async fn after_promote(
        &mut self,
        until: Until,
    ) -> Result<RunOutcome, RotationError> {
        if self.leaked() {
            // Revoke first; the hooks still run (and alert when they fail).
            let rotation = self.rotation_ref().clone();
            let outcome = self.revoke().await?;
            self.hooks_after_leak(&rotation).await;
            return Ok(outcome);
        }
        self.forget_changed_hooks();
        if let Err(e) = self.run_hooks().await {
            return self.fail(e).await;
        }
        if let Some(outcome) = self.grace(until).await {
            return Ok(outcome);
        }
        match self.wait_idle().await {
            Ok(Some(outcome)) => Ok(outcome),
            Ok(None) => self.revoke().await,
            Err(e) => self.fail(e).await,
        }
    }

    /// The leaked-key path (`--grace 0`): revoke at once, whatever hooks
    /// and use say. Journaled, so a resume keeps to it.
    fn leaked(&self) -> bool {
        self.rotation_ref().after_promote.leaked
    }

    /// The hooks done were counted against another `on_promote` list (a
    /// reload changed it): all of the new list runs.
    fn forget_changed_hooks(&mut self) {
        let now = hooks_fingerprint(&self.policy.on_promote);
        let after = &mut self.rotation().after_promote;
        if after.hooks_done > 0 && after.hooks_fingerprint != Some(now) {
            warn!(
                "the on_promote hooks changed since some of them ran; running the new list from its start"
            );
            after.hooks_done = 0;
            after.hook_failing_since = None;
        }
    }

    /// Runs every hook once for a rotation the leaked-key path finished:
    /// failures are alerted and audited, and hold nothing.
    async fn hooks_after_leak(&mut self, rotation: &crate::state::Rotation) {
        let hooks = self.policy.on_promote.clone();
        for (index, hook) in hooks.iter().enumerate() {
            let name = hook.describe(index);
            match self.run_hook(&name, hook, rotation).await {
                Ok(()) => {
                    self.emit_for(Some(rotation), EventStep::Hook, EventOutcome::Ok, None);
                }
                Err(e) => {
                    let error = RotationError::HookFailed {
                        hook: name.clone(),
                        message: format!("{e} (the old key was revoked at once: --grace 0)"),
                    };
                    warn!(hook = %name, error = %error, "on_promote hook failed");
                    self.emit_for(
                        Some(rotation),
                        EventStep::Hook,
                        EventOutcome::Failed,
                        Some(&error),
                    );
                }
            }
        }
    }

    /// Runs the hooks not yet done, in order. A failure stops here: the
    /// rotation stays in flight, backing off, and the old key stays live.
    pub(super) async fn run_hooks(&mut self) -> Result<(), RotationError> {
        let hooks = self.policy.on_promote.clone();
        let done = self.rotation_ref().after_promote.hooks_done as usize;
        if done < hooks.len() {
            failpoint::hit("hooks:before");
        }
        for (index, hook) in hooks.iter().enumerate().skip(done) {
            let name = hook.describe(index);
            match self.run_hook(&name, hook, self.rotation_ref()).await {
                Ok(()) => {
                    let after = &mut self.rotation().after_promote;
                    after.hooks_done = index as u32 + 1;
                    after.hooks_fingerprint = Some(hooks_fingerprint(&hooks));
                    if after.hook_failing_since.take().is_some() {
                        // The hook's failures are behind it: a later step's
                        // first failure backs off from the start.
                        self.state.failures = 0;
                        self.state.retry_not_before = None;
                    }
                    self.save().await?;
                    self.emit(EventStep::Hook, EventOutcome::Ok, None);
                }
                Err(e) => {
                    let now = self.now();
                    let since =
                        *(self.rotation().after_promote.hook_failing_since).get_or_insert(now);
                    let max_wait = self.policy.revoke.max_wait;
                    let message = if now >= crate::clock::later(since, max_wait) {
                        format!(
                            "{e} (failing since {}, longer than revoke.max_wait {}; still retried: fix the hook, or rotate with --grace 0)",
                            crate::clock::rfc3339(since),
                            humantime::format_duration(max_wait)
                        )
                    } else {
                        e.to_string()
                    };
                    let error = RotationError::HookFailed {
                        hook: name.clone(),
                        message,
                    };
                    warn!(hook = %name, error = %error, "on_promote hook failed");
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// One hook for `rotation`; its success (and what it printed) is logged.
    async fn run_hook(
        &self,
        name: &str,
        hook: &crate::policy::Hook,
        rotation: &crate::state::Rotation,
    ) -> Result<(), crate::hooks::HookError> {
        let fields = self.hook_fields(rotation);
        let output = crate::hooks::run(hook, &fields, &self.ctx.hook_http).await?;
        info!(hook = %name, %output, "on_promote hook succeeded");
        Ok(())
    }

    fn hook_fields(&self, rotation: &crate::state::Rotation) -> HookFields {
        let new_key = rotation.new_key.as_ref();
        HookFields {
            policy: self.policy.name.to_string(),
            rotation_id: rotation.id.to_string(),
            provider: self.policy.provider.to_string(),
            store: self.policy.target.store.to_string(),
            secret_id: self.policy.target.secret_id.to_string(),
            key_id: new_key.and_then(|k| k.id.clone()).unwrap_or_default(),
            key_label: new_key.map(|k| k.label.clone()).unwrap_or_default(),
        }
    }
}

/// Names an `on_promote` list, so that a journal's count of hooks done is
/// not applied to another list (FNV-1a over its debug form: the argv, the
/// URL's reference, never a secret).
fn hooks_fingerprint(hooks: &[crate::policy::Hook]) -> u64 {
    format!("{hooks:?}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}
