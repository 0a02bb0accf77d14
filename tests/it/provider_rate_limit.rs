//! `rate_limit` against a simulator that really limits management calls
//! (`management_rate_per_sec`): with the limit configured, a run over many
//! policies stays under it (almost no 429s) and takes the time the limit
//! says; without it, the same run meets 429s and still completes, its
//! retries held by `Retry-After`.
//!
//! The configured limit is a little under the simulator's: latencies vary
//! (a call on a fresh connection is slower than one on a kept-alive one),
//! so a client paced at exactly the provider's rate meets an occasional
//! 429 at a strict bucket; config/README.md says to leave such a margin.

use std::time::{Duration, Instant};

use rekey::sim::Faults;

use crate::helpers::{Case, TestEnv, policy};

/// The simulator's limit (management calls a second, burst the same).
const SIM_RATE: u32 = 20;
/// `rate_limit` on the provider entry.
const RATE: u32 = 18;
const MANAGEMENT: [&str; 5] = ["create", "list", "get", "update", "delete"];

/// A simulator pacing management calls at `SIM_RATE` a second, and a config
/// of `policies` first-key policies (file store) run all at once.
async fn env_with(policies: usize, provider_lines: &str) -> TestEnv {
    let env = TestEnv::with_faults(Faults {
        management_rate_per_sec: Some(SIM_RATE),
        ..Faults::default()
    })
    .await;
    let case = Case {
        provider_lines: provider_lines.to_string(),
        ..Case::openrouter()
    };
    let policies: String = (0..policies)
        .map(|i| {
            let target = format!(r#"{{ store = "files", secret_id = "k{i}", create = true }}"#);
            policy(&format!("p{i}"), &target, "")
        })
        .collect();
    env.write_config_case(&case, &policies);
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replacen(
        "[daemon]\n",
        "[daemon]\nmax_concurrent_rotations = 100\n",
        1,
    );
    std::fs::write(env.config_path(), text).unwrap();
    env
}

fn management_calls(env: &TestEnv) -> u64 {
    let counts = env.sim.sim.call_counts();
    MANAGEMENT.iter().filter_map(|e| counts.get(*e)).sum()
}

/// Every policy rotated: its status row says so.
async fn assert_all_rotated(env: &TestEnv, policies: usize) {
    let status = env.cmd("status", &["--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let rows = rows.as_array().expect("status rows");
    assert_eq!(rows.len(), policies, "{rows:?}");
    for row in rows {
        assert_eq!(row["last_result"]["kind"], "rotated", "{row}");
    }
}

#[tokio::test]
async fn a_configured_rate_limit_keeps_a_fleet_run_under_the_providers_limit() {
    let env = env_with(90, &format!("rate_limit = \"{RATE}/s\"")).await;
    let started = Instant::now();
    env.cmd("run", &["--once"]).await.assert_code(0);
    let took = started.elapsed();
    assert_all_rotated(&env, 90).await;

    let calls = management_calls(&env);
    let refused = env.sim.sim.throttled_count();
    assert!(
        calls > u64::from(RATE) * 2,
        "the run made {calls} management calls"
    );
    assert!(
        refused * 100 < calls,
        "{refused} of {calls} management calls answered 429"
    );
    // The limit held: beyond a burst (at most RATE), one call per 1/RATE s.
    let least = Duration::from_secs_f64((calls - u64::from(RATE)) as f64 / f64::from(RATE));
    assert!(
        took >= least,
        "{calls} calls took {took:?}, less than {least:?}"
    );
}

#[tokio::test]
async fn without_a_rate_limit_the_run_meets_429s_and_still_completes() {
    // 30 creates and a listing at 20 a second: a third of them refused at
    // first, each retried once the shared hold of its `Retry-After` ends.
    let env = env_with(30, "").await;
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert_all_rotated(&env, 30).await;
    assert!(
        env.sim.sim.throttled_count() > 0,
        "the simulator answered no 429 to {} management calls",
        management_calls(&env)
    );
}
