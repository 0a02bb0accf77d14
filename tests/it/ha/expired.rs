//! A replica dies mid-rotation while another one runs. The policy is not
//! due again for a month, so the running replica does not read its journal
//! on any schedule: its once-per-lease-period query for expired leases
//! finds the lease the dead one left, and it finishes the rotation from
//! the journal in the table.

use std::time::Duration;

use super::Ha;
use crate::daemon_proc::RunningDaemon;

/// Stage recorded, not yet verified: resuming finishes the rotation.
const POINT: &str = "stage";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_replica_resumes_a_dead_ones_rotation_found_by_the_expired_lease_query() {
    let ha = Ha::new().await;
    ha.write_config("revoke = { grace = \"0s\" }");
    let replica = RunningDaemon::start(&ha.env, &[]).await;
    // The replica takes the seeded key over (no rotation) and reads the
    // journal again only in a month.
    (ha.wait_for_journal("the seeded key adopted", Duration::from_secs(40), |j| {
        !j["current"].is_null()
    }))
    .await;

    let config = ha.env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let crashed = ha.env.rekey_env(&args, &[("REKEY_FAILPOINT", POINT)]).await;
    assert_eq!(
        crashed.code, None,
        "the second process aborted at the failpoint; stderr:\n{}",
        crashed.stderr
    );
    assert!(
        !ha.journal().await["in_flight"].is_null(),
        "the dead process left its rotation in flight"
    );
    let (_, expires_ms) = ha
        .lease()
        .await
        .expect("the dead process wrote the lease item");

    let journal = ha.wait_for_history(1, Duration::from_secs(40)).await;
    assert!(
        journal["in_flight"].is_null(),
        "nothing in flight: {journal}"
    );
    let history = journal["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        last["kind"], "rotated",
        "the rotation was finished: {journal}"
    );
    let finished = last["finished_at"].as_str().unwrap();
    let finished = chrono::DateTime::parse_from_rfc3339(finished).unwrap();
    assert!(
        finished.timestamp_millis() >= expires_ms,
        "finished only after the dead process's lease expired ({finished} vs {expires_ms} ms)"
    );
    replica.stop().await;

    let current = ha.assert_settled(&[], "after the takeover").await;
    assert_eq!(
        ha.env.live_secrets(),
        vec![current],
        "exactly one live key, the store's current one"
    );
}
