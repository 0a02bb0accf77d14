//! A replica dies (abort at a failpoint: no unwinding, like SIGKILL) at
//! every step boundary while holding the secret's lease; a second replica
//! (`rekey run`) takes the lease once it expires and finishes or rolls the
//! rotation back from the journal in the table. After the crash the store's
//! current key works; at the end one key is live, it is the store's
//! current one, nothing is in flight and no key leaked.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Ha;
use crate::crash_matrix::FAILPOINTS;
use crate::daemon_proc::RunningDaemon;

/// Sub-cases at once: each is two processes, on a loaded 2-core machine.
const AT_ONCE: usize = 4;

/// Right after the lease item is written, before anything is journaled.
const LEASE_ACQUIRED: &str = "state:lease-acquired";

async fn crash_then_takeover(point: &'static str) {
    let ha = Ha::new().await;
    ha.write_config("revoke = { grace = \"0s\" }");
    let config = ha.env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let crashed = ha.env.rekey_env(&args, &[("REKEY_FAILPOINT", point)]).await;
    assert_eq!(
        crashed.code, None,
        "{point}: replica 1 aborted at the failpoint; stderr:\n{}",
        crashed.stderr
    );
    assert!(
        crashed
            .stderr
            .contains(&format!("failpoint {point}: aborting")),
        "{point}: {}",
        crashed.stderr
    );
    let current = ha.value("AWSCURRENT").await.expect("a current value");
    assert!(
        ha.env.works(&current),
        "{point}: right after the crash the store's current key works"
    );
    let in_flight = !ha.journal().await["in_flight"].is_null();
    let (owner, expires_ms) = ha.lease().await.expect("replica 1 wrote the lease item");
    assert!(
        !owner.is_empty(),
        "{point}: replica 1 died holding the lease"
    );

    let replica = RunningDaemon::start(&ha.env, &[]).await;
    if in_flight {
        let journal = ha.wait_for_history(1, Duration::from_secs(40)).await;
        let history = journal["history"].as_array().unwrap();
        let finished = history.last().unwrap()["finished_at"].as_str().unwrap();
        let finished = chrono::DateTime::parse_from_rfc3339(finished).unwrap();
        assert!(
            finished.timestamp_millis() >= expires_ms,
            "{point}: replica 2 finished the rotation only after replica 1's lease \
             expired ({finished} vs {expires_ms} ms)"
        );
    }
    replica.stop().await;

    let when = format!("{point}: after replica 2");
    let current = ha.assert_settled(&[], &when).await;
    assert_eq!(
        ha.env.live_secrets(),
        vec![current.clone()],
        "{when}: exactly one live key, the store's current one"
    );
    // A rotation interrupted before its key was stored is recorded as
    // failed (the key deleted) and the request is run again: one key per
    // recorded rotation, plus the one made but never recorded when the
    // crash came right after the create (swept by name, not reused).
    let journal = ha.journal().await;
    let rotations = journal["history"].as_array().map_or(0, Vec::len) as u64;
    let unrecorded = u64::from(point == "create:before-record");
    assert!(
        ha.creates() <= (rotations + unrecorded).min(2),
        "{when}: at most one key per recorded rotation, {} made: {journal}",
        ha.creates()
    );
    if ha.creates() == 0 {
        assert_eq!(current, ha.old, "{when}: nothing made, nothing moved");
    }
}

/// The panic message of a failed sub-case.
fn message(err: tokio::task::JoinError) -> String {
    let Ok(panic) = err.try_into_panic() else {
        return "cancelled".into();
    };
    (panic.downcast_ref::<String>().cloned())
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_at_every_step_is_finished_or_rolled_back_by_another() {
    let slots = Arc::new(Semaphore::new(AT_ONCE));
    let mut cases = JoinSet::new();
    let points = FAILPOINTS.iter().copied().chain([LEASE_ACQUIRED]);
    for point in points {
        let slots = slots.clone();
        cases.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            crash_then_takeover(point).await;
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = cases.join_next().await {
        if let Err(e) = done {
            failed.push(message(e));
        }
    }
    assert!(
        failed.is_empty(),
        "failed sub-cases:\n{}",
        failed.join("\n\n")
    );
}
