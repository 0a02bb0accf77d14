//! A replica frozen (SIGSTOP) in the middle of a rotation, past its lease:
//! a second replica takes the lease once it expires and finishes the
//! rotation from the journal. When the first one thaws (SIGCONT) its next
//! write or side effect is refused: it stops that rotation with the "lost
//! the secret's lease" line, and the store's AWSCURRENT moved exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey::sim::Faults;

use super::Ha;
use crate::daemon_proc::{RunningDaemon, TOKEN_ENV, token_line, wait_until};

const TOKEN: &str = "ha-stop-test-token";
const SKIPPED: &str = "skipped: another process or replica holds the secret's lease";
const LOST: &str = "rotation stopped: this replica lost the secret's lease; the holder resumes it from the journal";

/// Verification calls (`chat`) take this long while replica 1 is in one,
/// so the test can freeze it mid-rotation: after create and stage.
fn slow_verify() -> Faults {
    Faults {
        latency_ms: BTreeMap::from([("chat".to_string(), 1500)]),
        ..Faults::default()
    }
}

/// `POST /v1/policies/p/rotate` until accepted: while the daemon's own
/// pass over `p` (nothing due) runs, it answers 409 ("already running", or
/// the lease is held: by that pass, the only replica yet).
async fn ask_rotation(replica: &RunningDaemon<'_>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let asked = replica
            .post("/v1/policies/p/rotate", Some(TOKEN), None)
            .await;
        let status = asked.status().as_u16();
        let body = asked.text().await.unwrap_or_default();
        if status == 202 {
            return;
        }
        // Its own pass over `p` holds the policy and the lease a moment.
        let busy = status == 409;
        assert!(
            busy && std::time::Instant::now() < deadline,
            "the rotation is accepted within 20 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks replica 1 to rotate and waits until it verifies the new key. A
/// request accepted while its previous lease on the secret is still being
/// released is skipped as "another process or replica holds the secret's
/// lease" and not run later (reported to the integrator): asked again then.
async fn rotate_until_verifying(ha: &Ha, replica: &RunningDaemon<'_>) {
    let sim = &ha.env.sim.sim;
    let verifying = || sim.call_counts().get("chat").copied().unwrap_or(0) >= 1;
    for _ in 0..5 {
        let skipped = replica.logs_with(SKIPPED).len();
        ask_rotation(replica).await;
        let settled = wait_until(Duration::from_secs(30), || {
            let skipped_again = replica.logs_with(SKIPPED).len() > skipped;
            (verifying() || skipped_again).then_some(())
        })
        .await;
        assert!(
            settled.is_some(),
            "replica 1 reached verify within 30 s; calls {:?}; stderr:\n{}",
            sim.call_counts(),
            replica.stderr()
        );
        if verifying() {
            return;
        }
    }
    panic!(
        "the rotation request was skipped 5 times:\n{}",
        replica.stderr()
    );
}

/// How many times the freeze is tried: on a loaded machine the 1.5 s
/// verification can end (or the run give up) before the SIGSTOP lands, and
/// then there is nothing to freeze; the scenario starts over on a fresh
/// table and secret.
const FREEZE_ATTEMPTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_past_its_lease_is_fenced_off_when_it_thaws() {
    for attempt in 1..=FREEZE_ATTEMPTS {
        if frozen_then_fenced(attempt == FREEZE_ATTEMPTS).await {
            return;
        }
    }
}

/// The scenario; `false` when replica 1 was not frozen with its key staged
/// (and `last` is false: otherwise that fails the test).
async fn frozen_then_fenced(last: bool) -> bool {
    let ha = Ha::new().await;
    ha.write_config_at(
        &crate::moto::moto_url(),
        &token_line(),
        "revoke = { grace = \"0s\" }",
    );
    let before = ha
        .version_of("AWSCURRENT")
        .await
        .expect("a current version");
    let envs = [(TOKEN_ENV, TOKEN)];
    let first = RunningDaemon::start(&ha.env, &envs).await;
    ha.env.sim.sim.set_faults(slow_verify());
    rotate_until_verifying(&ha, &first).await;
    first.signal(libc::SIGSTOP);
    ha.env.sim.sim.set_faults(Faults::default());
    let staged = ha.version_of("AWSPENDING").await.is_some();
    if !staged && !last {
        eprintln!(
            "the freeze came after replica 1's verification ended; trying again. calls {:?}; stderr:\n{}",
            ha.env.sim.sim.call_counts(),
            first.stderr()
        );
        first.signal(libc::SIGCONT);
        first.stop().await;
        return false;
    }
    assert_eq!(
        ha.creates(),
        1,
        "replica 1 made the new key before freezing"
    );
    assert!(
        staged,
        "replica 1 staged it; calls {:?}; stderr:\n{}",
        ha.env.sim.sim.call_counts(),
        first.stderr()
    );

    let second = RunningDaemon::start(&ha.env, &envs).await;
    ha.wait_for_rotated(Duration::from_secs(40)).await;
    let promoted = ha
        .version_of("AWSCURRENT")
        .await
        .expect("a current version");
    assert_ne!(promoted, before, "replica 2 finished the rotation");
    let new = ha.value("AWSCURRENT").await.unwrap();

    first.signal(libc::SIGCONT);
    first.wait_for_log(LOST).await;
    assert_eq!(
        ha.version_of("AWSCURRENT").await.as_deref(),
        Some(promoted.as_str()),
        "AWSCURRENT moved once: replica 1 promoted nothing after thawing"
    );
    assert_eq!(
        ha.version_of("AWSPREVIOUS").await.as_deref(),
        Some(before.as_str()),
        "AWSPREVIOUS is the version before the rotation"
    );
    assert_eq!(ha.creates(), 1, "no second key was made");
    let journal = ha.journal().await;
    let history = journal["history"].as_array().map_or(0, Vec::len);
    assert_eq!(history, 1, "one rotation recorded: {journal}");
    let failed = first.logs_with("rotation failed");
    assert!(
        failed.is_empty(),
        "a fenced replica reports no failure: {failed:?}"
    );

    second.stop().await;
    first.stop().await;
    let current = ha.assert_settled(&[], "after the thaw").await;
    assert_eq!(current, new, "replica 2's key is current");
    assert_eq!(ha.env.live_secrets(), vec![new], "exactly one live key");
    true
}
