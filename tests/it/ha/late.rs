//! A side effect due while the lease is a late renewal away from covering
//! it waits for that renewal (up to a third of the lease) instead of giving
//! up: with a 3 s lease (renewed every second, 1 s skew margin) and 1 s
//! request timeouts, a promote that comes 1.3 s after the acquire, while
//! every renewal is 0.9 s late, is covered once the renewal lands at 1.9 s.

use std::collections::BTreeMap;

use rekey::sim::Faults;

use super::Ha;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_waits_for_a_late_renewal_instead_of_rolling_back() {
    let ha = Ha::new().await;
    ha.write_config("revoke = { grace = \"0s\" }");
    ha.use_lease("3s");
    // Create and verify take 0.6 s each (within the 1 s request timeout):
    // promote comes about 1.3 s after the acquire, after the first renewal
    // was due (1 s) and before the late one lands (1.9 s).
    ha.env.sim.sim.set_faults(Faults {
        latency_ms: BTreeMap::from([("create".to_string(), 600), ("chat".to_string(), 600)]),
        ..Faults::default()
    });
    let config = ha.env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let late = [
        ("REKEY_FAILPOINT", "state:lease-renew"),
        ("REKEY_FAILPOINT_ACTION", "pause"),
        ("REKEY_FAILPOINT_PAUSE_MS", "900"),
    ];
    let run = ha.env.rekey_env(&args, &late).await;
    assert!(
        run.stderr.contains("failpoint state:lease-renew: pausing"),
        "the renewal was late: {}",
        run.stderr
    );
    run.assert_code(0);
    assert!(
        !run.stderr.contains("not started"),
        "no side effect was given up: {}",
        run.stderr
    );
    let current = ha.assert_settled(&[], "after a late renewal").await;
    assert_ne!(current, ha.old, "the rotation went through");
    assert_eq!(ha.env.live_secrets(), vec![current], "one live key");
}
