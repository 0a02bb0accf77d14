//! Crashes inside rollback. Verification fails for good (the simulator's
//! new keys never work); the rollback deletes the new key, drops the
//! pending version and records the outcome, and the process dies between
//! those. After the crash the old key is current and works, and the new key
//! is gone or named by the rotation in flight; the restart finishes the
//! rollback (nothing pending, nothing in flight, the old key alone alive),
//! and once the provider works again a rotation succeeds.

use rekey::sim::Faults;

use super::{Fixture, Store};
use crate::helpers::Case;

/// Inside rollback: after the new key is deleted, after the pending
/// version is dropped (each before the journal closes the rotation).
const ROLLBACK_POINTS: &[&str] = &["rollback:deleted", "rollback:dropped"];

/// OpenRouter with a short verification: a rejected key fails in 2 s.
fn quick_verify() -> Case {
    Case {
        policy_lines: r#"verify = { mode = "key-info", timeout = "2s" }"#.to_string(),
        ..Case::openrouter()
    }
}

fn rejecting() -> Faults {
    Faults {
        reject_new_keys: true,
        ..Faults::default()
    }
}

impl Fixture {
    /// The rollback finished: the old key is current and the only key
    /// alive, nothing is pending or in flight, the journal says
    /// `rolled_back`, no key leaked.
    async fn assert_rolled_back(&self, old: &str, when: &str) {
        assert_eq!(self.current().await, old, "{when}: the old key is current");
        assert_eq!(
            self.env.live_secrets(),
            vec![old.to_string()],
            "{when}: the new key is deleted, the old key alone is alive"
        );
        assert!(self.env.works(old), "{when}: the old key works");
        assert!(
            !self.has_pending().await,
            "{when}: the pending version is dropped"
        );
        let journal = self.env.journal("p");
        assert!(
            journal["in_flight"].is_null(),
            "{when}: nothing in flight: {journal}"
        );
        assert_eq!(
            journal["last_result"]["kind"], "rolled_back",
            "{when}: {journal}"
        );
        self.env.assert_no_secret_leaked();
    }

    /// With the provider healthy again, an operator's rotation succeeds.
    async fn rotate_after_repair(&self, old: &str, when: &str) {
        self.env.sim.sim.set_faults(Faults::default());
        self.env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
        self.assert_rotated(old, &format!("{when}, after the repair"))
            .await;
    }
}

/// `rotate` rolls back and dies at `point`; `run --once` finishes the rollback.
async fn crash_in_rollback(store: Store, point: &str) {
    let (fx, old) = Fixture::new(&quick_verify(), store, "0s").await;
    fx.env.sim.sim.set_faults(rejecting());
    let when = format!("{store:?}/{point}");

    fx.rotate_crashing_at(point).await;
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the crash"))
        .await;
    let journal = fx.env.journal("p");
    assert!(
        journal["in_flight"]["rollback"].is_string(),
        "{when}: the journal holds the rollback in flight: {journal}"
    );
    assert_eq!(
        fx.env.live_secrets(),
        vec![old.clone()],
        "{when}: the new key was deleted before the crash"
    );

    let recovered = fx.env.cmd("run", &["--once"]).await;
    assert_eq!(
        recovered.code,
        Some(1),
        "{when}: the recovering run reports the rollback; stderr:\n{}",
        recovered.stderr
    );
    fx.assert_rolled_back(&old, &format!("{when}, after the restart"))
        .await;
    fx.rotate_after_repair(&old, &when).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_rollback_is_finished_on_restart_on_the_file_store() {
    for point in ROLLBACK_POINTS {
        crash_in_rollback(Store::Files, point).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_rollback_is_finished_on_restart_on_secrets_manager() {
    for point in ROLLBACK_POINTS {
        crash_in_rollback(Store::Aws, point).await;
    }
}

/// A rollback that starts during recovery dies too: `rotate` crashes after
/// staging, the recovering run stages again, fails verification, and dies
/// inside the rollback; a third run finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_rollback_that_recovery_started_is_finished_by_the_next_run() {
    for store in [Store::Files, Store::Aws] {
        let (fx, old) = Fixture::new(&quick_verify(), store, "0s").await;
        fx.env.sim.sim.set_faults(rejecting());
        let when = format!("{store:?}/stage then rollback:deleted");

        fx.rotate_crashing_at("stage").await;
        fx.assert_invariants_after_crash(&old, &format!("{when}, after the first crash"))
            .await;
        fx.crashing_at(&["run", "--once"], "rollback:deleted").await;
        fx.assert_invariants_after_crash(&old, &format!("{when}, after the second crash"))
            .await;

        let recovered = fx.env.cmd("run", &["--once"]).await;
        assert_eq!(recovered.code, Some(1), "{when}: {}", recovered.stderr);
        fx.assert_rolled_back(&old, &format!("{when}, after the restart"))
            .await;
        fx.rotate_after_repair(&old, &when).await;
    }
}
