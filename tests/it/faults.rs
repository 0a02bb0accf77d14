//! Provider faults: 429 with Retry-After is waited out; a rejected management
//! key fails fast, once, with a message naming the provider entry.

use std::collections::BTreeMap;
use std::time::Instant;

use rekey::sim::{Faults, RateLimitFault};

use crate::helpers::{TestEnv, policy};

fn seeded(env: &TestEnv) -> String {
    let (_, old) = env.seed_key("existing");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy("p", r#"{ store = "files", secret_id = "k" }"#, ""));
    old
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_rotation_completes() {
    let env = TestEnv::new().await;
    let old = seeded(&env);
    let limit = RateLimitFault {
        count: 1,
        retry_after_secs: 2,
    };
    env.sim.sim.set_faults(Faults {
        rate_limit: BTreeMap::from([("create".to_string(), limit)]),
        ..Faults::default()
    });

    let started = Instant::now();
    let run = env.cmd("rotate", &["p", "--now", "--grace", "0"]).await;
    run.assert_code(0);

    assert!(
        started.elapsed().as_millis() >= 2000,
        "waited the 2s Retry-After"
    );
    assert!(run.stderr.contains("rate limited"), "{}", run.stderr);
    assert_eq!(
        env.sim.sim.call_counts()["create"],
        2,
        "one refused create, one retry"
    );
    let new = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(new, old);
    env.assert_settled(&new, &[]);
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_rejected_management_key_fails_fast_naming_the_provider_entry() {
    let env = TestEnv::new().await;
    let old = seeded(&env);

    let started = Instant::now();
    let run = env
        .rekey_env(
            &[
                "rotate",
                "-c",
                env.config_path().to_str().unwrap(),
                "p",
                "--now",
            ],
            &[(crate::helpers::MGMT_ENV, "sk-or-v1-wrong-management-key")],
        )
        .await;
    run.assert_code(1);

    assert!(started.elapsed().as_secs() < 5, "no retry loop");
    assert!(
        run.stderr.contains("provider sim: management key rejected"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("providers.sim.management_key"),
        "{}",
        run.stderr
    );
    let calls: u64 = env.sim.sim.call_counts().values().sum();
    assert_eq!(
        calls,
        1,
        "exactly one call, no retries: {:?}",
        env.sim.sim.call_counts()
    );
    assert_eq!(
        std::fs::read_to_string(env.path("secrets/k")).unwrap(),
        old,
        "nothing changed"
    );
    env.assert_no_secret_leaked();
}
