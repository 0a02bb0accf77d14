//! The text of a scrape: numbers, the Prometheus 0.0.4 default and
//! OpenMetrics when the scraper's `Accept` prefers it.

use super::*;

#[test]
fn numbers_print_as_prometheus_reads_them() {
    let m = Metrics::new();
    m.record(&Event::new(
        &"p".parse().unwrap(),
        &"or".into(),
        EventStep::Revoke,
        EventOutcome::Rotated,
    ));
    m.journal_corrupt("p");
    m.scheduler_tick(at("2026-01-01T00:00:00.250Z"));
    let text = m.render();
    let lines = [
        // Counters and flags are whole numbers; seconds keep their fraction.
        "rekey_rotations_total{policy=\"p\",provider=\"or\",result=\"rotated\"} 1",
        "rekey_journal_corrupt{policy=\"p\"} 1",
        "rekey_rotation_started_timestamp_seconds{policy=\"p\"} 0.0",
        "rekey_scheduler_last_tick_timestamp_seconds 1767225600.25",
    ];
    for line in lines {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[test]
fn the_default_text_is_prometheus_0_0_4_without_openmetrics_markers() {
    let m = Metrics::new();
    m.config_reload(true);
    let text = m.render();
    assert!(!text.contains("# EOF"), "{text}");
    assert!(!text.contains("# UNIT"), "{text}");
    assert!(text.contains("# TYPE rekey_config_reloads_total counter\n"));
    assert!(text.contains("\nrekey_config_reloads_total{result=\"applied\"} 1\n"));
    assert_eq!(Some(text), m.encode(Exposition::Prometheus).ok());
    assert_eq!(
        Exposition::Prometheus.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn openmetrics_names_counters_without_total_and_ends_with_eof() {
    let m = Metrics::new();
    m.config_reload(true);
    let text = m.encode(Exposition::OpenMetrics).unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE rekey_config_reloads counter\n"),
        "{text}"
    );
    assert!(text.contains("\nrekey_config_reloads_total{result=\"applied\"} 1\n"));
    assert!(text.contains("# TYPE rekey_build_info gauge\n"), "{text}");
    assert_eq!(
        Exposition::OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

#[test]
fn the_accept_header_picks_openmetrics_only_when_it_prefers_it() {
    let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
        application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let cases = [
        (None, Exposition::Prometheus),
        (Some(""), Exposition::Prometheus),
        (Some("*/*"), Exposition::Prometheus),
        (Some("text/plain;version=0.0.4"), Exposition::Prometheus),
        (Some("application/json"), Exposition::Prometheus),
        (
            Some("application/openmetrics-text"),
            Exposition::OpenMetrics,
        ),
        (
            Some("Application/OpenMetrics-Text; Version=1.0.0"),
            Exposition::OpenMetrics,
        ),
        (Some(prometheus_3), Exposition::OpenMetrics),
        (
            Some("application/openmetrics-text;q=0.5, text/plain"),
            Exposition::Prometheus,
        ),
        (
            Some("application/openmetrics-text;q=0"),
            Exposition::Prometheus,
        ),
        (
            Some("application/openmetrics-text;q=nope"),
            Exposition::Prometheus,
        ),
    ];
    for (accept, format) in cases {
        assert_eq!(Exposition::from_accept(accept), format, "{accept:?}");
    }
}
