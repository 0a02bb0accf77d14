//! A small hand-rolled Prometheus registry: counters, gauges and histograms
//! keyed by label values, rendered in the text exposition format (HELP/TYPE,
//! escaped label values, `_bucket`/`_sum`/`_count` with `le`). Families come
//! out in the order they are declared and series sorted by label values, so
//! two scrapes of the same state are byte-identical.

use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family: its name, help text, type and label names.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

/// Upper bounds (seconds) of the histogram buckets; `+Inf` is implied.
/// Steps range from milliseconds (a journal write) to minutes (verify
/// waiting for a key to propagate).
pub const BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Clone)]
enum Series {
    Value(f64),
    Histogram(Box<Histogram>),
}

#[derive(Debug, Default)]
pub struct Registry {
    series: BTreeMap<&'static str, BTreeMap<Vec<String>, Series>>,
}

impl Registry {
    fn slot(&mut self, family: &Family, labels: &[&str]) -> &mut BTreeMap<Vec<String>, Series> {
        debug_assert_eq!(
            family.labels.len(),
            labels.len(),
            "{}: label values must match the label names",
            family.name
        );
        self.series.entry(family.name).or_default()
    }

    /// Adds `by` to a counter or gauge (creating it at zero first).
    pub fn add(&mut self, family: &Family, labels: &[&str], by: f64) {
        let key = owned(labels);
        let series = self.slot(family, labels).entry(key);
        if let Series::Value(v) = series.or_insert(Series::Value(0.0)) {
            *v += by;
        }
    }

    pub fn set(&mut self, family: &Family, labels: &[&str], value: f64) {
        let key = owned(labels);
        self.slot(family, labels).insert(key, Series::Value(value));
    }

    pub fn remove(&mut self, family: &Family, labels: &[&str]) {
        if let Some(series) = self.series.get_mut(family.name) {
            series.remove(&owned(labels));
        }
    }

    pub fn observe(&mut self, family: &Family, labels: &[&str], value: f64) {
        let key = owned(labels);
        let series = self.slot(family, labels).entry(key);
        let Series::Histogram(h) = series.or_insert_with(|| Series::Histogram(Box::default()))
        else {
            return;
        };
        if let Some(i) = BUCKETS.iter().position(|bound| value <= *bound) {
            h.buckets[i] += 1;
        }
        h.sum += value;
        h.count += 1;
    }

    /// Drops every series of `families` whose label `name` has `value`.
    pub fn remove_where(&mut self, families: &[&Family], name: &str, value: &str) {
        for family in families {
            let Some(at) = family.labels.iter().position(|l| *l == name) else {
                continue;
            };
            if let Some(series) = self.series.get_mut(family.name) {
                series.retain(|labels, _| labels[at] != value);
            }
        }
    }

    /// The text exposition format of `families`, in that order.
    pub fn render(&self, families: &[&Family]) -> String {
        let mut out = String::new();
        for family in families {
            let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            let Some(series) = self.series.get(family.name) else {
                continue;
            };
            for (values, series) in series {
                render_series(&mut out, family, values, series);
            }
        }
        out
    }
}

fn render_series(out: &mut String, family: &Family, values: &[String], series: &Series) {
    let labels = label_pairs(family.labels, values);
    match series {
        Series::Value(v) => {
            let _ = writeln!(out, "{}{} {}", family.name, braced(&labels), number(*v));
        }
        Series::Histogram(h) => {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                let le = with_le(&labels, &number(*bound));
                let _ = writeln!(out, "{}_bucket{{{le}}} {cumulative}", family.name);
            }
            let le = with_le(&labels, "+Inf");
            let _ = writeln!(out, "{}_bucket{{{le}}} {}", family.name, h.count);
            let _ = writeln!(
                out,
                "{}_sum{} {}",
                family.name,
                braced(&labels),
                number(h.sum)
            );
            let _ = writeln!(out, "{}_count{} {}", family.name, braced(&labels), h.count);
        }
    }
}

fn label_pairs(names: &[&str], values: &[String]) -> String {
    let pairs: Vec<String> = (names.iter().zip(values))
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    pairs.join(",")
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

fn with_le(labels: &str, bound: &str) -> String {
    if labels.is_empty() {
        format!("le=\"{bound}\"")
    } else {
        format!("{labels},le=\"{bound}\"")
    }
}

fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|s| s.to_string()).collect()
}

/// Label values escape backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// HELP text escapes backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// Integers without a fraction (timestamps, counts); `+Inf`/`-Inf`/`NaN` as Prometheus spells them.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
