//! [`Problems`]: the problems found so far, and the field helpers (required,
//! durations, URLs) that record why a value is missing or bad.

use std::time::Duration;

use super::values;
use crate::config::ConfigProblem;
use crate::config::bounds;

/// The problems found so far. Helpers return `None` for a missing or bad
/// value and record why, so callers only decide what is required.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<ConfigProblem>);

impl Problems {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn required<'a>(&mut self, path: &str, raw: Option<&'a str>) -> Option<&'a str> {
        match raw.map(str::trim) {
            Some(value) if !value.is_empty() => Some(value),
            _ => {
                self.push(path, "required");
                None
            }
        }
    }

    /// A duration of at most `max` (see `bounds`); zero allowed.
    pub(super) fn duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        max: Duration,
    ) -> Option<Duration> {
        match bounds::parse_duration(raw?, max) {
            Ok(d) => Some(d),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }

    /// A duration that must not be zero (timeouts, ages, backoff), at most `max`.
    pub(super) fn positive_duration(
        &mut self,
        path: &str,
        raw: Option<&str>,
        max: Duration,
    ) -> Option<Duration> {
        let d = self.duration(path, raw, max)?;
        if d.is_zero() {
            self.push(path, "must be greater than zero");
            return None;
        }
        Some(d)
    }

    /// An `http(s)://host[:port][/path]` URL; returned without a trailing slash.
    pub(super) fn http_url(&mut self, path: &str, raw: &str) -> Option<String> {
        match values::http_url(raw) {
            Ok(url) => Some(url),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }
}
