//! deploy/prometheus/alerts.yml against the metrics contract: every selector
//! names a metric rekey exports, with its labels and label values, and every
//! alert is exercised by alerts_test.yml (which promtool runs in .ci/run).

use serde_json::Value;

use super::yaml;

/// A label and every value it takes.
type Enumerated = (&'static str, &'static [&'static str]);

/// The metric families rekey exports (the contract shared with the metrics
/// code): name, labels, and the values of its enumerated label.
#[rustfmt::skip]
const METRICS: &[(&str, &[&str], Option<Enumerated>)] = &[
    ("rekey_rotations_total", &["policy", "provider", "result"], Some(("result", &["rotated", "rolled_back", "failed"]))),
    ("rekey_step_duration_seconds", &["policy", "policy_set", "step"], Some(("step", &["begin", "create", "claim", "stage", "verify", "promote", "revoke", "rollback", "hook"]))),
    ("rekey_verify_attempts_total", &["policy", "result"], Some(("result", &["ok", "failed"]))),
    ("rekey_provider_requests_total", &["provider", "op", "result"], None),
    ("rekey_provider_throttled_seconds_total", &["provider"], None),
    ("rekey_store_requests_total", &["store", "op", "result"], None),
    ("rekey_key_age_seconds", &["policy"], None),
    ("rekey_key_max_age_seconds", &["policy"], None),
    ("rekey_next_rotation_timestamp_seconds", &["policy"], None),
    ("rekey_last_success_timestamp_seconds", &["policy"], None),
    ("rekey_rotation_due", &["policy"], None),
    ("rekey_rotation_in_progress", &["policy"], None),
    ("rekey_rotation_started_timestamp_seconds", &["policy"], None),
    ("rekey_pending_revokes", &["policy"], None),
    ("rekey_revoke_failures", &["policy"], None),
    ("rekey_config_reloads_total", &["result"], Some(("result", &["applied", "refused"]))),
    ("rekey_notifications_total", &["notifier", "result"], Some(("result", &["sent", "failed", "dropped"]))),
    ("rekey_audit_write_failures_total", &[], None),
    ("rekey_journal_corrupt", &["policy"], None),
    ("rekey_old_key_busy", &["policy"], None),
    ("rekey_hook_runs_total", &["policy", "result"], Some(("result", &["ok", "failed"]))),
    ("rekey_scheduler_last_tick_timestamp_seconds", &[], None),
    ("rekey_build_info", &["version"], None),
];

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// One `metric{label op "value", ...}` selector of a PromQL expression.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// The selectors of `expr`: identifiers followed by `{...}`, and bare
/// identifiers that start with `rekey_`. Strings are skipped whole, so no
/// label value is mistaken for a name.
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i = skip_string(&chars, i);
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if c.is_ascii_digit() {
                continue;
            }
            if chars.get(j) == Some(&'{') {
                let end = j + chars[j..]
                    .iter()
                    .position(|&c| c == '}')
                    .expect("closing }");
                let body: String = chars[j + 1..end].iter().collect();
                out.push(Selector {
                    metric: word,
                    matchers: matchers(&body),
                });
                i = end + 1;
            } else if word.starts_with("rekey_") {
                out.push(Selector {
                    metric: word,
                    matchers: Vec::new(),
                });
            }
        } else {
            i += 1;
        }
    }
    out
}

fn skip_string(chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while chars[i] != '"' {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// `job="rekey", result=~"a|b"` → [(job, =, rekey), (result, =~, a|b)].
fn matchers(body: &str) -> Vec<(String, String, String)> {
    body.split(',')
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            let op_at = m.find(['=', '!']).expect("a matcher operator");
            let value_at = m.find('"').expect("a quoted value");
            let label = m[..op_at].trim().to_string();
            let op = m[op_at..value_at].trim().to_string();
            let value = m[value_at..].trim().trim_matches('"').to_string();
            (label, op, value)
        })
        .collect()
}

fn rules() -> Vec<Value> {
    let doc = yaml("deploy/prometheus/alerts.yml");
    doc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

/// The contract entry of `metric`, reading a histogram's series as its family.
fn family(metric: &str) -> Option<(&'static [&'static str], Option<Enumerated>)> {
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| metric.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
        .unwrap_or(metric);
    METRICS
        .iter()
        .find(|(name, ..)| *name == base)
        .map(|(_, labels, enumerated)| (*labels, *enumerated))
}

/// What is wrong with selector `s` of `alert`, per the contract.
fn problems(alert: &str, s: &Selector) -> Vec<String> {
    let (labels, enumerated): (&[&str], _) = match family(&s.metric) {
        Some(family) => family,
        None if s.metric == "up" => (&[], None),
        None => return vec![format!("{alert}: {} is not a rekey metric", s.metric)],
    };
    let mut out = Vec::new();
    for (label, op, value) in &s.matchers {
        let known = labels.contains(&label.as_str())
            || TARGET_LABELS.contains(&label.as_str())
            || label == "le";
        if !known {
            out.push(format!("{alert}: {} has no label {label}", s.metric));
        }
        if label == "job" && (op.as_str(), value.as_str()) != ("=", "rekey") {
            out.push(format!(
                "{alert}: the scrape job is job=\"rekey\", not {op}{value:?}"
            ));
        }
        let Some((name, allowed)) = enumerated.filter(|(name, _)| name == label) else {
            continue;
        };
        if op.starts_with('!') {
            continue;
        }
        for v in value.split('|').filter(|v| !allowed.contains(v)) {
            out.push(format!("{alert}: {}{{{name}}} is never {v:?}", s.metric));
        }
    }
    out
}

#[test]
fn alert_rules_select_only_metrics_labels_and_values_rekey_exports() {
    let rules = rules();
    assert!(rules.len() >= 7, "{} rules", rules.len());
    let mut used = 0;
    for rule in &rules {
        let alert = rule["alert"].as_str().expect("only alerting rules");
        let expr = rule["expr"].as_str().expect("an expr");
        let selectors = selectors(expr);
        assert!(!selectors.is_empty(), "{alert}: no metric in {expr}");
        for s in &selectors {
            assert_eq!(problems(alert, s), Vec::<String>::new());
            used += 1;
        }
        assert!(
            rule["labels"]["severity"].is_string() && rule["annotations"]["summary"].is_string(),
            "{alert}: severity and summary"
        );
    }
    assert!(used > rules.len());
}

#[test]
fn the_selector_scan_catches_an_unknown_metric_a_wrong_value_and_a_wrong_job() {
    let found = |expr: &str| -> Vec<String> {
        selectors(expr)
            .iter()
            .flat_map(|s| problems("t", s))
            .collect()
    };
    let typo = found(r#"rate(rekey_rotation_total{result="failed"}[5m]) > 0"#);
    assert_eq!(typo, ["t: rekey_rotation_total is not a rekey metric"]);
    let value = found(r#"rekey_rotations_total{job="rekey", result=~"failed|error"}"#);
    assert_eq!(
        value,
        ["t: rekey_rotations_total{result} is never \"error\""]
    );
    let job = found(r#"absent(up{job="rekey-daemon"}) or rekey_revoke_failures{state="x"}"#);
    assert_eq!(job.len(), 2, "{job:?}");
    let fine =
        found(r#"sum by (policy) (rekey_step_duration_seconds_bucket{step="verify", le="+Inf"})"#);
    assert!(fine.is_empty(), "{fine:?}");
}

#[test]
fn every_alert_fires_in_a_promtool_test() {
    let tests = yaml("deploy/prometheus/alerts_test.yml");
    assert_eq!(tests["rule_files"], serde_json::json!(["alerts.yml"]));
    let fired: Vec<String> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter(|case| case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|case| case["alertname"].as_str().unwrap().to_string())
        .collect();
    for rule in rules() {
        let alert = rule["alert"].as_str().unwrap();
        assert!(
            fired.iter().any(|f| f == alert),
            "{alert} has no firing case in alerts_test.yml"
        );
    }
}
