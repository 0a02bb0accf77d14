use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::policy::*;
use crate::state::{HistoryEntry, KeyRecord, Rotation, Trigger};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The value of the sample line `series` (name plus rendered labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    let line = text.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..].parse().ok()
}

fn policy(max_age: Option<Duration>) -> Policy {
    Policy {
        name: "p".parse().unwrap(),
        provider: "or".into(),
        schedule: None,
        max_age,
        key: KeyTemplate::default(),
        target: Target {
            store: "s".into(),
            secret_id: "x".into(),
            lease: crate::names::LeaseKey::aws("test", "x"),
            format: Format::Raw,
            field: None,
            create: true,
        },
        verify: VerifySpec {
            mode: VerifyMode::KeyInfo,
            timeout: Duration::from_secs(5),
            base_url: None,
        },
        revoke: RevokeSpec {
            grace: Duration::from_secs(60),
            mode: RevokeMode::Delete,
            consumer_refresh: None,
            wait_idle: None,
            max_wait: Duration::from_secs(86_400),
            on_busy: OnBusy::Revoke,
        },
        adopt: AdoptSpec::default(),
        project_id: None,
        notify: Vec::new(),
        on_promote: Vec::new().into(),
        set: None,
    }
}

fn key(created: &str) -> KeyRecord {
    KeyRecord {
        id: Some("k".into()),
        label: "l".into(),
        created_at: at(created),
        adopted: false,
    }
}

fn rotation(step: Step, started: &str, revoke_failures: u32) -> Rotation {
    Rotation {
        id: "r".parse().unwrap(),
        trigger: Trigger::Schedule,
        started_at: at(started),
        step,
        grace: Duration::from_secs(60),
        old_key: None,
        new_key: None,
        version_id: None,
        verified_at: None,
        revoke_after: None,
        revoke_failures,
        rollback: None,
        unconfirmed_create: None,
        restages: 0,
        after_promote: Default::default(),
    }
}

#[test]
fn every_family_has_help_and_type_in_contract_order() {
    let text = Metrics::new().render();
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let expected: Vec<&str> = families::ALL.iter().map(|f| f.name).collect();
    assert_eq!(types, expected);
    assert_eq!(text.matches("# HELP ").count(), families::ALL.len());
    let version = env!("CARGO_PKG_VERSION");
    let build = format!("rekey_build_info{{version=\"{version}\"}}");
    assert_eq!(sample(&text, &build), Some(1.0));
    assert_eq!(sample(&text, "rekey_audit_write_failures_total"), Some(0.0));
    let refused = "rekey_config_reloads_total{result=\"refused\"}";
    assert_eq!(sample(&text, refused), Some(0.0));
}

#[test]
fn label_values_are_escaped() {
    // Provider, store and notifier names are TOML table keys: they can
    // hold a quote, a backslash or a newline (policy names cannot).
    let m = Metrics::new();
    m.provider_request("a\"b\\c\nd", "create", "ok");
    let text = m.render();
    assert!(
        text.contains(
            r#"rekey_provider_requests_total{provider="a\"b\\c\nd",op="create",result="ok"} 1"#
        ),
        "{text}"
    );
}

#[test]
fn histograms_render_cumulative_buckets_sum_and_count() {
    let m = Metrics::new();
    for secs in [0.003, 0.3, 0.3, 7.0, 1000.0] {
        let mut step = Event::new(
            &"p".parse().unwrap(),
            &"or".into(),
            EventStep::Verify,
            EventOutcome::Ok,
        );
        step.duration = Some(Duration::from_secs_f64(secs));
        m.record(&step);
    }
    let text = m.render();
    let bucket = |le: &str| {
        let series = format!(
            "rekey_step_duration_seconds_bucket{{policy=\"p\",step=\"verify\",le=\"{le}\"}}"
        );
        sample(&text, &series)
    };
    assert_eq!(bucket("0.01"), Some(1.0));
    assert_eq!(bucket("0.25"), Some(1.0));
    assert_eq!(bucket("0.5"), Some(3.0));
    assert_eq!(bucket("10"), Some(4.0));
    assert_eq!(
        bucket("300"),
        Some(4.0),
        "1000s is above every finite bound"
    );
    assert_eq!(bucket("+Inf"), Some(5.0));
    let count = "rekey_step_duration_seconds_count{policy=\"p\",step=\"verify\"}";
    assert_eq!(sample(&text, count), Some(5.0));
    let sum = "rekey_step_duration_seconds_sum{policy=\"p\",step=\"verify\"}";
    assert!((sample(&text, sum).unwrap() - 1007.603).abs() < 1e-9);
}

#[test]
fn set_members_share_their_sets_histogram_and_keep_their_own_gauges() {
    let m = Metrics::new();
    for member in ["tenant-a", "tenant-b"] {
        let mut step = Event::new(
            &member.parse().unwrap(),
            &"or".into(),
            EventStep::Verify,
            EventOutcome::Ok,
        );
        step.policy_set = Some("tenant-{member}".into());
        step.duration = Some(Duration::from_millis(20));
        m.record(&step);
        let mut begin = step.clone();
        begin.step = EventStep::Begin;
        m.record(&begin);
    }
    let text = m.render();
    let count = "rekey_step_duration_seconds_count{policy_set=\"tenant-{member}\",step=\"verify\"}";
    assert_eq!(sample(&text, count), Some(2.0), "{text}");
    assert!(!text.contains("rekey_step_duration_seconds_count{policy=\"tenant-a\""));
    let gauge = "rekey_rotation_in_progress{policy=\"tenant-a\"}";
    assert_eq!(sample(&text, gauge), Some(1.0), "{text}");
    m.forget_policy("tenant-a");
    assert_eq!(
        sample(&m.render(), count),
        Some(2.0),
        "the set's series stays"
    );
}

#[test]
fn series_come_out_sorted_and_two_renders_are_identical() {
    let m = Metrics::new();
    for (provider, op) in [("zz", "list"), ("aa", "verify"), ("aa", "create")] {
        m.provider_request(provider, op, "ok");
    }
    let text = m.render();
    let ops: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("rekey_provider_requests_total{"))
        .collect();
    let mut sorted = ops.clone();
    sorted.sort();
    assert_eq!(ops, sorted);
    assert_eq!(ops.len(), 3);
    assert_eq!(text, m.render());
}

#[test]
fn events_count_results_and_time_the_steps_of_a_rotation_only() {
    let m = Metrics::new();
    let mut done = Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Revoke,
        EventOutcome::Rotated,
    );
    done.duration = Some(Duration::from_millis(20));
    m.record(&done);
    let mut adopted = Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Adopt,
        EventOutcome::Ok,
    );
    adopted.duration = Some(Duration::from_millis(20));
    m.record(&adopted);
    let text = m.render();
    let rotated = "rekey_rotations_total{policy=\"p\",provider=\"or\",result=\"rotated\"}";
    assert_eq!(sample(&text, rotated), Some(1.0));
    let revoke = "rekey_step_duration_seconds_count{policy=\"p\",step=\"revoke\"}";
    assert_eq!(sample(&text, revoke), Some(1.0));
    assert!(
        !text.contains("step=\"adopt\""),
        "adopt is not a timed step"
    );
}

#[test]
fn a_rotation_before_promote_is_in_progress_and_not_due() {
    let m = Metrics::new();
    let mut state = PolicyState::new(&"p".parse().unwrap());
    state.current = Some(key("2026-01-01T00:00:00Z"));
    state.in_flight = Some(rotation(Step::Staged, "2026-01-10T00:00:00Z", 0));
    let now = at("2026-01-10T00:01:00Z");
    let due = Some(at("2026-01-05T00:00:00Z"));
    m.policy_snapshot(&policy(None), &state, due, now);
    let text = m.render();
    let g = |name: &str| sample(&text, &format!("{name}{{policy=\"p\"}}"));
    assert_eq!(g("rekey_rotation_in_progress"), Some(1.0));
    assert_eq!(g("rekey_rotation_due"), Some(0.0));
    assert_eq!(g("rekey_pending_revokes"), Some(0.0));
    let started = at("2026-01-10T00:00:00Z").timestamp() as f64;
    assert_eq!(g("rekey_rotation_started_timestamp_seconds"), Some(started));
    assert_eq!(g("rekey_key_age_seconds"), Some(9.0 * 86_400.0 + 60.0));
    assert_eq!(g("rekey_key_max_age_seconds"), None, "no max_age set");
    assert_eq!(g("rekey_last_success_timestamp_seconds"), None);
    let failed = "rekey_rotations_total{policy=\"p\",provider=\"or\",result=\"failed\"}";
    assert_eq!(sample(&text, failed), Some(0.0), "known results start at 0");
}

#[test]
fn a_promoted_rotation_is_a_pending_revoke_with_its_failures() {
    let m = Metrics::new();
    let mut state = PolicyState::new(&"p".parse().unwrap());
    state.current = Some(key("2026-01-10T00:00:00Z"));
    state.in_flight = Some(rotation(Step::Promoted, "2026-01-10T00:00:00Z", 4));
    let finished = at("2025-12-01T00:00:00Z");
    for (kind, when) in [
        (OutcomeKind::Rotated, finished),
        (OutcomeKind::Failed, finished + TimeDelta::days(3)),
    ] {
        state.push_history(HistoryEntry {
            rotation_id: "old".parse().unwrap(),
            trigger: Trigger::Schedule,
            started_at: when,
            finished_at: when,
            kind,
            old_key: None,
            new_key: None,
            error: None,
        });
    }
    let max_age = Duration::from_secs(30 * 86_400);
    let now = at("2026-01-10T01:00:00Z");
    m.policy_snapshot(&policy(Some(max_age)), &state, Some(now), now);
    let text = m.render();
    let g = |name: &str| sample(&text, &format!("{name}{{policy=\"p\"}}"));
    assert_eq!(g("rekey_pending_revokes"), Some(1.0));
    assert_eq!(g("rekey_rotation_in_progress"), Some(0.0));
    assert_eq!(g("rekey_revoke_failures"), Some(4.0));
    assert_eq!(g("rekey_rotation_due"), Some(0.0), "in flight is never due");
    assert_eq!(g("rekey_key_max_age_seconds"), Some(max_age.as_secs_f64()));
    let last = finished.timestamp() as f64;
    assert_eq!(
        g("rekey_last_success_timestamp_seconds"),
        Some(last),
        "the newest rotated entry, not the failure after it"
    );
}

#[test]
fn a_policy_without_a_key_is_due_and_forgetting_it_drops_its_series() {
    let m = Metrics::new();
    let state = PolicyState::new(&"p".parse().unwrap());
    m.policy_snapshot(&policy(None), &state, None, Utc::now());
    m.verify_attempt("p", "or", true);
    m.provider_request("or", "create", "ok");
    let text = m.render();
    assert_eq!(sample(&text, "rekey_rotation_due{policy=\"p\"}"), Some(1.0));
    assert_eq!(sample(&text, "rekey_key_age_seconds{policy=\"p\"}"), None);

    m.forget_policy("p");
    let text = m.render();
    assert!(!text.contains("policy=\"p\""), "{text}");
    let create = "rekey_provider_requests_total{provider=\"or\",op=\"create\",result=\"ok\"}";
    assert_eq!(
        sample(&text, create),
        Some(1.0),
        "provider series are not per policy"
    );
}

#[test]
fn events_between_snapshots_keep_the_in_flight_gauges_live() {
    let m = Metrics::new();
    let mut begin = Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Begin,
        EventOutcome::Ok,
    );
    begin.rotation_id = Some("r".parse().unwrap());
    m.record(&begin);
    let g = |text: &str, name: &str| sample(text, &format!("{name}{{policy=\"p\"}}"));
    let text = m.render();
    assert_eq!(g(&text, "rekey_rotation_in_progress"), Some(1.0));
    let started = (begin.time.timestamp_millis() as f64) / 1000.0;
    assert_eq!(
        g(&text, "rekey_rotation_started_timestamp_seconds"),
        Some(started)
    );

    m.record(&Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Promote,
        EventOutcome::Ok,
    ));
    let text = m.render();
    assert_eq!(g(&text, "rekey_rotation_in_progress"), Some(0.0));
    assert_eq!(g(&text, "rekey_pending_revokes"), Some(1.0));

    let done = Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Revoke,
        EventOutcome::Rotated,
    );
    m.record(&done);
    let text = m.render();
    assert_eq!(g(&text, "rekey_pending_revokes"), Some(0.0));
    assert_eq!(
        g(&text, "rekey_rotation_started_timestamp_seconds"),
        Some(0.0)
    );
    let last = (done.time.timestamp_millis() as f64) / 1000.0;
    assert_eq!(g(&text, "rekey_last_success_timestamp_seconds"), Some(last));
}

mod format;
