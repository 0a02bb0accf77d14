//! The two text formats `/metrics` serves, both written by prometheus-client,
//! and which one a scraper asked for: the Prometheus text format 0.0.4 by
//! default (what the README's table and every dashboard query read), and
//! OpenMetrics 1.0.0 when the `Accept` header prefers it (counters then
//! have a `TYPE` without `_total` and the text ends with `# EOF`).

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    Prometheus,
    OpenMetrics,
}

/// What a failed encoding says; a `String` writer cannot fail, so only a
/// metric that cannot encode itself gets here.
#[derive(Debug, thiserror::Error)]
#[error("the metrics could not be encoded in the {0} format")]
pub struct EncodeError(&'static str);

const OPENMETRICS: &str = "application/openmetrics-text";

impl Exposition {
    /// The format the `Accept` header prefers: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of plain
    /// text (`text/plain`, `text/*`, `*/*`); Prometheus text otherwise,
    /// also without a header. OpenMetrics versions are not told apart: 1.0.0
    /// is what there is.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        let (mut open, mut plain) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or_default().split(',') {
            let (media, quality) = media_range(range);
            match media.as_str() {
                OPENMETRICS => open = open.max(quality),
                "text/plain" | "text/*" | "*/*" => plain = plain.max(quality),
                _ => {}
            }
        }
        if open > 0.0 && open >= plain {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Prometheus => prometheus_text::CONTENT_TYPE,
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Exposition::Prometheus => "Prometheus text",
            Exposition::OpenMetrics => "OpenMetrics text",
        }
    }
}

/// One `Accept` entry: its media type (lower case) and quality (`q`, 1 by
/// default; an unreadable one counts as 0, not acceptable).
fn media_range(range: &str) -> (String, f32) {
    let range = range.to_ascii_lowercase();
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default().to_string();
    let quality = parts
        .filter_map(|p| p.strip_prefix("q="))
        .map(|q| q.parse().unwrap_or(0.0))
        .next_back()
        .unwrap_or(1.0);
    (media, quality)
}

/// Every registered family in `format`.
pub fn encode(registry: &Registry, format: Exposition) -> Result<String, EncodeError> {
    let mut out = String::new();
    let written = match format {
        Exposition::Prometheus => prometheus_text::encode(&mut out, registry),
        Exposition::OpenMetrics => text::encode(&mut out, registry),
    };
    written.map_err(|_| EncodeError(format.name()))?;
    Ok(out)
}
