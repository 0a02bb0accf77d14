//! The metrics after a rotation, parsed by an independent Prometheus
//! text-format parser: every family of the contract is there, with the
//! values the rotation implies.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use rekey::rotation::{Request, RunOutcome, Until, next_due, run_policy};
use rekey::sim::{Faults, RateLimitFault};
use rekey::state::Trigger;

use super::{Receiver, in_process, notifier, sample, scrape, with_audit_log};
use crate::helpers::{TestEnv, policy};

/// The fixed contract shared with the admin API, alerts and dashboards.
pub const FAMILIES: [&str; 20] = [
    "rekey_rotations_total",
    "rekey_step_duration_seconds",
    "rekey_verify_attempts_total",
    "rekey_provider_requests_total",
    "rekey_provider_throttled_seconds_total",
    "rekey_store_requests_total",
    "rekey_key_age_seconds",
    "rekey_key_max_age_seconds",
    "rekey_next_rotation_timestamp_seconds",
    "rekey_last_success_timestamp_seconds",
    "rekey_rotation_due",
    "rekey_rotation_in_progress",
    "rekey_rotation_started_timestamp_seconds",
    "rekey_pending_revokes",
    "rekey_revoke_failures",
    "rekey_config_reloads_total",
    "rekey_notifications_total",
    "rekey_audit_write_failures_total",
    "rekey_scheduler_last_tick_timestamp_seconds",
    "rekey_build_info",
];

#[tokio::test]
async fn after_a_rotation_every_contract_family_is_scraped_with_its_values() {
    // One 429 on create (Retry-After: 0) so that an error result is counted too.
    let limit = RateLimitFault {
        count: 1,
        retry_after_secs: 0,
    };
    let faults = Faults {
        rate_limit: BTreeMap::from([("create".to_string(), limit)]),
        ..Faults::default()
    };
    let env = TestEnv::with_faults(faults).await;
    let (_, old) = env.seed_key("legacy");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    let hook = Receiver::start().await;
    let mut config = policy(
        "p",
        r#"{ store = "files", secret_id = "k" }"#,
        r#"notify = ["hook"]"#,
    );
    config.push_str(&notifier(
        &env,
        "hook",
        "json",
        &hook.url,
        r#"on = ["success"]"#,
    ));
    env.write_config(&config);
    with_audit_log(&env, &env.path("audit.jsonl"));
    let app = in_process(&env).await;
    let policy = app.config.policy("p").unwrap().clone();

    let request = Request::Manual {
        grace: Some(Duration::ZERO),
        trigger: Trigger::Manual,
    };
    let outcome = run_policy(&app.ctx(&policy), &policy, request, Until::Revoked).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Rotated { .. })),
        "{outcome:?}"
    );
    let state = app.state.load(&"p".parse().unwrap()).await.unwrap();
    let now = Utc::now();
    let due = next_due(&policy, &state);
    app.observer.policy_snapshot(&policy, &state, due, now);
    app.observer.metrics.scheduler_tick(now);
    app.observer.config_reload(Ok(()));
    assert!(app.observer.flush(Duration::from_secs(20)).await);
    let s = scrape(&env, &app);

    for family in FAMILIES {
        assert!(s.docs.contains_key(family), "{family} has HELP");
        assert!(
            s.samples.iter().any(|x| x.metric == family),
            "{family} has a sample"
        );
    }
    let p = ("policy", "p");
    let rotations = |result| {
        sample(
            &s,
            "rekey_rotations_total",
            &[p, ("provider", "sim"), ("result", result)],
        )
    };
    assert_eq!(rotations("rotated"), Some(1.0));
    assert_eq!(rotations("failed"), Some(0.0));
    assert_eq!(rotations("rolled_back"), Some(0.0));
    for step in ["begin", "create", "stage", "verify", "promote", "revoke"] {
        let labels = [p, ("step", step)];
        assert_eq!(
            sample(&s, "rekey_step_duration_seconds", &labels),
            Some(1.0),
            "{step} +Inf bucket"
        );
        assert_eq!(
            sample(&s, "rekey_step_duration_seconds_count", &labels),
            Some(1.0),
            "{step} count"
        );
    }
    assert_eq!(
        sample(&s, "rekey_verify_attempts_total", &[p, ("result", "ok")]),
        Some(1.0)
    );
    let provider = |op, result| {
        sample(
            &s,
            "rekey_provider_requests_total",
            &[("provider", "sim"), ("op", op), ("result", result)],
        )
    };
    assert_eq!(provider("create", "rate_limited"), Some(1.0), "the 429");
    assert_eq!(provider("create", "ok"), Some(1.0), "its retry");
    assert_eq!(provider("verify", "ok"), Some(1.0));
    assert_eq!(provider("delete", "ok"), Some(1.0), "the old key revoked");
    let store = |op| {
        sample(
            &s,
            "rekey_store_requests_total",
            &[("store", "files"), ("op", op), ("result", "ok")],
        )
    };
    assert_eq!(store("stage"), Some(1.0));
    assert_eq!(store("promote"), Some(1.0));
    assert!(
        store("read_pending").unwrap() >= 1.0,
        "verify reads the pending version"
    );

    let gauge = |name| sample(&s, name, &[p]);
    let current = state.current.as_ref().unwrap();
    let age = (now - current.created_at).num_milliseconds() as f64 / 1000.0;
    assert_eq!(gauge("rekey_key_age_seconds"), Some(age));
    assert_eq!(gauge("rekey_key_max_age_seconds"), Some(30.0 * 86_400.0));
    let due_at = due.unwrap().timestamp_millis() as f64 / 1000.0;
    assert_eq!(gauge("rekey_next_rotation_timestamp_seconds"), Some(due_at));
    let finished = state.history.last().unwrap().finished_at;
    let finished = finished.timestamp_millis() as f64 / 1000.0;
    assert_eq!(
        gauge("rekey_last_success_timestamp_seconds"),
        Some(finished)
    );
    for idle in [
        "rekey_rotation_due",
        "rekey_rotation_in_progress",
        "rekey_rotation_started_timestamp_seconds",
        "rekey_pending_revokes",
        "rekey_revoke_failures",
    ] {
        assert_eq!(gauge(idle), Some(0.0), "{idle}");
    }
    let reloads = |result| sample(&s, "rekey_config_reloads_total", &[("result", result)]);
    assert_eq!(
        (reloads("applied"), reloads("refused")),
        (Some(1.0), Some(0.0))
    );
    let notified = |result| {
        sample(
            &s,
            "rekey_notifications_total",
            &[("notifier", "hook"), ("result", result)],
        )
    };
    assert_eq!(notified("sent"), Some(1.0), "the success alert");
    assert_eq!(notified("failed"), Some(0.0));
    assert_eq!(hook.events(&env), ["success"]);
    assert_eq!(
        sample(&s, "rekey_audit_write_failures_total", &[]),
        Some(0.0)
    );
    let tick = now.timestamp_millis() as f64 / 1000.0;
    assert_eq!(
        sample(&s, "rekey_scheduler_last_tick_timestamp_seconds", &[]),
        Some(tick)
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(sample(&s, "rekey_build_info", &version), Some(1.0));
    env.assert_no_secret_leaked();
}
